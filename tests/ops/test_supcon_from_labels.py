"""`supcon_from_labels`, the blockwise kernel from labels, against the NumPy reference and the
materialised `supcon_from_weights`: values and gradients, one block and several."""

import numpy as np
import pytest
from keras import ops

from keras_mlcl.ops import pair_weights
from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_labels
from keras_mlcl.ops import supcon_from_weights
from keras_mlcl.ops.blockwise import BLOCK_ELEMENTS
from keras_mlcl.ops.blockwise import auto_block_rows
from tests import reference
from tests.ops.test_supcon_kernel import random_labels
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows
from tests.testing import value_and_grad

RULES = ["equal", "any", "exact", "jaccard", "simdis"]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("normalization", ["count", "weight"])
@pytest.mark.parametrize("block_size", [None, 7, 64])
def test_whole_batch_matches_reference(rule, normalization, block_size):
    rng = np.random.default_rng(RULES.index(rule))
    n = 45
    labels = random_labels(rng, rule, n)
    z = unit_rows(rng, n, 8)
    expected, expected_valid = reference.supcon(
        z, reference.weights(labels, rule), 0.2, normalization
    )
    loss, valid = supcon_from_labels(
        z, z, labels, labels, 0.2, rule=rule, normalization=normalization, block_size=block_size
    )
    assert_allclose(loss, expected, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(valid), expected_valid)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("offset, rows", [(0, 12), (12, 12), (30, 15)])
def test_a_replicas_anchors_are_its_rows_of_the_global_loss(rule, offset, rows):
    # One replica's anchors (rows offset:offset+rows of the gathered batch)
    # against every candidate give those rows of the whole-batch loss.
    rng = np.random.default_rng(3)
    n = 45
    labels = random_labels(rng, rule, n)
    z = unit_rows(rng, n, 8)
    expected, expected_valid = reference.supcon(z, reference.weights(labels, rule), 0.1)
    part = slice(offset, offset + rows)
    loss, valid = supcon_from_labels(
        z[part], z, labels[part], labels, 0.1, rule=rule, anchor_offset=offset, block_size=5
    )
    assert_allclose(loss, expected[part], atol=1e-5)
    np.testing.assert_array_equal(to_numpy(valid), expected_valid[part])


def test_anchors_outside_the_candidates_and_empty_slots():
    # anchor_offset=None: the anchors are not candidates (nothing is masked
    # as "self"); masked candidates count nowhere.
    rng = np.random.default_rng(4)
    anchors, candidates = unit_rows(rng, 6, 4), unit_rows(rng, 10, 4)
    anchor_labels = rng.integers(0, 3, size=6)
    candidate_labels = rng.integers(0, 3, size=10)
    mask = np.array([True] * 7 + [False] * 3)
    keys = np.concatenate([anchors, candidates[mask]])
    joint = np.concatenate([anchor_labels, candidate_labels[mask]])
    w = reference.weights(joint, "equal")
    w[:6, :6] = 0.0  # anchors only see candidates: drop anchor-anchor pairs
    expected, expected_valid = _reference_rows(keys, w, 0.5, rows=6, exclude=slice(0, 6))
    loss, valid = supcon_from_labels(
        anchors,
        candidates,
        anchor_labels,
        candidate_labels,
        0.5,
        anchor_offset=None,
        candidate_mask=mask,
        block_size=4,
    )
    assert_allclose(loss, expected, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(valid), expected_valid)


def _reference_rows(keys, w, temperature, rows, exclude):
    """Loss of anchors 0..rows-1 against `keys` outside `exclude`, from the definition."""
    sims = keys @ keys.T / temperature
    losses, valid = np.zeros(rows), np.zeros(rows, bool)
    others = [j for j in range(len(keys)) if not exclude.start <= j < exclude.stop]
    for i in range(rows):
        positives = [j for j in others if w[i, j] > 0]
        if not positives:
            continue
        log_denominator = np.log(np.sum(np.exp(sims[i, others])))
        losses[i] = -sum(sims[i, j] - log_denominator for j in positives) / len(positives)
        valid[i] = True
    return losses, valid


