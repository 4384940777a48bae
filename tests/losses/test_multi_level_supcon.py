import keras
import numpy as np
import pytest

from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SupCon
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows


def hierarchy_batch(seed, n=64):
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 12, size=n)
    coarse = fine // 4
    fine[rng.random(n) < 0.1] = -1  # unlabelled at the fine level
    labels = {"coarse": coarse, "fine": fine}
    z = {"coarse": unit_rows(rng, n, 8), "fine": unit_rows(rng, n, 16)}
    return labels, z


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalization", ["count", "weight"])
def test_matches_reference(seed, normalization):
    labels, z = hierarchy_batch(seed, n=[16, 64, 200][seed])
    heads = {"coarse": (0.5, 0.3, "equal"), "fine": (0.1, 1.0, "equal")}
    loss = MultiLevelSupCon(
        heads={
            n: {"temperature": t, "weight": w, "positives": r} for n, (t, w, r) in heads.items()
        },
        normalization=normalization,
    )
    expected, per_head = reference.multi_level(labels, z, heads, normalization)
    assert_allclose(loss(labels, z), expected)
    got = loss.head_losses(labels, z)
    for name in heads:
        assert_allclose(got[name], per_head[name])


def test_one_head_equals_supcon():
    labels, z = hierarchy_batch(3)
    loss = MultiLevelSupCon(heads={"fine": {"temperature": 0.2}})
    expected = SupCon(temperature=0.2)(labels["fine"], z["fine"])
    assert_allclose(loss({"fine": labels["fine"]}, {"fine": z["fine"]}), to_numpy(expected))


def test_batched_heads_equal_weighted_sum_of_single_losses():
    labels, z = hierarchy_batch(4)
    loss = MultiLevelSupCon.hierarchical(
        ["coarse", "fine"], temperatures=[0.5, 0.07], weights=[2.0, 0.5]
    )
    single = {
        "coarse": SupCon(temperature=0.5)(labels["coarse"], z["coarse"]),
        "fine": SupCon(temperature=0.07)(labels["fine"], z["fine"]),
    }
    expected = 2.0 * to_numpy(single["coarse"]) + 0.5 * to_numpy(single["fine"])
    assert_allclose(loss(labels, z), expected)


def test_sample_weight_and_reductions():
    labels, z = hierarchy_batch(5, n=32)
    sw = np.random.default_rng(0).random(32).astype("float32")
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"], weights=[1.0, 2.0])
    expected = 0.0
    per_anchor_total = np.zeros(32)
    for name, weight in (("coarse", 1.0), ("fine", 2.0)):
        per_anchor, valid = reference.supcon(z[name], reference.weights(labels[name], "equal"), 0.1)
        expected += weight * reference.valid_mean(per_anchor, valid, sw)
        per_anchor_total += weight * per_anchor * sw
    assert_allclose(loss(labels, z, sample_weight=sw), expected)
    none = MultiLevelSupCon.hierarchical(["coarse", "fine"], weights=[1.0, 2.0], reduction="none")
    assert_allclose(none(labels, z, sample_weight=sw), per_anchor_total)


def test_multilabel_groups_select_columns():
    rng = np.random.default_rng(6)
    y = (rng.random((40, 6)) < 0.4).astype("int32")
    z = {"a": unit_rows(rng, 40, 8), "b": unit_rows(rng, 40, 8)}
    loss = MultiLevelSupCon.multilabel(
        {"a": [0, 1, 2], "b": [5]}, temperatures={"a": 0.1, "b": 0.3}
    )
    expected = reference.supcon_loss(y[:, :3], z["a"], 0.1, "any") + reference.supcon_loss(
        y[:, 5:], z["b"], 0.3, "any"
    )
    assert_allclose(loss(y, z), expected)
    dict_labels = {"a": y, "b": y}  # columns apply to each head's array too
    assert_allclose(loss(dict_labels, z), expected)


def test_config_round_trip():
    loss = MultiLevelSupCon(
        heads={
            "coarse": {"temperature": 0.5, "weight": 0.5},
            "tags": {"positives": "simdis", "columns": [0, 3]},
        },
        normalization="weight",
    )
    config = loss.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, MultiLevelSupCon)
    assert restored.get_config() == config
    assert restored.heads["tags"]["columns"] == [0, 3]


def test_heads_of_labels_and_embeddings_must_match():
    labels, z = hierarchy_batch(0)
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"])
    with pytest.raises(ValueError, match=r"head names of `y_true` should be \['coarse', 'fine'\]"):
        loss({"coarse": labels["coarse"]}, z)
    with pytest.raises(ValueError, match=r"head names of `y_pred` should be"):
        loss(labels, {"coarse": z["coarse"], "middle": z["fine"]})
    with pytest.raises(ValueError, match="`y_true` should be a dict keyed by head name"):
        loss(labels["fine"], z)


def test_empty_heads_and_bad_head_configs():
    with pytest.raises(ValueError, match="`heads` should be a non-empty dict"):
        MultiLevelSupCon(heads={})
    with pytest.raises(ValueError, match=r"`heads\['a'\]\['temperature'\]` should be a positive"):
        MultiLevelSupCon(heads={"a": {"temperature": 0}})
    with pytest.raises(ValueError, match="unknown keys"):
        MultiLevelSupCon(heads={"a": {"tau": 0.1}})
    with pytest.raises(ValueError, match=r"`heads\['a'\]\['positives'\]` should be one of"):
        MultiLevelSupCon(heads={"a": {"positives": "some"}})
    with pytest.raises(ValueError, match="`temperatures` should have 2 entries"):
        MultiLevelSupCon.hierarchical(["a", "b"], temperatures=[0.1])
    with pytest.raises(ValueError, match="`groups` should be a non-empty dict"):
        MultiLevelSupCon.multilabel({})


def test_batch_size_mismatch_between_labels_and_embeddings():
    labels, z = hierarchy_batch(0, n=8)
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"])
    labels["fine"] = labels["fine"][:6]
    with pytest.raises(ValueError, match="should have the same batch size"):
        loss(labels, z)


def test_label_rank_wrong_for_head_rule():
    labels, z = hierarchy_batch(0, n=8)
    loss = MultiLevelSupCon(heads={"coarse": {"positives": "any"}, "fine": {}})
    with pytest.raises(ValueError, match=r"`y_true\['coarse'\]` for positives='any'"):
        loss(labels, z)


def test_float_class_ids_must_be_whole_numbers():
    labels, z = hierarchy_batch(0, n=8)
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"])
    as_floats = {name: ids.astype("float32") for name, ids in labels.items()}
    assert_allclose(loss(as_floats, z), loss(labels, z), atol=1e-6)
    as_floats["fine"][2] = 3.7
    with pytest.raises(ValueError, match=r"`y_true\['fine'\]\[2\]`=3\.7 "):
        loss(as_floats, z)
