import csv
import math

import keras
import numpy as np
import pytest

from keras_mlcl.evaluation import KNNCallback
from keras_mlcl.evaluation import knn_accuracy
from tests.evaluation.synthetic import clusters
from tests.evaluation.synthetic import split

LEVELS = ["coarse", "fine"]


def data(seed=0):
    x, labels = clusters(seed=seed, per_class=12, num_classes=4, dim=4)
    labels["fine"][:3] = -1
    train_x, train_y, val_x, val_y = split(x, labels)
    return (train_x, train_y), (val_x, val_y)


def identity_model():
    """A model whose output is its input, and stays so under an MSE to `x`."""
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_logs_reach_history_csv_logger_and_early_stopping(tmp_path):
    train, val = data()
    csv_path = str(tmp_path / "log.csv")
    callbacks = [
        KNNCallback(train, val, LEVELS, k=3),
        keras.callbacks.CSVLogger(csv_path),
        keras.callbacks.EarlyStopping(monitor="val_knn_fine_acc", mode="max", patience=1),
    ]
    model = identity_model()
    history = model.fit(train[0], train[0], epochs=3, batch_size=8, verbose=0, callbacks=callbacks)
    # The embeddings are the separated inputs: kNN is perfect; EarlyStopping stops after 2.
    assert history.history["val_knn_coarse_acc"] == [1.0, 1.0]
    assert history.history["val_knn_fine_acc"] == [1.0, 1.0]
    rows = read_csv(csv_path)
    assert [float(row["val_knn_fine_acc"]) for row in rows] == [1.0, 1.0]
    assert [float(row["val_knn_coarse_acc"]) for row in rows] == [1.0, 1.0]


def test_every_writes_nan_in_between(tmp_path):
    train, val = data()
    csv_path = str(tmp_path / "log.csv")
    callbacks = [KNNCallback(train, val, "fine", k=3, every=2), keras.callbacks.CSVLogger(csv_path)]
    history = identity_model().fit(
        train[0], train[0], epochs=4, batch_size=16, verbose=0, callbacks=callbacks
    )
    values = history.history["val_knn_fine_acc"]
    assert math.isnan(values[0]) and math.isnan(values[2])
    assert values[1] == 1.0 and values[3] == 1.0
    column = [row["val_knn_fine_acc"] for row in read_csv(csv_path)]
    assert [math.isnan(float(value)) for value in column] == [True, False, True, False]


def test_dict_output_uses_embedding_and_matches_direct_knn():
    keras.utils.set_random_seed(0)
    train, val = data(seed=1)
    inputs = keras.Input((4,))
    embedding = keras.layers.Dense(3, name="embedding")(inputs)
    logits = keras.layers.Dense(4, name="logits")(embedding)
    model = keras.Model(inputs, {"embedding": embedding, "logits": logits})
    model.compile(
        optimizer="adam", loss={"embedding": "mse", "logits": "sparse_categorical_crossentropy"}
    )
    targets = {"embedding": np.zeros((len(train[0]), 3)), "logits": train[1]["coarse"]}
    callback = KNNCallback(train, val, LEVELS, k=5)
    history = model.fit(train[0], targets, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    # After fit the weights are those of the last epoch end: recompute directly.
    train_embeddings = model.predict(train[0], verbose=0)["embedding"]
    val_embeddings = model.predict(val[0], verbose=0)["embedding"]
    for level in LEVELS:
        expected = knn_accuracy(
            train_embeddings, train[1][level], val_embeddings, val[1][level], k=5
        )
        assert history.history[f"val_knn_{level}_acc"][-1] == pytest.approx(expected)


class EmbeddingModel(keras.Model):
    """`call` hides the clusters; `embed` shows them: the callback should use `embed`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")
        self.embed_calls = []

    def call(self, x):
        return self.dense(x) * 0.0 + 1.0

    def embed(self, x):
        self.embed_calls.append(None)
        return {"embedding": self.dense(keras.ops.convert_to_tensor(x))}


class BatchedEmbeddingModel(EmbeddingModel):
    """An `embed` that takes a batch size, as `ContrastiveModel.embed` does."""

    def embed(self, x, batch_size=None):
        self.embed_calls.append(batch_size)
        return self.dense(keras.ops.convert_to_tensor(x))


@pytest.mark.parametrize(
    "model_class, expected_calls",
    [(EmbeddingModel, [None] * 4), (BatchedEmbeddingModel, [7] * 4)],
)
def test_model_embed_is_preferred(model_class, expected_calls):
    train, val = data()
    model = model_class()
    model.compile(optimizer="sgd", loss="mse")
    callback = KNNCallback(train, val, LEVELS, k=3, batch_size=7)
    history = model.fit(train[0], train[0], epochs=2, verbose=0, callbacks=[callback])
    assert history.history["val_knn_fine_acc"] == [1.0, 1.0]
    assert model.embed_calls == expected_calls


def test_missing_embedding_entry_raises():
    train, val = data()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"features": keras.layers.Dense(2)(inputs)})
    callback = KNNCallback(train, val, LEVELS)
    callback.set_model(model)
    with pytest.raises(ValueError, match="'embedding' entry"):
        callback.on_epoch_end(0, {})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": ["coarse", "middle"]}, "Missing 'middle'"),
        ({"levels": []}, "`levels` should be"),
        ({"k": 0}, "`k` should be a positive integer"),
        ({"every": 0}, "`every` should be a positive integer"),
        ({"val_data": np.zeros((3, 4))}, "`val_data` should be a tuple"),
        ({"metric": "jaccard"}, "`metric` should be one of"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    train, val = data()
    arguments = {"train_data": train, "val_data": val, "levels": LEVELS}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        KNNCallback(**arguments)


def test_labels_must_match_inputs():
    train, val = data()
    short = (val[0], {"coarse": val[1]["coarse"][:-1], "fine": val[1]["fine"]})
    with pytest.raises(ValueError, match="one row per input"):
        KNNCallback(train, short, LEVELS)
