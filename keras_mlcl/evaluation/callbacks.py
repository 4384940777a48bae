"""Callbacks that score the model's embeddings during `fit`: kNN accuracy and retrieval."""

import inspect
import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl.evaluation.knn import KNN_METRICS
from keras_mlcl.evaluation.knn import knn_accuracy
from keras_mlcl.evaluation.retrieval import retrieval_metrics_per_level
from keras_mlcl.utils.labels import as_class_ids
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int


def _check_inputs(name: str, x: Any) -> int:
    """The number of rows of the input array (or structure of arrays) `x`, or raises."""
    leaves = keras.tree.flatten(x)
    if not leaves or np.ndim(leaves[0]) == 0:
        raise ValueError(f"`{name}` should be an input array (N, ...).")
    return len(leaves[0])


def _check_data(name: str, data: Any, levels: Sequence[str]) -> tuple[Any, dict[str, np.ndarray]]:
    """Returns `(x, {level: labels})` from a `(x, labels)` tuple, or raises."""
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not isinstance(data[1], dict):
        raise ValueError(
            f"`{name}` should be a tuple (x, {{level: labels}}). "
            f"Received: `{name}`={type(data).__name__}"
        )
    x, labels = data
    num_samples = _check_inputs(f"{name}[0]", x)
    for level in levels:
        if level not in labels:
            raise ValueError(
                f"`{name}` should have labels for every level of `levels`. Missing "
                f"{level!r}; received levels {sorted(labels)}"
            )
        if len(np.asarray(labels[level])) != num_samples:
            raise ValueError(
                f"`{name}` labels of level {level!r} should have one row per input "
                f"({num_samples}). Received: {np.shape(labels[level])}"
            )
    return x, {level: np.asarray(labels[level]) for level in levels}


