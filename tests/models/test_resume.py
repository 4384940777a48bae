"""Exact resume: the random state of augmentation and the epoch orders are saved with the model."""

import os

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl.models import epoch_order
from tests.models import problems
from tests.testing import to_numpy

FIT = dict(batch_size=32, epochs=4, verbose=0, shuffle=False)


def augment(kind):
    if kind == "feature_views":
        return keras.Sequential(
            [keras.layers.GaussianNoise(0.3, seed=1), keras.layers.Dropout(0.2, seed=2)]
        )
    return keras.layers.GaussianNoise(0.3)  # unseeded: drawn from the global seed


def compiled_model(kind, seed=3):
    keras.utils.set_random_seed(seed)
    model = ContrastiveModel(
        problems.encoder(), heads={"coarse": 8, "fine": 8}, augment=augment(kind)
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def built(model, x):
    model(x[:2])
    model.optimizer.build(model.trainable_variables)
    return model


def seed_states(model):
    weights = {id(w) for w in model.weights}
    return [to_numpy(v) for v in model.variables if id(v) not in weights]


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def max_difference(a, b):
    return max(
        float(np.max(np.abs(u - v))) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


@pytest.mark.parametrize("kind", ["feature_views", "keras_noise"])
def test_resume_with_random_augment_matches_an_uninterrupted_run(tmp_path, kind):
    """`BackupAndRestore` after an interruption gives the uninterrupted weights.

    The views are random, so this holds only if the augmentation's seed
    generators resume where they stopped. Data order is a separate matter:
    `shuffle=False` keeps it the same in both runs.
    """
    x, y = problems.clustered(1, n=128)
    reference = compiled_model(kind)
    reference.fit(x, y, **FIT)

    backup = os.path.join(tmp_path, "backup")
    interrupted = compiled_model(kind)
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(
            x, y, callbacks=[keras.callbacks.BackupAndRestore(backup), InterruptAt(2)], **FIT
        )

    resumed = compiled_model(kind)
    resumed.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup)], **FIT)
    assert max_difference(resumed, reference) <= 1e-6
    for got, expected in zip(seed_states(resumed), seed_states(reference), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_resume_with_the_default_shuffle_matches_an_uninterrupted_run(tmp_path):
    """With Keras' default `shuffle=True`, the resumed epochs visit the rows in the same orders.

    The resumed model starts from other weights, seed states and global seed:
    all must come from the backup, the seed of the epoch orders included.
    """
    x, y = problems.clustered(1, n=128)
    fit = {**FIT, "shuffle": True}
    reference = compiled_model("feature_views")
    reference.fit(x, y, **fit)

    backup = os.path.join(tmp_path, "backup")
    interrupted = compiled_model("feature_views")
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(
            x, y, callbacks=[keras.callbacks.BackupAndRestore(backup), InterruptAt(2)], **fit
        )

    resumed = compiled_model("feature_views", seed=99)
    resumed.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup)], **fit)
    assert resumed.epoch_order_seed == reference.epoch_order_seed
    np.testing.assert_allclose(
        np.concatenate([w.ravel() for w in resumed.get_weights()]),
        np.concatenate([w.ravel() for w in reference.get_weights()]),
        rtol=0,
        atol=1e-6,
    )


@pytest.fixture
def epoch_orders(monkeypatch):
    """The order each epoch of `fit` set, recorded as it is set."""
    orders = []
    start_epoch = epoch_order.EpochOrderDataset.start_epoch

    def recording(self, seed, epoch):
        start_epoch(self, seed, epoch)
        orders.append(self.order.copy())

    monkeypatch.setattr(epoch_order.EpochOrderDataset, "start_epoch", recording)
    return orders


