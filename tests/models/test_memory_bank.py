"""MemoryBank: the queue itself, the loss against it, and ContrastiveModel
training, saving and configuration with it."""

import os

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import HiMulCon
from keras_mlcl import MultiLevelSupCon
from keras_mlcl import MultiProjectionHead
from keras_mlcl import SupCon
from keras_mlcl.models.memory_bank import MemoryBank
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows


def built_bank(size=5, dims=None, label_shapes=None):
    bank = MemoryBank(size=size)
    dims = dims or {"coarse": 2, "fine": 3}
    bank.build(dims, label_shapes or {h: () for h in dims})
    return bank


def contents(bank):
    refs = bank.references()
    return (
        to_numpy(refs["reference_embeddings"]),
        to_numpy(refs["reference_labels"]),
        to_numpy(refs["reference_mask"]),
    )


def test_queue_is_first_in_first_out_and_capped():
    bank = built_bank(size=5)
    first = {"coarse": np.full((3, 2), 1.0, "float32"), "fine": np.full((3, 3), 1.0, "float32")}
    bank.update(first, {"coarse": np.array([0, 1, 2]), "fine": np.array([3, 4, 5])})
    embeddings, labels, mask = contents(bank)
    np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(labels["fine"], [3, 4, 5, -1, -1])
    second = {"coarse": np.full((4, 2), 2.0, "float32"), "fine": np.full((4, 3), 2.0, "float32")}
    bank.update(second, {"coarse": np.array([6, 7, 8, 9]), "fine": np.array([10, 11, 12, 13])})
    embeddings, labels, mask = contents(bank)
    assert mask.all() and int(to_numpy(bank.filled)) == 5
    np.testing.assert_array_equal(labels["coarse"], [6, 7, 8, 9, 0])  # newest first
    np.testing.assert_array_equal(embeddings["fine"][:, 0], [2, 2, 2, 2, 1])
    bank.reset()
    embeddings, labels, mask = contents(bank)
    assert not mask.any() and (labels["coarse"] == -1).all() and (embeddings["fine"] == 0).all()


def test_batch_larger_than_the_bank_keeps_its_first_rows():
    bank = built_bank(size=2, dims={"h": 1})
    bank.update({"h": np.arange(4, dtype="float32")[:, None]}, {"h": np.arange(4)})
    embeddings, labels, _ = contents(bank)
    np.testing.assert_array_equal(labels["h"], [0, 1])
    assert int(to_numpy(bank.filled)) == 2


def test_multi_hot_labels_and_float32_storage():
    bank = built_bank(size=3, dims={"h": 2}, label_shapes={"h": (4,)})
    bank.update(
        {"h": np.ones((2, 2), "float16")}, {"h": np.array([[1, 0, 1, 0], [0, 1, 0, 0]], "float32")}
    )
    refs = bank.references()
    assert keras.backend.standardize_dtype(refs["reference_embeddings"]["h"].dtype) == "float32"
    np.testing.assert_array_equal(
        to_numpy(refs["reference_labels"]["h"])[:2], [[1, 0, 1, 0], [0, 1, 0, 0]]
    )


def test_float_labels_are_kept_as_floats():
    bank = MemoryBank(size=4)
    bank.build({"h": 2}, {"h": ()}, {"h": "float32"})
    bank.update({"h": np.ones((2, 2), "float32")}, {"h": np.array([2.5, -1.0], "float32")})
    labels = to_numpy(bank.references()["reference_labels"]["h"])
    assert labels.dtype == np.float32 and labels[:2].tolist() == [2.5, -1.0]
    with pytest.raises(ValueError, match=r"`label_dtypes\['h'\]` should be one of"):
        MemoryBank(size=4).build({"h": 2}, {"h": ()}, {"h": "float16"})


