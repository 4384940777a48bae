"""`l2_normalize`: unit rows, zero rows kept at zero with a finite gradient."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_mlcl.ops import l2_normalize
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import value_and_grad

ROWS = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e-8, 0.0, 0.0], [1e-3, 2e-3, 2e-3]], "float32")


def test_rows_have_unit_norm_and_zero_rows_stay_zero():
    expected = [[0.6, 0.8, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1 / 3, 2 / 3, 2 / 3]]
    assert_allclose(l2_normalize(ROWS), expected, atol=1e-6)


def test_normalizes_along_the_given_axis_and_keeps_the_dtype():
    x = ops.convert_to_tensor(np.array([[3.0, 1.0], [4.0, 0.0]]))  # float64 where supported
    out = l2_normalize(x, axis=0)
    assert keras.backend.standardize_dtype(out.dtype) == keras.backend.standardize_dtype(x.dtype)
    np.testing.assert_allclose(to_numpy(out), [[0.6, 1.0], [0.8, 0.0]], rtol=1e-6)


def test_gradient_is_finite_at_a_zero_row():
    cotangent = ops.convert_to_tensor(np.array([[1.0, 2.0, 3.0]] * 4, "float32"))
    _, grad = value_and_grad(lambda x: ops.sum(l2_normalize(x) * cotangent), ROWS)
    assert np.isfinite(grad).all()
    # At a zero row the map is x / 1e-12, so the gradient is the cotangent times 1e12.
    np.testing.assert_allclose(grad[1], [1e12, 2e12, 3e12], rtol=1e-5)
    # At (3, 4, 0) it is (c - (c.u) u) / |x|: orthogonal to the row.
    u, c = np.array([0.6, 0.8, 0.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(grad[0], (c - c.dot(u) * u) / 5.0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("row", [0, 3])
def test_matches_keras_normalize_above_the_floor(row):
    expected = ops.normalize(ROWS[row : row + 1], axis=-1, order=2)
    assert_allclose(l2_normalize(ROWS[row : row + 1]), to_numpy(expected), atol=1e-7)
