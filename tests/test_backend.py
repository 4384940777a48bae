"""The active backend module's functions, on the active backend."""

from typing import Any

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


def test_compiled_by_xla_and_fuse_elementwise_keep_values() -> None:
    # Eagerly (tests run so on TensorFlow and torch), only JAX compiles with XLA; a fused
    # function gives its own values (TensorFlow compiles it only inside a graph, see
    # tests/ops/test_tensorflow_graph_kernel.py).
    assert backend.compiled_by_xla() is (keras.backend.backend() == "jax")
    x = ops.convert_to_tensor(np.array([[1.0, -2.0], [3.0, 0.5]], dtype="float32"))

    def passes(x: Any, scale: Any) -> tuple[Any, Any]:
        shifted = x - ops.max(x, axis=-1, keepdims=True)
        return ops.exp(shifted) * scale, ops.sum(shifted, axis=-1)

    fused, total = backend.fuse_elementwise(passes)(x, ops.convert_to_tensor(2.0))
    expected = np.array([[1.0, -2.0], [3.0, 0.5]]) - np.array([[1.0], [3.0]])
    np.testing.assert_allclose(ops.convert_to_numpy(fused), 2 * np.exp(expected), rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(total), expected.sum(-1), rtol=1e-6)
