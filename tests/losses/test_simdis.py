import keras
import numpy as np
import pytest

from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from tests import reference
from tests.testing import assert_allclose
from tests.testing import unit_rows

E1, E2 = [1.0, 0.0], [0.0, 1.0]
NEG_E1 = [-1.0, 0.0]


def test_closed_form_anchor_zero():
    # Closed form, tau = 1, z = [e1, e1, e2, -e1], labels [{a,b}, {a,b}, {a,b,c}, {d}]: anchor 0
    # has w01 = 1, w02 = 1/2 (count and weight normalisation divide by 2 and by 1.5).
    z = np.array([E1, E1, E2, NEG_E1], "float32")
    labels = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    count = SimDisLoss(temperature=1.0, reduction="none")(labels, z)
    weight = SimDisLoss(temperature=1.0, normalization="weight", reduction="none")(labels, z)
    assert_allclose(count[0], 0.555704)
    assert_allclose(weight[0], 0.740939)


def test_closed_form_asymmetry():
    # Closed form of the rule's asymmetry, tau = 1, labels [{a,b}, {a,b,c}, {d}]: S0 inside S1
    # gives w01 = 1 / (1 + |S1| - |S0|) = 1/2, while S1 holding S0 gives w10 = |S0| / |S1| = 2/3.
    z = np.array([E1, E1, E2], "float32")
    labels = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    per_anchor = SimDisLoss(temperature=1.0, reduction="none")(labels, z)
    assert_allclose(per_anchor, [0.156631, 0.208841, 0.0])
    assert_allclose(SimDisLoss(temperature=1.0)(labels, z), 0.182736)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random((100, 7)) < 0.3).astype("float32")
    labels[:5] = 0
    z = unit_rows(rng, 100, 16)
    for normalization in ("count", "weight"):
        loss = SimDisLoss(temperature=0.07, normalization=normalization)
        expected = reference.supcon_loss(labels, z, 0.07, "simdis", normalization)
        assert_allclose(loss(labels, z), expected)


def test_equals_supcon_on_single_label_data():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 5, size=64)
    one_hot = np.eye(5, dtype="int32")[ids]
    z = unit_rows(rng, 64, 8)
    assert_allclose(SimDisLoss(temperature=0.1)(one_hot, z), SupCon(temperature=0.1)(ids, z))


def test_config_round_trip():
    loss = SimDisLoss(temperature=0.2, normalization="weight", name="sd")
    config = loss.get_config()
    assert "positives" not in config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, SimDisLoss) and restored.get_config() == config


def test_rejects_class_ids():
    with pytest.raises(ValueError, match="multi-hot"):
        SimDisLoss()(np.array([0, 1, 1]), unit_rows(np.random.default_rng(0), 3, 2))


def test_the_fixed_rule_cannot_be_changed():
    # SimDisLoss is SupCon with the "simdis" rule: a `min_weight` or `positives` would not be
    # saved with it, so they are refused (SupCon takes both).
    with pytest.raises(TypeError, match="SimDisLoss fixes `min_weight`"):
        SimDisLoss(min_weight=0.2)
    with pytest.raises(TypeError, match="SimDisLoss fixes `positives`"):
        SimDisLoss(positives="any")
    with pytest.raises(TypeError):
        SimDisLoss(0.1, "weight")  # past `temperature`, arguments are keywords
