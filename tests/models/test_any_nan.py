import keras
import numpy as np
import pytest

from keras_mlcl.models.input_checks import any_nan


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_nan_anywhere_is_found_in_every_float_dtype(dtype):
    clean = keras.ops.convert_to_tensor(np.ones((4, 3)), dtype=dtype)
    broken = np.ones((4, 3))
    broken[2, 1] = np.nan
    broken = keras.ops.convert_to_tensor(broken, dtype=dtype)
    assert not bool(any_nan({"x": clean, "y": clean}))
    assert bool(any_nan({"x": clean, "y": broken}))


def test_large_and_infinite_values_without_a_nan_are_not_nan():
    # The check sums each tensor: half precision is summed in float32, so
    # values whose float16 sum would overflow are no NaN; nor is one infinity.
    large = keras.ops.convert_to_tensor(np.array([6e4, 6e4, -6e4, -6e4]), dtype="float16")
    infinite = keras.ops.convert_to_tensor(np.array([np.inf, 1.0]), dtype="float32")
    assert not bool(any_nan((large, infinite)))


def test_int_and_other_leaves_are_skipped():
    assert any_nan({"ids": np.array([1, 2]), "none": None}) is False
    assert bool(any_nan([np.array([1, 2]), np.array([np.nan])]))
