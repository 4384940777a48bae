"""The multi-label forms of MLCL (`mlcl-labels`, `mlcl-groups`) and their heads' weights."""

import keras
import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import label_groups
from keras_mlcl.experiments.encoders import build_encoder
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.methods import head_weights
from keras_mlcl.experiments.methods import method_label_groups
from keras_mlcl.experiments.methods import parse_method


def multi_label_dataset(coarse=False, n=60, seed=0):
    """6 labels in 3 blocks that co-occur only inside their block; optionally a coarse level
    (one label per block) above them."""
    rng = np.random.default_rng(seed)
    block = np.arange(n) % 3
    fine = np.zeros((n, 6), "int32")
    fine[np.arange(n), 2 * block] = 1
    fine[np.arange(n), 2 * block + 1] = rng.random(n) < 0.5
    labels = {"labels": fine}
    if coarse:
        labels = {"block": np.eye(3, dtype="int32")[block], "labels": fine}
    x = (rng.normal(size=(n, 8)) + 3 * np.eye(8)[block]).astype("float32")
    return LabeledDataset(x=x, labels=labels, name="toy")


def test_label_head_methods_take_no_joint_cross_entropy():
    assert parse_method("mlcl-groups") == ("mlcl-groups", False)
    for name in ("mlcl-labels+ce", "mlcl-groups+ce"):
        with pytest.raises(ValueError, match="`method` should be one of"):
            parse_method(name)


def test_mlcl_labels_has_one_head_per_label():
    groups = method_label_groups("mlcl-labels", multi_label_dataset(), "labels")
    assert groups == {f"label_{k}": [k] for k in range(6)}


def test_mlcl_groups_follow_the_coarser_multi_hot_level_else_co_occurrence():
    with_coarse = method_label_groups("mlcl-groups", multi_label_dataset(coarse=True), "labels")
    assert with_coarse == {"group_0": [0, 1], "group_1": [2, 3], "group_2": [4, 5]}
    data = multi_label_dataset()
    clustered = method_label_groups("mlcl-groups", data, "labels")
    assert list(clustered.values()) == label_groups(data.labels["labels"])
    assert sorted(k for columns in clustered.values() for k in columns) == list(range(6))


def test_head_weights_are_shares_to_a_power_with_mean_one():
    labels = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0], [-1, -1, -1]])
    groups = {"a": [0], "b": [1], "c": [2]}
    # Labelled rows: 4; shares a = 3/4, b = 1/4, c = 0 (a head without positives weighs 0; the
    # mean of 1 is over the heads with a positive).
    assert head_weights(labels, groups, 0.0) == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    raw = np.array([0.75**0.5, 0.25**0.5])
    expected = [*(raw / raw.mean()), 0.0]
    weights = head_weights(labels, groups, 0.5)
    assert [weights[k] for k in "abc"] == pytest.approx(expected)


@pytest.mark.parametrize("method", ["mlcl-labels", "mlcl-groups"])
def test_label_head_model_trains_on_the_multi_hot_array(method):
    data = multi_label_dataset(coarse=True)
    keras.utils.set_random_seed(0)
    _, encoder, augment = build_encoder(data.x)
    model, to_y = build_model(
        method, data, encoder, augment=augment, temperature=0.2, weight_power=0.5
    )
    loss = model.contrastive_loss
    expected = method_label_groups(method, data, "labels")
    assert list(loss.heads) == list(expected)
    weights = head_weights(data.labels["labels"], expected, 0.5)
    for name, head in loss.heads.items():
        assert head["columns"] == expected[name]
        assert head["temperature"] == pytest.approx(0.2)
        assert head["weight"] == pytest.approx(weights[name])
    y = to_y(data.labels)
    np.testing.assert_array_equal(y, data.labels["labels"])
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(data.x, y, batch_size=60, verbose=0, return_dict=True)["loss"]
    history = model.fit(data.x, y, batch_size=20, epochs=10, verbose=0).history
    after = model.evaluate(data.x, y, batch_size=60, verbose=0, return_dict=True)["loss"]
    assert np.all(np.isfinite(history["loss"]))
    assert after < 0.9 * before, (before, after)
