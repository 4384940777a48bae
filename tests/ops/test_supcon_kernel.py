import math

import numpy as np
import pytest

from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_weights
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows

E1, E2 = [1.0, 0.0], [0.0, 1.0]


def random_labels(rng, rule, n, empty_rows=True, unlabelled=True):
    if rule == "equal":
        labels = rng.integers(0, max(2, n // 4), size=n)
        if unlabelled:
            labels[rng.random(n) < 0.1] = -1
        return labels
    labels = (rng.random((n, 6)) < 0.3).astype("int32")
    if empty_rows:
        labels[rng.random(n) < 0.1] = 0
    if unlabelled:
        labels[rng.random(n) < 0.05] = -1
    return labels


@pytest.mark.parametrize("n, expected", [(4, 1.098612), (16, 2.708050)])
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_identical_embeddings_all_positive_is_log_n_minus_one(n, expected, temperature):
    z = np.tile(np.array([E1], "float32"), (n, 1))
    loss, valid = supcon_from_weights(z, np.ones((n, n), "float32"), temperature)
    assert_allclose(loss, np.full(n, expected), atol=1e-5)
    assert to_numpy(valid).all()
    assert math.isclose(expected, math.log(n - 1), abs_tol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_two_pairs_closed_form(temperature):
    z = np.array([E1, E1, E2, E2], "float32")
    w = positive_weights(np.array([0, 0, 1, 1]), "equal")
    loss, _ = supcon_from_weights(z, w, temperature)
    expected = math.log(1 + 2 * math.exp(-1 / temperature))
    assert_allclose(loss, np.full(4, expected))
    if temperature == 1.0:
        assert abs(expected - 0.551445) < 1e-6


@pytest.mark.parametrize("rule", ["equal", "any", "exact", "jaccard", "simdis"])
@pytest.mark.parametrize("normalization", ["count", "weight"])
@pytest.mark.parametrize("seed, n", [(0, 2), (1, 17), (2, 64), (3, 256)])
def test_matches_numpy_reference(rule, normalization, seed, n):
    rng = np.random.default_rng(seed)
    labels = random_labels(rng, rule, n)
    z = unit_rows(rng, n, 16)
    temperature = [0.07, 0.1, 0.5, 1.0][seed]
    w = reference.weights(labels, rule)
    expected, expected_valid = reference.supcon(z, w, temperature, normalization)
    loss, valid = supcon_from_weights(z, positive_weights(labels, rule), temperature, normalization)
    assert_allclose(loss, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(valid), expected_valid)


def test_diagonal_of_weights_is_ignored():
    rng = np.random.default_rng(5)
    z = unit_rows(rng, 6, 4)
    w = reference.weights(np.array([0, 0, 1, 1, 2, 3]), "equal")
    w_no_diag = w * (1 - np.eye(6))
    a, valid_a = supcon_from_weights(z, w.astype("float32"), 0.3)
    b, valid_b = supcon_from_weights(z, w_no_diag.astype("float32"), 0.3)
    assert_allclose(a, to_numpy(b), atol=0)
    np.testing.assert_array_equal(to_numpy(valid_a), [1, 1, 1, 1, 0, 0])


def test_batched_heads_equal_each_head_alone():
    rng = np.random.default_rng(7)
    n, heads = 32, 3
    z = np.stack([unit_rows(rng, n, 8) for _ in range(heads)])
    w = np.stack(
        [reference.weights(rng.integers(0, 4 + h, size=n), "equal") for h in range(heads)]
    ).astype("float32")
    temperatures = np.array([0.5, 0.1, 0.05], "float32")
    loss, valid = supcon_from_weights(z, w, temperatures)
    assert tuple(loss.shape) == (heads, n)
    for h in range(heads):
        single, single_valid = supcon_from_weights(z[h], w[h], float(temperatures[h]))
        assert_allclose(loss[h], to_numpy(single), atol=1e-6)
        np.testing.assert_array_equal(to_numpy(valid[h]), to_numpy(single_valid))


def test_shared_embeddings_with_several_weight_matrices():
    rng = np.random.default_rng(8)
    z = unit_rows(rng, 20, 8)
    w = np.stack([reference.weights(rng.integers(0, k, size=20), "equal") for k in (2, 5)])
    loss, _ = supcon_from_weights(z, w.astype("float32"), 0.2)
    for h in range(2):
        expected, _ = reference.supcon(z, w[h], 0.2)
        assert_allclose(loss[h], expected)


def test_no_positive_anywhere_gives_zero_and_invalid():
    z = unit_rows(np.random.default_rng(0), 5, 3)
    loss, valid = supcon_from_weights(z, np.eye(5, dtype="float32"), 0.1)
    assert_allclose(loss, np.zeros(5), atol=0)
    assert not to_numpy(valid).any()


def test_batch_of_one_is_finite_and_invalid():
    loss, valid = supcon_from_weights(np.array([E1], "float32"), np.ones((1, 1), "float32"), 0.1)
    assert_allclose(loss, [0.0], atol=0)
    assert not to_numpy(valid).any()


def test_unknown_normalization_raises():
    with pytest.raises(ValueError, match="`normalization` should be one of"):
        supcon_from_weights(np.ones((2, 2), "float32"), np.ones((2, 2), "float32"), 0.1, "sum")
