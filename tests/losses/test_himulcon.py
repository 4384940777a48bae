import keras
import numpy as np
import pytest

from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import SupCon
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows


def hierarchy(seed, n=48, levels=3):
    rng = np.random.default_rng(seed)
    leaf = rng.integers(0, 16, size=n)
    columns = [leaf // 8, leaf // 2, leaf][-levels:]
    labels = np.stack(columns, axis=1)
    labels[rng.random(n) < 0.1, -1] = -1
    return labels, unit_rows(rng, n, 8)


@pytest.mark.parametrize("variant", ["hmc", "hce", "hmce"])
@pytest.mark.parametrize("penalty", ["exp", "pow2"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference(variant, penalty, seed):
    labels, z = hierarchy(seed, n=[24, 96][seed])
    loss = HiMulCon(variant=variant, temperature=0.2, level_penalty=penalty)
    expected = reference.himulcon(labels, z, 0.2, variant, penalty)
    assert_allclose(loss(labels, z), expected)


def test_single_level_hce_is_supcon():
    labels, z = hierarchy(2, levels=1)
    assert_allclose(
        HiMulCon(variant="hce", temperature=0.1)(labels, z),
        to_numpy(SupCon(temperature=0.1)(labels[:, 0], z)),
    )


def test_hce_running_max_closed_case():
    # Fine level: perfectly separated pairs (low loss); coarse level mixes them
    # with far-away samples (high loss): hce keeps the coarse loss.
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    z = np.array([e1, e1, e2, e2], "float32")
    labels = np.array([[0, 0], [0, 0], [0, 1], [0, 1]])
    fine = reference.supcon_loss(labels[:, 1], z, 1.0)
    coarse = reference.supcon_loss(labels[:, 0], z, 1.0)
    assert coarse > fine
    assert_allclose(HiMulCon("hce", temperature=1.0)(labels, z), (fine + coarse) / 2)


def test_compiles_under_jit():
    """The loss in a compiled step (the point; torch.compile takes seconds on the CPU)."""
    labels, z = hierarchy(3)
    model_fn = keras.Sequential([keras.Input((8,)), keras.layers.UnitNormalization()])
    model_fn.compile(loss=HiMulCon(), jit_compile=True)
    value = model_fn.evaluate(z, labels, batch_size=48, verbose=0)
    assert_allclose(value, reference.himulcon(labels, z, 0.1, "hmce"), atol=1e-4)


def test_config_round_trip():
    loss = HiMulCon(variant="hmc", temperature=0.3, level_penalty="pow2")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, HiMulCon) and restored.get_config() == loss.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="`variant` should be one of"):
        HiMulCon(variant="hmx")
    with pytest.raises(ValueError, match="`level_penalty` should be one of"):
        HiMulCon(level_penalty="linear")
    with pytest.raises(ValueError, match="`temperature` should be a positive float"):
        HiMulCon(temperature=0)
    with pytest.raises(ValueError, match="only defined for `variant='hmc'`"):
        HiMulCon(variant="hce", reduction="none")
    with pytest.raises(ValueError, match=r"integer class ids of shape \(N, L\)"):
        HiMulCon()(np.array([0, 1, 1]), unit_rows(np.random.default_rng(0), 3, 2))


def test_float_class_ids_must_be_whole_numbers():
    labels, z = hierarchy(0, n=8, levels=2)
    loss = HiMulCon()
    assert_allclose(loss(labels.astype("float32"), z), loss(labels, z), atol=1e-6)
    bad = labels.astype("float32")
    bad[5, 1] = 0.25
    with pytest.raises(
        ValueError, match=r"`y_true` should hold integer class ids.*`y_true\[5, 1\]`=0\.25"
    ):
        loss(bad, z)