@pytest.mark.parametrize("rule", ["equal", "jaccard"])
@pytest.mark.parametrize("normalization", ["count", "weight"])
def test_gradients_of_several_blocks_equal_one_materialised_block(rule, normalization):
    # The backward pass recomputes each block; it must equal the one-block
    # kernel on the materialised weights, for anchors that are a slice of
    # the candidates (the gradient reaches z through both).
    rng = np.random.default_rng(8)
    n, offset, rows = 40, 10, 20
    labels = random_labels(rng, rule, n)
    z = unit_rows(rng, n, 6)
    cotangent = ops.convert_to_tensor(rng.normal(size=rows).astype("float32"))
    # The materialised weights of the replica's rows; the other rows have none.
    padded = np.zeros((n, n), "float32")
    padded[offset : offset + rows] = to_numpy(positive_weights(labels, rule))[
        offset : offset + rows
    ]

    def blockwise(x):
        loss, _ = supcon_from_labels(
            x[offset : offset + rows],
            x,
            labels[offset : offset + rows],
            labels,
            0.3,
            rule=rule,
            anchor_offset=offset,
            normalization=normalization,
            block_size=6,
        )
        return ops.sum(loss * cotangent)

    def materialised(x):
        loss, _ = supcon_from_weights(x, padded, 0.3, normalization)
        return ops.sum(loss[offset : offset + rows] * cotangent)

    value, grad = value_and_grad(blockwise, z)
    expected_value, expected_grad = value_and_grad(materialised, z)
    np.testing.assert_allclose(value, expected_value, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-5, rtol=1e-5)


def test_heads_with_their_own_rules_and_temperatures():
    rng = np.random.default_rng(9)
    n = 24
    coarse = rng.integers(0, 3, size=n)
    multi_hot = random_labels(rng, "simdis", n)
    z = np.stack([unit_rows(rng, n, 5), unit_rows(rng, n, 5)])
    temperatures = np.array([0.5, 0.1], "float32")

    def loss_of(x, t, block_size):
        loss, _ = supcon_from_labels(
            x,
            x,
            [coarse, multi_hot],
            [coarse, multi_hot],
            t,
            ["equal", "simdis"],
            block_size=block_size,
        )
        return loss

    loss = to_numpy(loss_of(z, temperatures, 5))
    for h, (labels, rule) in enumerate([(coarse, "equal"), (multi_hot, "simdis")]):
        expected, _ = reference.supcon(z[h], reference.weights(labels, rule), temperatures[h])
        assert_allclose(loss[h], expected, atol=1e-5)
    # The temperatures' gradient, blockwise, equals the one-block kernel's.
    _, grad_blocks = value_and_grad(lambda t: ops.sum(loss_of(z, t, 5)), temperatures)
    _, grad_one = value_and_grad(lambda t: ops.sum(loss_of(z, t, None)), temperatures)
    np.testing.assert_allclose(grad_blocks, grad_one, atol=1e-5, rtol=1e-5)


def test_pair_weights_is_the_rectangular_positive_weights():
    rng = np.random.default_rng(10)
    for rule in RULES:
        labels = random_labels(rng, rule, 12)
        full = to_numpy(positive_weights(labels, rule))
        assert_allclose(pair_weights(ops.convert_to_tensor(labels[3:7]), labels, rule), full[3:7])


def test_automatic_block_size():
    assert auto_block_rows(1024, 1024) == 1024
    assert auto_block_rows(None, 1024) is None
    rows = auto_block_rows(16384, 16384)
    assert rows % 8 == 0 and rows * 16384 <= BLOCK_ELEMENTS
    assert auto_block_rows(4, 10**9) == 8


def test_bad_arguments_are_named():
    z = unit_rows(np.random.default_rng(0), 4, 3)
    labels = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="block_size"):
        supcon_from_labels(z, z, labels, labels, 0.1, block_size=0)
    with pytest.raises(ValueError, match="leading heads axis"):
        supcon_from_labels(z[None], z, [labels], [labels], 0.1)


