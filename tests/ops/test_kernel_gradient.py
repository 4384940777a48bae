"""The kernel's gradient is written out by hand for speed: check it, in embeddings and
temperatures, against central differences of the NumPy reference (`tests/reference.py`)."""

import numpy as np
import pytest
from keras import ops

from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_weights
from keras_mlcl.ops.blockwise import supcon_rows
from tests import reference
from tests.testing import to_numpy
from tests.testing import unit_rows
from tests.testing import value_and_grad


@pytest.mark.parametrize("normalization", ["count", "weight"])
@pytest.mark.parametrize("rule", ["equal", "jaccard"])
def test_kernel_gradient_matches_the_reference(normalization: str, rule: str) -> None:
    rng = np.random.default_rng(3)
    n = 24
    if rule == "equal":
        labels = rng.integers(-1, 5, size=n)
    else:
        labels = (rng.random((n, 4)) < 0.4).astype("int32")
    w = to_numpy(positive_weights(labels, rule))
    np.testing.assert_allclose(w, reference.weights(labels, rule), atol=1e-6)
    z = unit_rows(rng, n, 6)
    c = rng.normal(size=n).astype("float32")

    def kernel(x):
        return ops.sum(ops.convert_to_tensor(c) * supcon_from_weights(x, w, 0.2, normalization)[0])

    def expected(x):
        return float(c @ reference.supcon(x, w, 0.2, normalization)[0])

    value, grad = value_and_grad(kernel, z)
    np.testing.assert_allclose(value, expected(z), atol=1e-5, rtol=1e-5)
    # float32 against float64: 1e-6 measured on every backend, for entries up to 6.
    np.testing.assert_allclose(grad, reference.numerical_gradient(expected, z), atol=1e-5)


def test_kernel_gradient_for_batched_heads_and_temperatures() -> None:
    rng = np.random.default_rng(4)
    heads, n = 3, 16
    z = np.stack([unit_rows(rng, n, 5) for _ in range(heads)])
    w = np.stack([reference.weights(rng.integers(0, 3 + h, size=n), "equal") for h in range(heads)])
    w = w.astype("float32")
    temperatures = np.array([0.5, 0.2, 0.1], "float32")

    def expected(x, t):
        return sum(float(np.sum(reference.supcon(x[h], w[h], t[h])[0])) for h in range(heads))

    value, grad_z = value_and_grad(lambda x: ops.sum(supcon_from_weights(x, w, temperatures)[0]), z)
    _, grad_t = value_and_grad(lambda t: ops.sum(supcon_from_weights(z, w, t)[0]), temperatures)
    np.testing.assert_allclose(value, expected(z, temperatures), rtol=1e-6)  # about 255
    expected_z = reference.numerical_gradient(lambda x: expected(x, temperatures), z)
    expected_t = reference.numerical_gradient(lambda t: expected(z, t), temperatures)
    np.testing.assert_allclose(grad_z, expected_z, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad_t, expected_t, rtol=1e-5)  # -24, -209, -1242


def test_kernel_gradient_of_a_pair_is_zero() -> None:
    # With N = 2 every valid anchor's only other sample is its positive:
    # p = 1, the loss is identically 0 and so is its gradient.
    z = np.array([[1.0, 0.0], [0.6, 0.8]], "float32")
    w = np.ones((2, 2), "float32")
    value, grad = value_and_grad(lambda x: ops.sum(supcon_from_weights(x, w, 0.5)[0]), z)
    assert value == 0.0
    np.testing.assert_allclose(grad, np.zeros_like(z), atol=1e-7)


@pytest.mark.parametrize("native", [True, False])
def test_kernel_gradient_with_empty_slots_per_head(native: bool) -> None:
    # A memory bank whose empty slots differ per head, `candidate_mask` `(H, N)`: on torch
    # the native kernel (`native=True`, one block) and the `keras.ops` one.
    rng = np.random.default_rng(5)
    heads, n, bank = 2, 8, 4
    candidates_of_bank = np.stack([unit_rows(rng, bank, 3) for _ in range(heads)])
    w = (rng.random((heads, n, n + bank)) < 0.4).astype("float32")
    present = np.array([[True, False, True, True], [False, True, True, False]])
    mask = np.concatenate([np.ones((heads, n), bool), present], axis=1)
    c = rng.normal(size=(heads, n)).astype("float32")

    def kernel(x):
        candidates = ops.concatenate([x, ops.convert_to_tensor(candidates_of_bank)], axis=1)
        loss, _ = supcon_rows(
            x,
            candidates,
            ops.convert_to_tensor(2.0),
            lambda start, rows: ops.convert_to_tensor(w),
            binary=True,
            normalization="count",
            candidate_mask=ops.convert_to_tensor(mask),
            native=native,
        )
        return ops.sum(ops.convert_to_tensor(c) * loss)

    def expected(x):
        total = 0.0
        for h in range(heads):
            # The bank's present slots as extra samples that are never anchors.
            z = np.concatenate([x[h], candidates_of_bank[h][present[h]]])
            weights = np.zeros((len(z), len(z)))
            weights[:n] = w[h][:, mask[h]]
            total += float(c[h] @ reference.supcon(z, weights, 0.5)[0][:n])
        return total

    z = np.stack([unit_rows(rng, n, 3) for _ in range(heads)])
    value, grad = value_and_grad(kernel, z)
    np.testing.assert_allclose(value, expected(z), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad, reference.numerical_gradient(expected, z), atol=1e-5)
