"""Every loss through the blockwise kernel: several blocks of anchors give the value and the
gradient of one block, and `block_size` round-trips through `get_config`."""

import numpy as np
import pytest
from keras import ops

from keras_mlcl import HiMulCon
from keras_mlcl import MultiLevelSupCon
from keras_mlcl import SimDisLoss
from keras_mlcl import SupCon
from tests.testing import unit_rows
from tests.testing import value_and_grad

N = 30


def _cases(rng):
    fine = rng.integers(0, 6, N)
    multi_hot = (rng.random((N, 5)) < 0.35).astype("int32")
    paths = np.stack([fine // 3, fine], axis=1)
    return [
        (lambda b: SupCon(temperature=0.2, block_size=b), fine, False),
        (lambda b: SupCon(positives="jaccard", min_weight=0.3, block_size=b), multi_hot, False),
        (lambda b: SimDisLoss(normalization="weight", block_size=b), multi_hot, False),
        (lambda b: HiMulCon(variant="hmce", block_size=b), paths, False),
        (
            lambda b: MultiLevelSupCon.multilabel(
                {"a": [0, 1], "b": [2, 3, 4]}, temperatures=[0.5, 0.1], block_size=b
            ),
            multi_hot,
            True,
        ),
    ]


@pytest.mark.parametrize("case", range(5))
def test_several_blocks_equal_one_block(case):
    rng = np.random.default_rng(case)
    make_loss, labels, heads = _cases(rng)[case]
    z = unit_rows(rng, N, 6)

    def loss_fn(block_size):
        loss = make_loss(block_size)
        if heads:
            return lambda x: loss(labels, {"a": x, "b": ops.flip(x, axis=0)})
        return lambda x: loss(labels, x)

    value, grad = value_and_grad(loss_fn(None), z)
    blocked_value, blocked_grad = value_and_grad(loss_fn(4), z)
    assert value > 0
    np.testing.assert_allclose(blocked_value, value, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(blocked_grad, grad, atol=1e-5, rtol=1e-5)
    assert np.abs(grad).max() > 1e-3


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "sum"])
def test_sample_weights_over_several_blocks(reduction):
    rng = np.random.default_rng(7)
    z, labels = unit_rows(rng, N, 6), rng.integers(0, 5, N)
    sample_weight = ops.convert_to_tensor(rng.random(N).astype("float32"))

    def loss_fn(block_size):
        loss = SupCon(temperature=0.3, block_size=block_size, reduction=reduction)
        return lambda x: loss(labels, x, sample_weight=sample_weight)

    value, grad = value_and_grad(loss_fn(None), z)
    blocked_value, blocked_grad = value_and_grad(loss_fn(7), z)
    np.testing.assert_allclose(blocked_value, value, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(blocked_grad, grad, atol=1e-5, rtol=1e-5)


def test_block_size_round_trips_and_is_checked():
    loss = SupCon(block_size=64)
    assert SupCon.from_config(loss.get_config()).block_size == 64
    assert SimDisLoss.from_config(SimDisLoss(block_size=8).get_config()).block_size == 8
    with pytest.raises(ValueError, match="block_size"):
        HiMulCon(block_size=0)
