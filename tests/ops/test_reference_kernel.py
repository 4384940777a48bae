"""`supcon_from_weights` with reference embeddings (a memory bank) against
a NumPy reference of the loss on the concatenated batch."""

import keras
import numpy as np
import pytest

from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_weights
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows
from tests.testing import value_and_grad


def labels_for(rng, rule, n):
    if rule == "equal":
        labels = rng.integers(0, 4, size=n)
        labels[rng.random(n) < 0.1] = -1
        return labels
    labels = (rng.random((n, 5)) < 0.3).astype("int32")
    labels[rng.random(n) < 0.1] = 0
    return labels


def concatenated_reference(z, labels, bank, bank_labels, mask, temperature, rule, normalization):
    """The first N rows of the NumPy loss on `[z; filled bank rows]`."""
    keys = np.concatenate([z, bank[mask]])
    all_labels = np.concatenate([labels, bank_labels[mask]])
    losses, valid = reference.supcon(
        keys, reference.weights(all_labels, rule), temperature, normalization
    )
    n = len(z)
    return losses[:n], valid[:n]


def cross_weights(labels, bank_labels, rule):
    n = len(labels)
    return reference.weights(np.concatenate([labels, bank_labels]), rule)[:n, n:].astype("float32")


@pytest.mark.parametrize(
    "rule, normalization, n, m",
    [
        ("equal", "count", 33, 64),
        ("equal", "weight", 8, 5),
        ("any", "count", 8, 5),
        ("jaccard", "weight", 33, 64),
        ("simdis", "count", 33, 64),
        ("simdis", "weight", 8, 5),
    ],
)
def test_matches_loss_on_concatenated_batch(rule, normalization, n, m):
    rng = np.random.default_rng(n + m)
    z, bank = unit_rows(rng, n, 8), unit_rows(rng, m, 8)
    labels, bank_labels = labels_for(rng, rule, n), labels_for(rng, rule, m)
    mask = rng.random(m) < 0.7
    temperature = 0.2
    expected, expected_valid = concatenated_reference(
        z, labels, bank, bank_labels, mask, temperature, rule, normalization
    )
    loss, valid = supcon_from_weights(
        z,
        positive_weights(labels, rule),
        temperature,
        normalization,
        reference=bank,
        reference_weights=cross_weights(labels, bank_labels, rule),
        reference_mask=mask,
    )
    assert_allclose(loss, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(valid), expected_valid)


def test_a_positive_only_in_the_bank_makes_an_anchor_valid():
    # Anchor 0 (label 0) has no positive in the batch, one in the bank: tau = 1,
    # z0 = e1, batch other = e2, bank = [e1 (label 0), -e1 (label 1)].
    z = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    labels = np.array([0, 1])
    bank = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")
    bank_labels = np.array([0, 1])
    alone, alone_valid = supcon_from_weights(z, positive_weights(labels, "equal"), 1.0)
    assert not to_numpy(alone_valid).any()
    loss, valid = supcon_from_weights(
        z,
        positive_weights(labels, "equal"),
        1.0,
        reference=bank,
        reference_weights=cross_weights(labels, bank_labels, "equal"),
    )
    # anchor 0: -log(e / (e^0 + e + e^-1)); anchor 1 (e2): -log(e^0 / (e^0 + e^0 + e^0))
    expected = [-np.log(np.e / (1 + np.e + np.exp(-1))), np.log(3.0)]
    assert_allclose(loss, expected, atol=1e-6)
    assert to_numpy(valid).all()


def test_empty_bank_changes_nothing():
    rng = np.random.default_rng(3)
    z = unit_rows(rng, 12, 4)
    w = positive_weights(rng.integers(0, 3, size=12), "equal")
    bank = unit_rows(rng, 6, 4)
    plain, plain_valid = supcon_from_weights(z, w, 0.1)
    loss, valid = supcon_from_weights(
        z,
        w,
        0.1,
        reference=bank,
        reference_weights=np.ones((12, 6), "float32"),
        reference_mask=np.zeros(6, bool),
    )
    assert_allclose(loss, to_numpy(plain), atol=1e-6)
    np.testing.assert_array_equal(to_numpy(valid), to_numpy(plain_valid))


