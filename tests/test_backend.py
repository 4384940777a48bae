"""The active backend module's functions, on the active backend."""

import keras
import numpy as np
from keras import ops

from keras_mlcl import backend


def test_concrete_numpy_and_as_tensor() -> None:
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(backend.concrete_numpy(ops.convert_to_tensor(x)), x)
    assert backend.concrete_numpy(keras.KerasTensor((2, 3))) is None
    variable = keras.Variable(x)
    value = backend.as_tensor(variable)
    assert not isinstance(value, keras.Variable)
    np.testing.assert_array_equal(ops.convert_to_numpy(value), x)
    assert ops.ndim(value) == 2