def test_normalizing_loss_normalizes_the_references_and_skips_empty_slots():
    # `normalize=True` applies to the bank's rows as to the batch's; empty (zero) slots are
    # masked, not refused.
    rng = np.random.default_rng(3)
    z, labels = rng.normal(size=(6, 4)).astype("float32"), rng.integers(0, 2, 6)
    bank_z = np.concatenate([3.0 * unit_rows(rng, 3, 4), np.zeros((2, 4), "float32")])
    bank_labels, mask = rng.integers(0, 2, 5), np.arange(5) < 3
    loss = SupCon(temperature=0.5, normalize=True)
    value = loss.term_losses(
        labels, z, reference_embeddings=bank_z, reference_labels=bank_labels, reference_mask=mask
    )
    keys = np.concatenate([z / np.linalg.norm(z, axis=1, keepdims=True), bank_z[:3] / 3.0])
    key_labels = np.concatenate([labels, bank_labels[:3]])
    losses, valid = reference.supcon(keys, reference.weights(key_labels, "equal"), 0.5)
    assert_allclose(value[0], reference.valid_mean(losses[:6], valid[:6]), atol=1e-5)


def test_config_and_build_config_round_trip():
    bank = built_bank(size=7)
    config = keras.saving.serialize_keras_object(bank)
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.size == 7 and clone.built
    assert clone.get_build_config() == bank.get_build_config()
    assert [v.shape for v in clone.weights] == [v.shape for v in bank.weights]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="`size` should be a positive integer"):
        MemoryBank(size=0)
    with pytest.raises(ValueError, match="not built"):
        MemoryBank(size=3).references()
    with pytest.raises(ValueError, match="`label_shapes` should be a dict"):
        MemoryBank(size=3).build({"a": 2}, {"b": ()})
    bank = built_bank()
    with pytest.raises(ValueError, match="`embeddings` should be a dict keyed by the bank's heads"):
        bank.update({"coarse": np.ones((1, 2))}, {"coarse": np.zeros(1)})


def multi_level_expected(loss, labels, z, bank_labels=None, bank=None):
    """NumPy MLCL value: batch anchors against the batch and the bank rows."""
    total, per_head = 0.0, {}
    for name, config in loss.heads.items():
        keys, key_labels = z[name], labels[name]
        if bank is not None:
            keys = np.concatenate([keys, bank[name]])
            key_labels = np.concatenate([key_labels, bank_labels[name]])
        w = reference.weights(key_labels, config["positives"])
        losses, valid = reference.supcon(keys, w, config["temperature"])
        n = len(z[name])
        per_head[name] = reference.valid_mean(losses[:n], valid[:n])
        total += config["weight"] * per_head[name]
    return total, per_head


def test_head_losses_with_references_match_the_concatenated_batch():
    rng = np.random.default_rng(0)
    loss = MultiLevelSupCon.hierarchical(
        ["coarse", "fine"], temperatures=[0.5, 0.1], weights=[1, 2]
    )
    z = {"coarse": unit_rows(rng, 12, 4), "fine": unit_rows(rng, 12, 6)}
    labels = {"coarse": rng.integers(0, 2, 12), "fine": rng.integers(0, 5, 12)}
    bank_z = {"coarse": unit_rows(rng, 9, 4), "fine": unit_rows(rng, 9, 6)}
    bank_labels = {"coarse": rng.integers(0, 2, 9), "fine": rng.integers(0, 5, 9)}
    mask = np.arange(9) < 6
    per_head = loss.head_losses(
        labels,
        z,
        reference_embeddings=bank_z,
        reference_labels=bank_labels,
        reference_mask=mask,
    )
    filled = {k: v[mask] for k, v in bank_z.items()}
    filled_labels = {k: v[mask] for k, v in bank_labels.items()}
    _, expected = multi_level_expected(loss, labels, z, filled_labels, filled)
    for name in loss.heads:
        assert_allclose(per_head[name], expected[name], atol=1e-5)


def test_multilabel_columns_with_references():
    rng = np.random.default_rng(1)
    loss = MultiLevelSupCon.multilabel({"a": [0, 1], "b": [2, 3, 4]}, positives="jaccard")
    multi_hot = (rng.random((10, 5)) < 0.4).astype("int32")
    bank_multi_hot = (rng.random((6, 5)) < 0.4).astype("int32")
    z = {"a": unit_rows(rng, 10, 3), "b": unit_rows(rng, 10, 3)}
    bank_z = {"a": unit_rows(rng, 6, 3), "b": unit_rows(rng, 6, 3)}
    columns = {"a": [0, 1], "b": [2, 3, 4]}
    # References come in the labels' own structure: here one multi-hot array.
    per_head = loss.head_losses(
        multi_hot, z, reference_embeddings=bank_z, reference_labels=bank_multi_hot
    )
    bank_labels = {h: bank_multi_hot[:, c] for h, c in columns.items()}
    labels = {h: multi_hot[:, c] for h, c in columns.items()}
    _, expected = multi_level_expected(loss, labels, z, bank_labels, bank_z)
    for name in loss.heads:
        assert_allclose(per_head[name], expected[name], atol=1e-5)


