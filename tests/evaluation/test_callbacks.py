import csv
import math
import warnings

import keras
import numpy as np
import pytest

from keras_mlcl.evaluation import KNNCallback
from keras_mlcl.evaluation import RetrievalCallback
from keras_mlcl.evaluation import knn_accuracy
from keras_mlcl.evaluation import retrieval_metrics_per_level
from tests.evaluation.synthetic import clusters
from tests.evaluation.synthetic import split
from tests.models import problems

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


# RetrievalCallback, on a tiny ContrastiveModel.

VAL_X, VAL_Y = problems.clustered(seed=1, n=48)


def contrastive_model(learning_rate=1e-2):
    model = problems.model(seed=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    return model


class RecordRetrieval(keras.callbacks.Callback):
    """After the callback under test: the logs of each epoch, and the metrics by hand."""

    def __init__(self, head=None):
        super().__init__()
        self.head = head
        self.logs, self.expected = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))
        if self.head is None:
            embeddings = self.model.embed(VAL_X)
        else:
            embeddings = self.model.predict(VAL_X, verbose=0)[self.head]
        self.expected.append(retrieval_metrics_per_level(embeddings, VAL_Y, ks=(1, 3)))


def retrieval_logs(logs):
    return {key: value for key, value in logs.items() if key.startswith("val_")}


@pytest.mark.parametrize("head", [None, "fine"])
def test_retrieval_logs_equal_the_metrics_of_that_epoch(head):
    x, y = problems.clustered(n=64)
    callback = RetrievalCallback(VAL_X, VAL_Y, ks=(1, 3), head=head, batch_size=16)
    record = RecordRetrieval(head)
    model = contrastive_model()
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[callback, record])
    assert record.expected[0] != record.expected[1]  # the model moved: each epoch is its own
    for logs, expected in zip(record.logs, record.expected, strict=True):
        assert retrieval_logs(logs) == pytest.approx(
            {
                f"val_{level}_{name}": values[metric]
                for level, values in expected.items()
                for name, metric in (
                    ("recall_at_1", "recall@1"),
                    ("recall_at_3", "recall@3"),
                    ("map_at_r", "map@r"),
                )
            }
        )
        assert sorted(retrieval_logs(logs)) == sorted(callback.log_keys())
    assert history.history["val_fine_map_at_r"] == [
        logs["val_fine_map_at_r"] for logs in record.logs
    ]


def test_retrieval_every_two_logs_on_epochs_two_and_four_only():
    x, y = problems.clustered(n=64)
    record = RecordRetrieval()
    callbacks = [RetrievalCallback(VAL_X, VAL_Y, every=2, ks=(1, 3)), record]
    history = contrastive_model().fit(x, y, batch_size=32, epochs=4, verbose=0, callbacks=callbacks)
    logged = [bool(retrieval_logs(logs)) for logs in record.logs]
    assert logged == [False, True, False, True]
    assert history.history["val_coarse_recall_at_1"] == [
        record.logs[1]["val_coarse_recall_at_1"],
        record.logs[3]["val_coarse_recall_at_1"],
    ]
    assert record.logs[3]["val_coarse_recall_at_1"] == pytest.approx(
        record.expected[3]["coarse"]["recall@1"]
    )


@pytest.mark.parametrize("every, stopped_after", [(1, 2), (2, 4)])
def test_retrieval_drives_early_stopping(every, stopped_after):
    """With a learning rate of 0 the score never improves: patience 0 stops at the 2nd evaluation;
    with `every=2` the skipped epochs only warn that the key is missing."""
    x, y = problems.clustered(n=64)
    callbacks = [
        RetrievalCallback(VAL_X, VAL_Y, every=every),
        keras.callbacks.EarlyStopping(monitor="val_fine_map_at_r", mode="max", patience=0),
    ]
    model = contrastive_model(learning_rate=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=32, epochs=6, verbose=0, callbacks=callbacks)
    assert len(history.history["loss"]) == stopped_after
    assert len(history.history["val_fine_map_at_r"]) == stopped_after // every
    missing = [w for w in caught if "val_fine_map_at_r` which is not available" in str(w.message)]
    assert len(missing) == (stopped_after // 2 if every == 2 else 0)


def test_retrieval_missing_head_raises():
    callback = RetrievalCallback(VAL_X, VAL_Y, head="middle")
    callback.set_model(contrastive_model())
    with pytest.raises(ValueError, match="'middle' entry"):
        callback.on_epoch_end(0, {})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"every": 0}, "`every` should be a positive integer"),
        ({"ks": ()}, "`ks` should be a non-empty tuple"),
        ({"ks": 5}, "`ks` should be a non-empty tuple"),
        ({"ks": (1, 0)}, "`ks` should be a positive integer"),
        ({"head": ""}, "`head` should be None or an output name"),
        ({"batch_size": None}, "`batch_size` should be a positive integer"),
        ({"y": {}}, "`y` should be a non-empty dict"),
        ({"y": VAL_Y["fine"]}, "`y` should be a non-empty dict"),
        ({"y": {"fine": VAL_Y["fine"][:-1]}}, r"`y\['fine'\]` should be \(48,\) int class ids"),
        ({"y": {"fine": np.eye(48)}}, r"`y\['fine'\]` should be \(48,\) int class ids"),
        ({"y": {"fine": np.arange(48)}}, "a class with two rows or more"),
        ({"x": 3.0}, "`x` should be an input array"),
    ],
)
def test_retrieval_invalid_arguments_raise(kwargs, message):
    arguments = {"x": VAL_X, "y": VAL_Y}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        RetrievalCallback(**arguments)
