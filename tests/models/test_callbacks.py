import csv
import os

import keras
import numpy as np

from tests.models import problems
from tests.testing import assert_allclose

HEAD_METRICS = {"loss", "coarse_loss", "fine_loss"}


def compiled_model(seed=0, **kwargs):
    model = problems.model(seed=seed, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_checkpoint_early_stopping_reduce_lr_csv_and_tensorboard(tmp_path):
    x, y = problems.clustered()
    model = compiled_model()
    checkpoint = os.path.join(tmp_path, "best.keras")
    csv_path = os.path.join(tmp_path, "log.csv")
    board = os.path.join(tmp_path, "board")
    callbacks = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="fine_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="coarse_loss", patience=0, min_delta=10.0),
        keras.callbacks.ReduceLROnPlateau(
            monitor="fine_loss", patience=0, min_delta=10.0, factor=0.5
        ),
        keras.callbacks.CSVLogger(csv_path),
        keras.callbacks.TensorBoard(board),
    ]
    history = model.fit(x, y, batch_size=64, epochs=5, verbose=0, callbacks=callbacks)
    # EarlyStopping on a head metric: no epoch improves by 10, so it stops after 2.
    assert len(history.history["loss"]) == 2
    # ReduceLROnPlateau on a head metric halved the rate once.
    assert_allclose(keras.ops.convert_to_numpy(model.optimizer.learning_rate), 5e-3, atol=1e-8)
    restored = keras.saving.load_model(checkpoint)
    assert_allclose(
        restored.predict(x[:8], verbose=0)["fine"], model.predict(x[:8], verbose=0)["fine"], 1e-5
    )
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and HEAD_METRICS <= set(rows[0])
    assert_allclose(float(rows[-1]["fine_loss"]), history.history["fine_loss"][-1], atol=1e-5)
    events = [
        os.path.join(root, name)
        for root, _, names in os.walk(board)
        for name in names
        if name.startswith("events.out.tfevents")
    ]
    assert events and all(os.path.getsize(e) > 0 for e in events)


class CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


class Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def test_backup_and_restore_resumes_and_matches_an_uninterrupted_run(tmp_path):
    x, y = problems.clustered(1, n=128)
    epochs = 4
    fit = dict(batch_size=32, epochs=epochs, verbose=0, shuffle=False)

    reference = compiled_model(seed=3)
    reference.fit(x, y, **fit)

    backup = os.path.join(tmp_path, "backup")
    model = compiled_model(seed=3)
    try:
        model.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup), CrashAt(1)], **fit)
        raise AssertionError("the crash callback did not stop training")
    except RuntimeError as error:
        assert "simulated crash" in str(error)

    resumed = compiled_model(seed=99)  # other initial weights: all must come from the backup
    seen = Epochs()
    resumed.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup), seen], **fit)
    assert seen.seen == [2, 3]
    for got, expected in zip(resumed.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


class BatchLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def test_terminate_on_nan_stops_at_a_batch_with_a_nan_input():
    # On TensorFlow without XLA, a Dense layer with ReLU maps a NaN row to
    # zeros: the loss used to stay finite while the weights turned NaN.
    x, y = problems.clustered(1, n=128)
    x[45, 3] = np.nan  # in the second batch of 32
    model = compiled_model()  # default compile(): no jit_compile on CPU TensorFlow
    batches = BatchLosses()
    history = model.fit(
        x,
        y,
        batch_size=32,
        epochs=3,
        verbose=0,
        shuffle=False,
        callbacks=[keras.callbacks.TerminateOnNaN(), batches],
    )
    assert len(batches.losses) == 2  # stopped right after the batch with the NaN
    assert np.isfinite(batches.losses[0]) and np.isnan(batches.losses[1])
    assert len(history.history["loss"]) == 1
    for name in HEAD_METRICS:
        assert np.isnan(history.history[name][0]), name
    assert np.isnan(model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["loss"])


def test_zero_inputs_and_embeddings_are_not_nan():
    # A zero input row gives zero embeddings (every bias starts at 0); the
    # loss treats them as legitimate samples, not as a NaN.
    x, y = problems.clustered(1, n=64)
    x[5] = 0.0
    model = compiled_model()
    assert np.abs(model.predict(x[:8], verbose=0)["fine"][5]).max() == 0.0
    batches = BatchLosses()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False, callbacks=[batches])
    assert len(batches.losses) == 4 and np.isfinite(batches.losses).all()
    assert all(np.isfinite(w).all() for w in model.get_weights())