def test_each_epoch_has_its_own_order_and_validation_split_takes_the_last_rows(epoch_orders):
    """Epoch `e` visits the training rows in `default_rng((seed, e))`'s order, a seed per fit."""
    x, y = problems.clustered(2, n=64)
    model = compiled_model("feature_views")
    history = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0)
    seed = model.epoch_order_seed
    assert len(epoch_orders) == 2
    for epoch, order in enumerate(epoch_orders):
        np.testing.assert_array_equal(order, np.random.default_rng((seed, epoch)).permutation(48))
    assert not np.array_equal(epoch_orders[0], epoch_orders[1])
    validation = model.evaluate(x[48:], {k: v[48:] for k, v in y.items()}, verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], validation[0], rtol=1e-5)

    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # a new fit draws a new seed
    assert model.epoch_order_seed != seed
    assert not np.array_equal(epoch_orders[2], epoch_orders[0])


@pytest.mark.parametrize("shuffle", [False, "batch"])
def test_other_shuffles_and_datasets_go_to_keras_as_they_are(epoch_orders, shuffle):
    x, y = problems.clustered(2, n=64)
    model = compiled_model("feature_views")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=shuffle, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, steps_per_epoch=2, verbose=0)
    assert epoch_orders == []


def test_the_seed_of_the_epoch_orders_round_trips_through_weights_files(tmp_path):
    x, y = problems.clustered(2, n=64)
    model = compiled_model("feature_views")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    weights = os.path.join(tmp_path, "model.weights.h5")
    model.save_weights(weights)
    fresh = built(compiled_model("feature_views", seed=4), x)
    fresh.load_weights(weights)
    assert fresh.epoch_order_seed == model.epoch_order_seed != 0


def test_a_validation_split_without_training_rows_is_refused():
    x, y = problems.clustered(2, n=4)
    model = compiled_model("feature_views")
    with pytest.raises(ValueError, match="`validation_split`"):
        model.fit(x, y, validation_split=0.9, verbose=0)


@pytest.fixture(scope="module")
def trained():
    """A model with seeded random views after one epoch, shared by the tests that read it."""
    x, y = problems.clustered(1, n=64)
    model = compiled_model("feature_views")
    model.fit(x, y, **{**FIT, "epochs": 1})
    return model, x


def test_seed_states_round_trip_through_keras_and_weights_files(tmp_path, trained):
    model, x = trained
    states = seed_states(model)
    assert len(states) == 2
    initial = seed_states(compiled_model("feature_views"))
    assert any((a != b).any() for a, b in zip(states, initial, strict=True))

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    for got, expected in zip(seed_states(keras.saving.load_model(path)), states, strict=True):
        np.testing.assert_array_equal(got, expected)

    weights = os.path.join(tmp_path, "model.weights.h5")
    model.save_weights(weights)
    fresh = built(compiled_model("feature_views", seed=4), x)
    fresh.load_weights(weights)
    for got, expected in zip(seed_states(fresh), states, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert max_difference(fresh, model) == 0.0


def test_files_without_seed_states_still_load(tmp_path, monkeypatch, trained):
    model, x = trained
    weights = os.path.join(tmp_path, "old.weights.h5")
    archive = os.path.join(tmp_path, "old.keras")
    with monkeypatch.context() as patch:  # files as written before seed states were saved
        patch.setattr(ContrastiveModel, "save_own_variables", keras.Model.save_own_variables)
        model.save_weights(weights)
        model.save(archive)

    fresh = built(compiled_model("feature_views", seed=4), x)
    initial = seed_states(fresh)
    fresh.load_weights(weights)
    assert max_difference(fresh, model) == 0.0
    for got, expected in zip(seed_states(fresh), initial, strict=True):
        np.testing.assert_array_equal(got, expected)
    loaded = keras.saving.load_model(archive)
    assert max_difference(loaded, model) == 0.0


def test_weights_load_into_a_model_with_other_random_layers(tmp_path, trained):
    model, x = trained
    weights = os.path.join(tmp_path, "model.weights.h5")
    model.save_weights(weights)

    keras.utils.set_random_seed(3)
    plain = ContrastiveModel(problems.encoder(), heads={"coarse": 8, "fine": 8})
    plain.compile(optimizer=keras.optimizers.Adam(1e-2))
    built(plain, x)
    with pytest.warns(UserWarning, match="seed-generator states"):
        plain.load_weights(weights)
    assert max_difference(plain, model) == 0.0