class EmbeddingCallback(keras.callbacks.Callback):
    """Base of the callbacks that score the model's embeddings every few epochs.

    At the end of epochs `every`, `2 * every`, ... (counting from 1, as
    Keras' `validation_freq`), `on_epoch_end` writes `scores()` into the
    epoch's `logs`; on the other epochs it writes `skipped_logs()`. A
    subclass implements `scores` (and may override `skipped_logs`) and calls
    `embed` for the embeddings of its inputs.

    Args:
        every: score every this many epochs.
        batch_size: batch size of `model.predict` (and of `model.embed`
            when it takes one), or None for Keras' default (32).
        head: None for the model's embeddings (below), or the name of an
            entry of the dict that `model.predict` returns.
    """

    def __init__(self, every: int, batch_size: int | None, head: str | None) -> None:
        super().__init__()
        self.every = check_positive_int("every", every)
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)
        self.batch_size = batch_size
        if head is not None and (not isinstance(head, str) or not head):
            raise ValueError(f"`head` should be None or an output name. Received: `head`={head!r}")
        self.head = head

    def embed(self, x: Any) -> np.ndarray:
        """The model's outputs for `x`, as a NumPy array `(N, D)`.

        With `head=None`: `model.embed(x)` when the model has an `embed`
        method (as `ContrastiveModel` does; `batch_size` is passed on when
        `embed` takes it), else `model.predict(x)`, taking its `"embedding"`
        entry when it returns a dict. With a `head`: `model.predict(x)[head]`.
        Outputs with more than two axes are flattened to `(N, -1)`.
        """
        model = self.model
        embed = getattr(model, "embed", None)
        if self.head is None and callable(embed):
            if "batch_size" in inspect.signature(embed).parameters:
                outputs = embed(x, batch_size=self.batch_size)
            else:
                outputs = embed(x)
        else:
            outputs = model.predict(x, batch_size=self.batch_size, verbose=0)
        entry = "embedding" if self.head is None else self.head
        if self.head is not None and not isinstance(outputs, dict):
            raise ValueError(
                f"`head`={self.head!r} needs a model whose `predict` returns a dict; it "
                f"returned {type(outputs).__name__}."
            )
        if isinstance(outputs, dict):
            if entry not in outputs:
                raise ValueError(
                    f"`{type(self).__name__}` needs the model's {entry!r} output: the model "
                    f"returned a dict without an {entry!r} entry. Received keys: {sorted(outputs)}"
                )
            outputs = outputs[entry]
        outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
        return outputs.reshape(outputs.shape[0], -1)

    def scores(self) -> dict[str, float]:
        """The logs of an evaluated epoch: `{key: value}`."""
        raise NotImplementedError

    def skipped_logs(self) -> dict[str, float]:
        """The logs of an epoch that is not evaluated. Defaults to none."""
        return {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        if (epoch + 1) % self.every == 0:
            logs.update(self.scores())
        else:
            logs.update(self.skipped_logs())


class KNNCallback(EmbeddingCallback):
    """Logs `val_knn_<level>_acc`, the kNN accuracy of each level, during `fit`.

    At the end of every `every`-th epoch (epochs `every`, `2 * every`, ...,
    counting from 1, as Keras' `validation_freq`), the callback embeds the
    training and validation inputs with the model being trained and writes,
    for each level,

    ```
    logs["val_knn_<level>_acc"] = knn_accuracy(
        embed(x_train), y_train[level], embed(x_val), y_val[level], k)
    ```

    (micro-F1 of the neighbour vote for a multi-hot level; see
    `knn_accuracy`). On the other epochs the keys hold NaN, so that the
    columns exist from the first epoch on; `EarlyStopping` and
    `ReduceLROnPlateau` count a NaN as "no improvement", so with `every > 1`
    their `patience` counts epochs, not evaluations.

    The embeddings are `model.embed(x)` when the model has an `embed` method
    (as `ContrastiveModel` does), else `model.predict(x)`, taking its
    `"embedding"` entry when it returns a dict (see `EmbeddingCallback.embed`).

    Order matters: Keras calls callbacks in list order with one shared
    `logs` dict, so put `KNNCallback` *before* `CSVLogger`, `EarlyStopping`,
    `ModelCheckpoint` or `ReduceLROnPlateau` in `callbacks=[...]` for them to
    see its keys (`History` and the progress bar always come last).

    Args:
        train_data: `(x, {level: labels})` of NumPy arrays: the reference set.
        val_data: `(x, {level: labels})`: the set that is scored.
        levels: the level names to score (a name or a list of names).
        k: number of neighbours. Defaults to 20.
        every: evaluate every this many epochs. Defaults to 1.
        metric: `"cosine"` (default), `"euclidean"` or `"manhattan"`.
        batch_size: batch size of `model.predict` (and of `model.embed` when
            it takes one). Defaults to None (Keras' default, 32).

    Example: any Keras model works (a `ContrastiveModel` is fitted the same way); the
    `CSVLogger` after the callback logs its keys.

    >>> x = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
    >>> y = {"coarse": np.arange(40) % 2, "fine": np.arange(40) % 4}
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> callbacks = [
    ...     KNNCallback((x, y), (x, y), levels=["coarse", "fine"], k=3),
    ...     keras.callbacks.CSVLogger("log.csv"),
    ...     keras.callbacks.EarlyStopping(monitor="val_knn_fine_acc", mode="max"),
    ... ]
    >>> history = model.fit(x, np.zeros((40, 4)), epochs=2, callbacks=callbacks, verbose=0)
    >>> open("log.csv").readline().strip()
    'epoch,loss,val_knn_coarse_acc,val_knn_fine_acc'
    """

    def __init__(
        self,
        train_data: tuple[ArrayLike, LevelLabels],
        val_data: tuple[ArrayLike, LevelLabels],
        levels: Sequence[str],
        k: int = 20,
        every: int = 1,
        metric: str = "cosine",
        batch_size: int | None = None,
    ) -> None:
        super().__init__(every, batch_size, head=None)
        if isinstance(levels, str):
            levels = [levels]
        if not isinstance(levels, (list, tuple)) or not levels:
            raise ValueError(
                "`levels` should be a level name or a non-empty list of names. "
                f"Received: `levels`={levels!r}"
            )
        self.levels = list(levels)
        self.k = check_positive_int("k", k)
        self.metric = check_choice("metric", metric, KNN_METRICS)
        self.train_x, self.train_labels = _check_data("train_data", train_data, self.levels)
        self.val_x, self.val_labels = _check_data("val_data", val_data, self.levels)

    def log_keys(self) -> list[str]:
        """The keys this callback writes into `logs`, in level order."""
        return [f"val_knn_{level}_acc" for level in self.levels]

    def skipped_logs(self) -> dict[str, float]:
        """NaN for each key, so that the columns exist from the first epoch on."""
        return {key: math.nan for key in self.log_keys()}

    def scores(self) -> dict[str, float]:
        """`{"val_knn_<level>_acc": kNN accuracy}` for each level."""
        train_embeddings = self.embed(self.train_x)
        val_embeddings = self.embed(self.val_x)
        return {
            key: knn_accuracy(
                train_embeddings,
                self.train_labels[level],
                val_embeddings,
                self.val_labels[level],
                k=self.k,
                metric=self.metric,
            )
            for level, key in zip(self.levels, self.log_keys(), strict=True)
        }


class RetrievalCallback(EmbeddingCallback):
    """Logs the validation Recall@k and mAP@R of each label level during `fit`.

    At the end of every `every`-th epoch (epochs `every`, `2 * every`, ...,
    counting from 1), the callback embeds the validation inputs `x` with the
    model being trained and scores them leave-one-out (each row is a query,
    searched among the other rows) with `retrieval_metrics_per_level`,
    writing, for each level and each `k` of `ks`,

    ```
    logs["val_<level>_recall_at_<k>"] = Recall@k
    logs["val_<level>_map_at_r"] = mAP@R
    ```

    so that `EarlyStopping`, `ModelCheckpoint`, `ReduceLROnPlateau`,
    `TensorBoard` and `CSVLogger` can use them. The embeddings are
    `model.embed(x)` with `head=None` (`model.predict(x)` for a model without
    `embed`), else `model.predict(x)[head]`.

    On the epochs it skips, the callback writes nothing, as Keras does for
    `val_loss` with `validation_freq`: `EarlyStopping` and
    `ReduceLROnPlateau` warn that the key is missing and wait (their
    `patience` counts evaluations), `ModelCheckpoint(save_best_only=True)`
    warns and saves nothing, and `History` lists only the evaluated epochs.
    `CSVLogger` fixes its columns at the end of the first epoch, so with
    `every > 1` it leaves these keys out.

    Put the callback *before* the callbacks that read its keys in
    `callbacks=[...]` (Keras calls them in order with one shared `logs`).

    Args:
        x: the validation inputs, `(N, ...)` (or a structure of such arrays).
        y: dict `{level: (N,) int class ids}`; rows with a class id < 0 are
            left out of the scores.
        every: evaluate every this many epochs. Defaults to 1.
        ks: positive ints, the `k` of each Recall@k. Defaults to `(1, 5)`.
        head: None (default) for the model's embeddings, or the name of an
            output of `model.predict` (e.g. a projection head).
        batch_size: batch size used to embed `x`. Defaults to 256.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
    >>> y = {"coarse": np.arange(40) % 2, "fine": np.arange(40) % 4}
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> callbacks = [
    ...     RetrievalCallback(x, y, ks=(1,)),
    ...     keras.callbacks.EarlyStopping(monitor="val_fine_map_at_r", mode="max"),
    ... ]
    >>> history = model.fit(x, np.zeros((40, 4)), epochs=2, callbacks=callbacks, verbose=0)
    >>> sorted(key for key in history.history if key.startswith("val_"))
    ['val_coarse_map_at_r', 'val_coarse_recall_at_1', 'val_fine_map_at_r', 'val_fine_recall_at_1']
    """

    def __init__(
        self,
        x: Any,
        y: LevelLabels,
        every: int = 1,
        ks: Sequence[int] = (1, 5),
        head: str | None = None,
        batch_size: int = 256,
    ) -> None:
        check_positive_int("batch_size", batch_size)
        super().__init__(every, batch_size, head)
        if not isinstance(ks, (list, tuple)) or not ks:
            raise ValueError(
                f"`ks` should be a non-empty tuple of positive ints. Received: `ks`={ks!r}"
            )
        self.ks = tuple(check_positive_int("ks", k) for k in ks)
        if not isinstance(y, Mapping) or not y:
            raise ValueError(
                "`y` should be a non-empty dict {level: (N,) class ids}. "
                f"Received: `y`={type(y).__name__}"
            )
        num_samples = _check_inputs("x", x)
        self.x = x
        self.labels = {
            level: self._check_level(level, labels, num_samples) for level, labels in y.items()
        }

    @staticmethod
    def _check_level(level: str, labels: ArrayLike, num_samples: int) -> np.ndarray:
        """`labels` as `(N,)` class ids with a class of two rows or more, or raises."""
        class_ids = as_class_ids(labels)
        if class_ids is None or class_ids.shape[0] != num_samples:
            raise ValueError(
                f"`y[{level!r}]` should be ({num_samples},) int class ids, one per row of `x`. "
                f"Received shape {np.shape(labels)} and dtype {np.asarray(labels).dtype}"
            )
        _, counts = np.unique(class_ids[class_ids >= 0], return_counts=True)
        if not np.any(counts >= 2):
            raise ValueError(
                f"`y[{level!r}]` should have a class with two rows or more: leave-one-out "
                "retrieval has nothing to find otherwise."
            )
        return class_ids

    def log_keys(self) -> list[str]:
        """The keys this callback writes into `logs` on an evaluated epoch."""
        names = [*(f"recall_at_{k}" for k in self.ks), "map_at_r"]
        return [f"val_{level}_{name}" for level in self.labels for name in names]

    def scores(self) -> dict[str, float]:
        """`{"val_<level>_recall_at_<k>": ..., "val_<level>_map_at_r": ...}` for each level."""
        metrics = retrieval_metrics_per_level(self.embed(self.x), self.labels, ks=self.ks)
        return {
            f"val_{level}_{name.replace('@', '_at_')}": value
            for level, values in metrics.items()
            for name, value in values.items()
        }
