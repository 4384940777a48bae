"""Class-balanced batches: P classes with K samples each, as a `keras.utils.PyDataset`."""

from typing import Any

import keras
import numpy as np

from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_positive_int


class BalancedBatches(keras.utils.PyDataset):
    """Batches of `classes_per_batch` classes with `samples_per_class` samples each.

    Supervised contrastive losses need positives in the batch: with many
    classes and random batches, most anchors have none. Each batch here holds
    P distinct classes of one label level (the finest, by default) with K
    samples each, so every anchor has K - 1 positives (times the views).

    An epoch covers every labelled sample at least once. Each class's
    samples are shuffled and cut into chunks of K; a class's last, short
    chunk is topped up with other samples of that class (drawn with
    replacement when the class has fewer than K samples). Batches take one
    chunk from each of the P classes with the most chunks left; when fewer
    than P classes have chunks left, the batch is completed with fresh
    chunks of other classes. The number of batches depends only on the
    class sizes, so `len()` is the same every epoch; `on_epoch_end`
    reshuffles. Unlabelled samples (class id < 0) are never drawn.

    Args:
        x: inputs, an array or a structure (dict, list) of arrays with the
            same number of rows.
        y: labels, an `(N,)` int array or a dict `{level: labels}` (any
            level's labels may be multi-hot; the sampled level must be int).
        classes_per_batch: positive int P, at most the number of classes.
        samples_per_class: positive int K.
        level: the dict key of `y` to sample on. Defaults to None: the last
            key (the finest level, as the heads are ordered coarse to fine).
        sample_weight: optional `(N,)` weights; batches are then
            `(x, y, sample_weight)`. Defaults to None.
        seed: int or None, the seed of the shuffles. Defaults to None.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, ...).

    Returns (each item):
        `(x_batch, y_batch)` (or with `sample_weight_batch`), of `P * K`
        rows, with `y_batch` in the structure of `y`.

    Example:

    >>> x = np.arange(12, dtype="float32")[:, None]
    >>> y = {"coarse": np.repeat([0, 1], 6), "fine": np.repeat([0, 1, 2, 3], 3)}
    >>> batches = BalancedBatches(x, y, classes_per_batch=2, samples_per_class=3, seed=0)
    >>> len(batches)
    2
    >>> sorted(np.bincount(batches[0][1]["fine"], minlength=4).tolist())
    [0, 0, 3, 3]
    """

    def __init__(
        self,
        x: Any,
        y: ArrayLike | LevelLabels,
        classes_per_batch: int,
        samples_per_class: int,
        level: str | None = None,
        sample_weight: ArrayLike | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.classes_per_batch = check_positive_int("classes_per_batch", classes_per_batch)
        self.samples_per_class = check_positive_int("samples_per_class", samples_per_class)
        self.x = keras.tree.map_structure(np.asarray, x)
        self.y: dict[str, np.ndarray] | np.ndarray
        n = int(np.shape(keras.tree.flatten(self.x)[0])[0])
        if isinstance(y, dict):
            if not y:
                raise ValueError("`y` should be an (N,) array or a non-empty dict of levels.")
            level = list(y)[-1] if level is None else level
            if level not in y:
                raise ValueError(
                    f"`level` should be a key of `y` {list(y)}. Received: `level`={level!r}"
                )
            self.y = {key: np.asarray(value) for key, value in y.items()}
            labels = self.y[level]
        else:
            if level is not None:
                raise ValueError(
                    f"`level` needs `y` as a dict of levels. Received: `level`={level!r}"
                )
            self.y = np.asarray(y)
            labels = self.y
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                "The sampled labels should be `(N,)` int class ids. Received shape "
                f"{labels.shape} and dtype {labels.dtype}"
                + (f" for `level`={level!r}." if isinstance(y, dict) else ".")
            )
        arrays = keras.tree.flatten(self.y) + keras.tree.flatten(self.x)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            arrays.append(sample_weight)
        sizes = sorted({int(np.shape(a)[0]) for a in arrays})
        if sizes != [n]:
            raise ValueError(
                f"`x`, `y` and `sample_weight` should have the same number of rows. "
                f"Received row counts {sizes}."
            )
        self.sample_weight = sample_weight
        classes, inverse = np.unique(labels[labels >= 0], return_inverse=True)
        labelled = np.flatnonzero(labels >= 0)
        self.class_members = [labelled[inverse == c] for c in range(len(classes))]
        if self.classes_per_batch > len(classes):
            raise ValueError(
                f"`classes_per_batch` should be at most the number of labelled classes "
                f"({len(classes)}). Received: `classes_per_batch`={classes_per_batch}"
            )
        self.rng = np.random.default_rng(seed)
        self.batches = self._plan_epoch()

    def _chunk(self, members: np.ndarray, size: int) -> np.ndarray:
        """`size` random samples of one class, without replacement when it has enough."""
        return self.rng.choice(members, size, replace=len(members) < size)

    def _plan_epoch(self) -> np.ndarray:
        """The sample indices of every batch of one epoch, `(batches, P * K)`."""
        k, p = self.samples_per_class, self.classes_per_batch
        chunks = []
        for members in self.class_members:
            order = self.rng.permutation(members)
            short = -len(order) % k
            if short:
                others = np.setdiff1d(members, order[-(len(order) % k) :])
                top_up = self._chunk(others if len(others) else members, short)
                order = np.concatenate([order, top_up])
            chunks.append(list(order.reshape(-1, k)))
        left = np.array([len(c) for c in chunks])
        batches = []
        while left.sum() > 0:
            # The P classes with most chunks left; random among equal counts.
            ranked = np.argsort(-(left + 0.5 * self.rng.random(len(left))))
            chosen = [c for c in ranked[:p] if left[c] > 0]
            rest = [c for c in range(len(left)) if c not in chosen]
            fill = self.rng.choice(rest, p - len(chosen), replace=False) if rest else ()
            batch = [chunks[c][len(chunks[c]) - left[c]] for c in chosen]
            batch += [self._chunk(self.class_members[c], k) for c in fill]
            left[chosen] -= 1
            batches.append(np.concatenate(batch))
        order = self.rng.permutation(len(batches))
        return np.stack(batches)[order]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        rows = self.batches[index]

        def take(array: np.ndarray) -> np.ndarray:
            return array[rows]

        batch = (keras.tree.map_structure(take, self.x), keras.tree.map_structure(take, self.y))
        if self.sample_weight is not None:
            batch += (self.sample_weight[rows],)
        return batch

    def on_epoch_end(self) -> None:
        self.batches = self._plan_epoch()
