"""A new loss needs its rule only: `OrdinalSupCon` (tests/losses/ordinal_supcon.py) against
NumPy, with a memory bank's references, in `ContrastiveModel` with a bank, and saved.

Under data parallelism it runs in tests/distribution/multi_replica_checks.py (torch)."""

import keras
import numpy as np

from keras_mlcl import ContrastiveModel
from tests import reference
from tests.losses.ordinal_supcon import OrdinalSupCon
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows


def ordinal_weights(labels, other=None):
    other = labels if other is None else other
    labels, other = np.asarray(labels, float), np.asarray(other, float)
    w = 1.0 / (1.0 + np.abs(labels[:, None] - other[None, :]))
    return w * ((labels[:, None] >= 0) & (other[None, :] >= 0))


def expected_loss(labels, z, temperature):
    losses, valid = reference.supcon(z, ordinal_weights(labels), temperature)
    return reference.valid_mean(losses, valid)


def test_value_against_numpy_with_an_unlabelled_row():
    rng = np.random.default_rng(0)
    z, labels = unit_rows(rng, 12, 5), rng.integers(0, 6, 12)
    labels[3] = -1
    loss = OrdinalSupCon(temperature=0.3)
    assert_allclose(loss(labels, z), expected_loss(labels, z, 0.3), atol=1e-5)
    # The model's shape, {head: ...}, gives the same value.
    assert_allclose(loss({"age": labels}, {"age": z}), expected_loss(labels, z, 0.3), atol=1e-5)
    # Several blocks (the summed kernel) too.
    blocked = OrdinalSupCon(temperature=0.3, block_size=5)
    assert_allclose(blocked(labels, z), expected_loss(labels, z, 0.3), atol=1e-5)


def test_references_are_the_concatenated_batch():
    rng = np.random.default_rng(1)
    z, labels = unit_rows(rng, 10, 4), rng.integers(0, 5, 10)
    bank_z, bank_labels = unit_rows(rng, 7, 4), rng.integers(0, 5, 7)
    mask = np.arange(7) < 4
    value = OrdinalSupCon(temperature=0.2).term_losses(
        labels, z, reference_embeddings=bank_z, reference_labels=bank_labels, reference_mask=mask
    )
    keys = np.concatenate([z, bank_z[mask]])
    key_labels = np.concatenate([labels, bank_labels[mask]])
    losses, valid = reference.supcon(keys, ordinal_weights(key_labels), 0.2)
    assert_allclose(value[0], reference.valid_mean(losses[:10], valid[:10]), atol=1e-5)


def test_trains_with_a_memory_bank_and_saves(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6)).astype("float32")
    age = rng.integers(0, 8, 64)
    keras.utils.set_random_seed(0)
    model = ContrastiveModel(
        keras.Sequential([keras.Input((6,)), keras.layers.Dense(12)]),
        heads={"age": 4},
        loss=OrdinalSupCon(temperature=0.5),
        memory_bank=48,
    )
    model.compile(optimizer="adam")
    history = model.fit(x, {"age": age}, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["age_loss"]).all()
    refs = model.memory_bank.references()
    assert int(to_numpy(refs["reference_mask"]).sum()) == 48  # 4 steps x 2 views x 16 rows
    # The bank holds the last step's labels as the loss takes them, newest first.
    np.testing.assert_array_equal(to_numpy(refs["reference_labels"]["age"])[:16], age[48:])
    path = str(tmp_path / "ordinal.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.contrastive_loss.get_config() == model.contrastive_loss.get_config()
    assert_allclose(loaded.predict(x, verbose=0)["age"], model.predict(x, verbose=0)["age"])