def test_batched_heads_with_references_equal_each_head_alone():
    rng = np.random.default_rng(4)
    heads, n, m = 3, 16, 10
    z = np.stack([unit_rows(rng, n, 6) for _ in range(heads)])
    bank = np.stack([unit_rows(rng, m, 6) for _ in range(heads)])
    labels = [rng.integers(0, 3 + h, size=n) for h in range(heads)]
    bank_labels = [rng.integers(0, 3 + h, size=m) for h in range(heads)]
    w = np.stack([reference.weights(y, "equal") for y in labels]).astype("float32")
    rw = np.stack([cross_weights(a, b, "equal") for a, b in zip(labels, bank_labels, strict=True)])
    mask = np.arange(m) < 7
    temperatures = np.array([0.5, 0.1, 0.05], "float32")
    loss, valid = supcon_from_weights(
        z, w, temperatures, reference=bank, reference_weights=rw, reference_mask=mask
    )
    for h in range(heads):
        expected, expected_valid = concatenated_reference(
            z[h], labels[h], bank[h], bank_labels[h], mask, float(temperatures[h]), "equal", "count"
        )
        assert_allclose(loss[h], expected, atol=1e-5)
        np.testing.assert_array_equal(to_numpy(valid[h]), expected_valid)


def test_shared_embeddings_with_several_weight_matrices_and_references():
    rng = np.random.default_rng(5)
    z, bank = unit_rows(rng, 10, 4), unit_rows(rng, 6, 4)
    levels = [(rng.integers(0, k, size=10), rng.integers(0, k, size=6)) for k in (2, 5)]
    w = np.stack([reference.weights(a, "equal") for a, _ in levels]).astype("float32")
    rw = np.stack([cross_weights(a, b, "equal") for a, b in levels])
    loss, _ = supcon_from_weights(z, w, 0.3, reference=bank, reference_weights=rw)
    for h, (a, b) in enumerate(levels):
        expected, _ = concatenated_reference(z, a, bank, b, np.ones(6, bool), 0.3, "equal", "count")
        assert_allclose(loss[h], expected, atol=1e-5)


def test_gradient_matches_concatenated_batch_with_a_constant_bank():
    rng = np.random.default_rng(6)
    z, bank = unit_rows(rng, 8, 4), unit_rows(rng, 5, 4)
    labels, bank_labels = rng.integers(0, 2, size=8), rng.integers(0, 2, size=5)
    w = positive_weights(labels, "equal")
    rw = cross_weights(labels, bank_labels, "equal")
    joint_w = positive_weights(np.concatenate([labels, bank_labels]), "equal")
    bank_tensor = keras.ops.convert_to_tensor(bank)

    def with_bank(t):
        loss, valid = supcon_from_weights(t, w, 0.2, reference=bank_tensor, reference_weights=rw)
        return keras.ops.sum(loss) / keras.ops.sum(keras.ops.cast(valid, "float32"))

    def concatenated(t):
        keys = keras.ops.concatenate([t, bank_tensor])
        loss, valid = supcon_from_weights(keys, joint_w, 0.2)
        return keras.ops.sum(loss[:8]) / keras.ops.sum(keras.ops.cast(valid[:8], "float32"))

    value, grad = value_and_grad(with_bank, z)
    expected_value, expected_grad = value_and_grad(concatenated, z)
    np.testing.assert_allclose(value, expected_value, atol=1e-6)
    # The concatenated loss also sends gradient from bank *anchors* into z; the
    # memory bank has no such anchors, so compare with them removed (done above
    # by summing the first 8 anchors only).
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_references_are_finite(dtype):
    rng = np.random.default_rng(7)
    z, bank = unit_rows(rng, 16, 8), unit_rows(rng, 32, 8)
    labels, bank_labels = rng.integers(0, 3, size=16), rng.integers(0, 3, size=32)
    loss, valid = supcon_from_weights(
        keras.ops.cast(z, dtype),
        positive_weights(labels, "equal"),
        0.01,
        reference=keras.ops.cast(bank, dtype),
        reference_weights=cross_weights(labels, bank_labels, "equal"),
    )
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert np.isfinite(to_numpy(loss)).all() and to_numpy(valid).all()
    # The kernel computes in float32: it gives the reference's loss of the rounded inputs
    # (losses up to 100 here, from logits up to 1 / 0.01).
    rounded = [to_numpy(keras.ops.cast(keras.ops.cast(a, dtype), "float32")) for a in (z, bank)]
    expected, _ = concatenated_reference(
        rounded[0], labels, rounded[1], bank_labels, np.ones(32, bool), 0.01, "equal", "count"
    )
    assert_allclose(loss, expected, atol=1e-3, rtol=1e-5)


def test_reference_without_weights_raises():
    z = np.eye(2, dtype="float32")
    with pytest.raises(ValueError, match="`reference` and `reference_weights` go together"):
        supcon_from_weights(z, np.ones((2, 2), "float32"), 0.1, reference=z)
    with pytest.raises(ValueError, match="`reference` and `reference_weights` go together"):
        supcon_from_weights(
            z, np.ones((2, 2), "float32"), 0.1, reference_weights=np.ones((2, 2), "float32")
        )