def test_anchor_weights_as_numpy_float64():
    # Anchor weights of another dtype (a NumPy float64 array) are cast to the embeddings'.
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2, 6, 3)).astype("float32")
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    ids = [ops.convert_to_tensor(rng.integers(0, 2, size=6)) for _ in range(2)]
    weights = rng.uniform(0.5, 1.5, size=(2, 6))
    expected, _ = supcon_from_labels(
        z, z, ids, ids, 0.5, anchor_weights=ops.convert_to_tensor(weights, "float32")
    )
    total, _ = supcon_from_labels(z, z, ids, ids, 0.5, anchor_weights=weights)
    np.testing.assert_allclose(
        ops.convert_to_numpy(total), ops.convert_to_numpy(expected), rtol=1e-6
    )
    assert float(ops.convert_to_numpy(total).min()) > 0.0


@pytest.mark.parametrize("block_size", [None, 4])
def test_heads_with_anchor_weights_and_one_temperature(block_size):
    # Two heads sharing one scalar temperature, summed by anchor weights: the same value and
    # gradient as the per-anchor losses weighted (the summed kernel's gradient used to fail).
    rng = np.random.default_rng(11)
    z = np.stack([unit_rows(rng, 10, 4), unit_rows(rng, 10, 4)])
    labels = [rng.integers(0, 3, 10), rng.integers(-1, 2, 10)]
    weights = rng.uniform(0.5, 2.0, size=(2, 10)).astype("float32")

    def summed(x):
        total, _ = supcon_from_labels(
            x, x, labels, labels, 0.3, anchor_weights=weights, block_size=block_size
        )
        return ops.sum(total)

    def per_anchor(x):
        loss, _ = supcon_from_labels(x, x, labels, labels, 0.3, block_size=block_size)
        return ops.sum(loss * ops.convert_to_tensor(weights))

    value, gradient = value_and_grad(summed, z)
    expected_value, expected_gradient = value_and_grad(per_anchor, z)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    np.testing.assert_allclose(gradient, expected_gradient, atol=1e-5)


@pytest.mark.parametrize("rule", ["equal", "jaccard"])
@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("label_copies", [False, True])
def test_one_tensor_in_both_roles_equals_two(rule, stacked, label_copies):
    # The whole batch passed once as anchors and candidates (torch's kernel then takes the
    # symmetry of its logits: one matmul for the gradient; with copies of the labels, one
    # input but the class ids numbered over both) gives the values and the gradient of the
    # same batch passed as two tensors.
    rng = np.random.default_rng(21)
    n, heads = 30, 2
    labels = [random_labels(rng, rule, n) for _ in range(heads)]
    z = unit_rows(rng, heads * n, 6).reshape(heads, n, 6)
    cotangent = ops.convert_to_tensor(rng.normal(size=(heads, n)).astype("float32"))
    temperatures = [0.2, 0.5]

    def loss(x, two):
        candidates = x + 0.0 if two else x
        copies = two or label_copies
        if stacked:
            own = [ops.convert_to_tensor(y) for y in labels]
            other = [ops.convert_to_tensor(y.copy()) for y in labels] if copies else own
            values, _ = supcon_from_labels(
                x, candidates, own, other, ops.convert_to_tensor(temperatures), rule=rule
            )
            return ops.sum(values * cotangent)
        own = ops.convert_to_tensor(labels[0])
        other = ops.convert_to_tensor(labels[0].copy()) if copies else own
        values, _ = supcon_from_labels(x, candidates, own, other, 0.2, rule=rule)
        return ops.sum(values * cotangent[0])

    x = z if stacked else z[0]
    value, grad = value_and_grad(lambda t: loss(t, False), x)
    expected_value, expected_grad = value_and_grad(lambda t: loss(t, True), x)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-5)
    assert np.abs(grad).sum() > 0