@pytest.mark.parametrize("rule", ["equal", "simdis"])
def test_any_loss_takes_references(rule):
    # The bank is a wrapper over every loss: SupCon (and HiMulCon below)
    # against [batch; filled slots] equal the concatenated batch's rows.
    rng = np.random.default_rng(2)
    n, m = 10, 7
    if rule == "equal":
        labels, bank_labels = rng.integers(0, 3, n), rng.integers(0, 3, m)
    else:
        labels = (rng.random((n, 4)) < 0.4).astype("int32")
        bank_labels = (rng.random((m, 4)) < 0.4).astype("int32")
    z, bank_z = unit_rows(rng, n, 5), unit_rows(rng, m, 5)
    mask = np.arange(m) < 5
    loss = SupCon(temperature=0.2, positives=rule)
    value = loss.term_losses(
        labels, z, reference_embeddings=bank_z, reference_labels=bank_labels, reference_mask=mask
    )
    keys = np.concatenate([z, bank_z[mask]])
    key_labels = np.concatenate([labels, bank_labels[mask]])
    losses, valid = reference.supcon(keys, reference.weights(key_labels, rule), 0.2)
    assert_allclose(value[0], reference.valid_mean(losses[:n], valid[:n]), atol=1e-5)


def test_himulcon_with_references_in_a_model():
    x, y = problem(seed=5)
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)], name="encoder")
    model = ContrastiveModel(
        encoder,
        {"paths": 4},
        loss=HiMulCon(variant="hmce"),
        memory_bank=MemoryBank(size=12),
    )
    model.compile(optimizer="adam")
    paths = np.stack([y["coarse"], y["fine"]], axis=1)
    history = model.fit(x, paths, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(to_numpy(model.memory_bank.filled)) == 12
    stored = to_numpy(model.memory_bank.references()["reference_labels"]["paths"])
    assert stored.shape == (12, 2) and set(stored[:, 1]) <= set(y["fine"])
    np.testing.assert_array_equal(stored[:, 0], stored[:, 1] // 2)  # whole label paths


def small_model(memory_bank, views=2, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)], name="encoder")
    heads = MultiProjectionHead({"coarse": 4, "fine": 4}, hidden_dims=())
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"], temperatures=[0.5, 0.2])
    return ContrastiveModel(encoder, heads, loss=loss, views=views, memory_bank=memory_bank)


def problem(n=32, seed=0):
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 4, n)
    x = (rng.normal(size=(4, 6))[fine] + 0.5 * rng.normal(size=(n, 6))).astype("float32")
    return x, {"coarse": fine // 2, "fine": fine}


def test_training_loss_uses_the_bank_and_the_bank_holds_the_last_steps():
    x, y = problem()
    model = small_model(MemoryBank(size=40))
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # fixed weights: known embeddings
    history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    z = model.predict(x, verbose=0)
    steps = []
    for rows in (slice(0, 16), slice(16, 32)):
        steps.append(
            (
                {h: np.concatenate([y[h][rows]] * 2) for h in y},
                {h: np.concatenate([z[h][rows]] * 2) for h in y},
            )
        )
    loss = model.contrastive_loss
    first, first_heads = multi_level_expected(loss, *steps[0])
    second, second_heads = multi_level_expected(loss, *steps[1], steps[0][0], steps[0][1])
    np.testing.assert_allclose(history.history["loss"][0], (first + second) / 2, atol=1e-5)
    for h in ("coarse", "fine"):
        expected = (first_heads[h] + second_heads[h]) / 2
        np.testing.assert_allclose(history.history[f"{h}_loss"][0], expected, atol=1e-5)

    embeddings, labels, mask = contents(model.memory_bank)
    assert mask.all()
    np.testing.assert_allclose(embeddings["fine"][:32], steps[1][1]["fine"], atol=1e-6)
    np.testing.assert_allclose(embeddings["fine"][32:], steps[0][1]["fine"][:8], atol=1e-6)
    np.testing.assert_array_equal(labels["coarse"][:32], steps[1][0]["coarse"])


def test_evaluate_ignores_the_bank_and_save_and_load_keep_it(tmp_path):
    x, y = problem(seed=2)
    model = small_model(24)
    model.compile(optimizer="adam")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert int(to_numpy(model.memory_bank.filled)) == 24

    # `evaluate` reports the in-batch loss: the same as without a bank.
    plain = small_model(None)
    plain.compile(optimizer="adam")
    plain(x[:2])
    plain.encoder.set_weights(model.encoder.get_weights())
    plain.heads.set_weights(model.heads.get_weights())
    a = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    b = plain.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(a["loss"], b["loss"], atol=1e-6)

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.memory_bank, MemoryBank) and loaded.memory_bank.size == 24
    for saved, restored in zip(model.memory_bank.weights, loaded.memory_bank.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(saved), to_numpy(restored))
    assert loaded.get_config()["memory_bank"]["config"]["size"] == 24
    assert small_model(None).get_config()["memory_bank"] is None


