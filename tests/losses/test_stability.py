"""Finite values and gradients in the hard corners, on every backend."""

import keras
import numpy as np
import pytest

from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from tests.testing import unit_rows
from tests.testing import value_and_grad


def supcon_fn(labels, temperature=0.1, dtype="float32", loss_cls=SupCon):
    loss = loss_cls(temperature=temperature)

    def fn(z):
        return loss(labels, keras.ops.cast(z, dtype))

    return fn


def test_no_anchor_has_a_positive():
    # No anchor has a positive: the loss is 0 and its gradient finite and zero.
    z = unit_rows(np.random.default_rng(0), 6, 4)
    value, grad = value_and_grad(supcon_fn(np.arange(6)), z)
    assert value == 0.0
    assert np.isfinite(grad).all() and np.abs(grad).max() == 0.0


def test_all_share_one_label():
    z = unit_rows(np.random.default_rng(1), 8, 4)
    value, grad = value_and_grad(supcon_fn(np.zeros(8, "int32")), z)
    assert np.isfinite(value) and np.isfinite(grad).all()
    identical = np.tile(z[:1], (8, 1))
    value, grad = value_and_grad(supcon_fn(np.zeros(8, "int32")), identical)
    np.testing.assert_allclose(value, np.log(7), rtol=1e-5)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("temperature", [0.01, 0.1])
def test_low_temperature_and_low_precision(dtype, temperature):
    rng = np.random.default_rng(2)
    z = unit_rows(rng, 64, 16)
    labels = rng.integers(0, 4, size=64)
    value, grad = value_and_grad(supcon_fn(labels, temperature, dtype), z)
    assert np.isfinite(value) and value > 0
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    reference_value, _ = value_and_grad(supcon_fn(labels, temperature, "float32"), z)
    tolerance = {"float32": 1e-5, "float16": 0.05, "bfloat16": 0.3}[dtype] / temperature
    np.testing.assert_allclose(value, reference_value, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_multi_label_and_hierarchical_losses_in_low_precision(dtype):
    rng = np.random.default_rng(3)
    z = unit_rows(rng, 32, 8)
    multi_hot = (rng.random((32, 5)) < 0.3).astype("int32")
    levels = np.stack([rng.integers(0, 2, 32), rng.integers(0, 6, 32)], axis=1)
    mlcl = MultiLevelSupCon.hierarchical(["coarse", "fine"], temperatures=[0.5, 0.01])

    def cases(dtype):
        return [
            lambda t: SimDisLoss(temperature=0.01)(multi_hot, keras.ops.cast(t, dtype)),
            lambda t: HiMulCon(temperature=0.01)(levels, keras.ops.cast(t, dtype)),
            lambda t: mlcl(
                {"coarse": levels[:, 0], "fine": levels[:, 1]},
                {"coarse": keras.ops.cast(t, dtype), "fine": keras.ops.cast(t, dtype)},
            ),
        ]

    # The float32 value and gradient of the same inputs, within the precision's rounding
    # (float16 keeps 11 significant bits, bfloat16 8).
    value_rtol, grad_rtol = {"float16": (1e-3, 2e-3), "bfloat16": (1e-2, 2e-2)}[dtype]
    for fn, exact in zip(cases(dtype), cases("float32"), strict=True):
        value, grad = value_and_grad(fn, z)
        expected, expected_grad = value_and_grad(exact, z)
        assert np.isfinite(value) and np.isfinite(grad).all()
        np.testing.assert_allclose(value, expected, rtol=value_rtol)
        scale = np.abs(expected_grad).max()
        np.testing.assert_allclose(grad, expected_grad, atol=grad_rtol * scale)


def test_empty_label_rows_and_unlabelled_ids():
    rng = np.random.default_rng(4)
    z = unit_rows(rng, 6, 4)
    empty = np.zeros((6, 3), "int32")
    value, grad = value_and_grad(supcon_fn(empty, loss_cls=SimDisLoss), z)
    assert value == 0.0 and np.isfinite(grad).all()
    value, grad = value_and_grad(supcon_fn(np.full(6, -1)), z)
    assert value == 0.0 and np.isfinite(grad).all()
