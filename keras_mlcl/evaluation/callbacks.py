"""A callback that logs the kNN accuracy of each label level every few epochs."""

import inspect
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl.evaluation.knn import KNN_METRICS
from keras_mlcl.evaluation.knn import knn_accuracy
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int


def _check_data(name: str, data: Any, levels: Sequence[str]) -> tuple[Any, dict[str, np.ndarray]]:
    """Returns `(x, {level: labels})` from a `(x, labels)` tuple, or raises."""
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not isinstance(data[1], dict):
        raise ValueError(
            f"`{name}` should be a tuple (x, {{level: labels}}). "
            f"Received: `{name}`={type(data).__name__}"
        )
    x, labels = data
    leaves = keras.tree.flatten(x)
    if not leaves or np.ndim(leaves[0]) == 0:
        raise ValueError(f"`{name}[0]` should be an input array (N, ...).")
    num_samples = len(leaves[0])
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


class KNNCallback(keras.callbacks.Callback):
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
    (as `ContrastiveModel` does; `batch_size` is passed on when `embed`
    takes it), else `model.predict(x)`, taking its
    `"embedding"` entry when it returns a dict. Outputs with more than two
    axes are flattened to `(N, -1)`.

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
        super().__init__()
        if isinstance(levels, str):
            levels = [levels]
        if not isinstance(levels, (list, tuple)) or not levels:
            raise ValueError(
                "`levels` should be a level name or a non-empty list of names. "
                f"Received: `levels`={levels!r}"
            )
        self.levels = list(levels)
        self.k = check_positive_int("k", k)
        self.every = check_positive_int("every", every)
        self.metric = check_choice("metric", metric, KNN_METRICS)
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)
        self.batch_size = batch_size
        self.train_x, self.train_labels = _check_data("train_data", train_data, self.levels)
        self.val_x, self.val_labels = _check_data("val_data", val_data, self.levels)

    def log_keys(self) -> list[str]:
        """The keys this callback writes into `logs`, in level order."""
        return [f"val_knn_{level}_acc" for level in self.levels]

    def embed(self, x: Any) -> np.ndarray:
        """Embeddings of `x` by the model, as a NumPy array `(N, D)`."""
        model = self.model
        embed = getattr(model, "embed", None)
        if callable(embed):
            if "batch_size" in inspect.signature(embed).parameters:
                outputs = embed(x, batch_size=self.batch_size)
            else:
                outputs = embed(x)
        else:
            outputs = model.predict(x, batch_size=self.batch_size, verbose=0)
        if isinstance(outputs, dict):
            if "embedding" not in outputs:
                raise ValueError(
                    "`KNNCallback` needs the model's embeddings: the model returned a dict "
                    f"without an 'embedding' entry. Received keys: {sorted(outputs)}"
                )
            outputs = outputs["embedding"]
        outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
        return outputs.reshape(outputs.shape[0], -1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        if (epoch + 1) % self.every != 0:
            for key in self.log_keys():
                logs[key] = math.nan
            return
        train_embeddings = self.embed(self.train_x)
        val_embeddings = self.embed(self.val_x)
        for level, key in zip(self.levels, self.log_keys(), strict=True):
            logs[key] = knn_accuracy(
                train_embeddings,
                self.train_labels[level],
                val_embeddings,
                self.val_labels[level],
                k=self.k,
                metric=self.metric,
            )