def test_bad_memory_bank_arguments_raise():
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    with pytest.raises(ValueError, match="`memory_bank` should be a `MemoryBank`"):
        ContrastiveModel(encoder, {"fine": 4}, memory_bank="big")
    with pytest.raises(ValueError, match="no `memory_bank`"):
        ContrastiveModel(encoder, {"fine": 4}).build_memory_bank(np.ones((2, 6)), np.zeros(2))


def test_custom_loops_build_the_bank_explicitly():
    x, y = problem(seed=3)
    x, y = x[:8], {k: v[:8] for k, v in y.items()}
    unbuilt = small_model(MemoryBank(size=20))
    unbuilt.compile(optimizer="adam")
    with pytest.raises(ValueError, match="build_memory_bank"):
        unbuilt.train_on_batch(x, y)
    model = small_model(MemoryBank(size=20))
    model.compile(optimizer="adam")
    model.build_memory_bank(x, y)
    model.train_on_batch(x, y)
    assert int(to_numpy(model.memory_bank.filled)) == 16


def test_batches_that_do_not_fit_the_slots_raise_a_value_error_naming_the_bank():
    """Were backend errors (`ConcatV2`, "Sizes of tensors must match"); the bank is unchanged."""
    bank = built_bank(size=8, dims={"fine": 2})
    loss = SupCon(temperature=1.0)
    wide = {"fine": np.eye(3, 3, dtype="float32")}
    with pytest.raises(
        ValueError,
        match=r"`memory_bank` holds embeddings of shape \(N, 2\) for head 'fine'.*"
        r"Received: shape \(3, 3\)",
    ):
        bank.term_losses(loss, {"fine": np.array([0, 1, 0])}, wide)
    multi_hot = {"fine": np.array([[0, 1], [1, 0], [0, 0]])}
    with pytest.raises(
        ValueError,
        match=r"`memory_bank` holds labels of shape \(N\) for head 'fine'.*"
        r"Received: shape \(3, 2\)",
    ):
        bank.term_losses(loss, multi_hot, {"fine": np.eye(3, 2, dtype="float32")})
    with pytest.raises(ValueError, match=r"`memory_bank` holds embeddings of shape \(N, 2\)"):
        bank.update(wide, {"fine": np.zeros(3)})
    assert int(to_numpy(bank.filled)) == 0
    fits = {"fine": np.eye(3, 2, dtype="float32")}
    value = bank.term_losses(loss, {"fine": np.array([0, 1, 0])}, fits)
    assert int(to_numpy(bank.filled)) == 3 and np.isfinite(to_numpy(value)).all()


def test_fit_with_a_bank_built_for_other_heads_raises_a_value_error_naming_it():
    x, y = problem(n=16)
    bank = MemoryBank(size=20)
    bank.build({"coarse": 3, "fine": 3}, {"coarse": (), "fine": ()})  # the heads are 4 wide
    model = small_model(bank)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"`memory_bank` holds embeddings of shape \(N, 3\)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
