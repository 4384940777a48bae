"""`LabeledDataset`: inputs with labels at one or more levels, and optional held-out splits.

Everything in `keras_mlcl.data` runs on the host with NumPy: datasets are loaded and split before
any backend tensor exists.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_mlcl.data.labels import check_labels
from keras_mlcl.data.labels import check_same_levels


@dataclasses.dataclass
class LabeledDataset:
    """Inputs with labels at one or more levels, and optional validation and test splits.

    Labels are a dict `{level name: array}`, ordered coarse -> fine. Each level holds either
    integer class ids of shape `(N,)`, where a negative id (`-1`) means "unlabelled at this
    level", or a multi-hot matrix of shape `(N, K)` with 0/1 entries. Label arrays are stored as
    `int32`.

    Args:
        x: the training inputs, an array `(N, ...)` (images, features, or strings).
        labels: dict `{level: array}` of training labels, coarse -> fine.
        x_test: the test inputs, or `None` when the source has no test split.
        test_labels: dict with the same keys as `labels`, or `None`.
        name: a short name for the dataset (used in logs and results).
        class_names: optional dict `{level: [name of class 0, name of class 1, ...]}`; for a
            multi-hot level, the names of its `K` columns.
        x_val: an official validation split's inputs when the source has one (e.g. CLINC150),
            else `None`. `validation_split` carves one out of the training data instead.
        val_labels: dict with the same keys as `labels`, or `None`.

    Example:

    >>> data = LabeledDataset(
    ...     x=np.zeros((4, 2)), labels={"coarse": [0, 0, 1, 1], "fine": [0, 1, 2, 3]}
    ... )
    >>> data.levels
    ['coarse', 'fine']
    """

    x: np.ndarray
    labels: dict
    x_test: Any = None
    test_labels: dict | None = None
    name: str = "dataset"
    class_names: dict | None = None
    x_val: Any = None
    val_labels: dict | None = None

    def __post_init__(self) -> None:
        self.x = _check_inputs("x", self.x)
        self.labels = check_labels("labels", self.labels, len(self.x))
        for split in ("test", "val"):
            x_name = f"x_{split}"
            labels_name = f"{split}_labels"
            x_split = getattr(self, x_name)
            split_labels = getattr(self, labels_name)
            if x_split is None and split_labels is None:
                continue
            if x_split is None or split_labels is None:
                raise ValueError(
                    f"`{x_name}` and `{labels_name}` should both be given or both be None. "
                    f"Received: `{x_name}` is {_none_or_shape(x_split)} and `{labels_name}` "
                    f"is {_none_or_keys(split_labels)}"
                )
            x_split = _check_inputs(x_name, x_split, like=self.x)
            split_labels = check_labels(labels_name, split_labels, len(x_split))
            check_same_levels("labels", self.labels, labels_name, split_labels)
            setattr(self, x_name, x_split)
            setattr(self, labels_name, split_labels)
        if self.class_names is not None:
            self.class_names = {
                level: [str(name) for name in names] for level, names in self.class_names.items()
            }
            unknown = sorted(set(self.class_names) - set(self.labels))
            if unknown:
                raise ValueError(
                    f"`class_names` should only name levels of `labels` ({self.levels}). "
                    f"Received: `class_names` for {unknown}"
                )

    @property
    def levels(self) -> list[str]:
        """The label level names, coarse -> fine."""
        return list(self.labels)

    @property
    def has_test(self) -> bool:
        """Whether the dataset carries a test split."""
        return self.x_test is not None

    def is_multi_hot(self, level: str) -> bool:
        """Whether `level` holds multi-hot `(N, K)` labels (else integer class ids `(N,)`)."""
        return self.labels[level].ndim == 2

    def num_classes(self, level: str) -> int:
        """The number of classes at `level`.

        For a multi-hot level, its number of columns `K`; else the number of class names when
        known, or one more than the largest class id seen in any split.
        """
        if self.is_multi_hot(level):
            return int(self.labels[level].shape[1])
        if self.class_names and level in self.class_names:
            return len(self.class_names[level])
        largest = -1
        for split_labels in (self.labels, self.test_labels, self.val_labels):
            if split_labels is not None and len(split_labels[level]):
                largest = max(largest, int(split_labels[level].max()))
        return largest + 1


def _check_inputs(name: str, x: Any, like: np.ndarray | None = None) -> np.ndarray:
    """`x` as an array, checked: finite numbers (or strings), and the sample shape of `like`."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"`{name}` should be an array with one row per sample. Received a scalar.")
    if x.dtype.kind not in "USO" and not (x.dtype.kind in "biuf" or x.dtype == bool):
        raise ValueError(
            f"`{name}` should hold numbers or strings. Received: `{name}.dtype`={x.dtype}"
        )
    if x.dtype.kind == "f":
        finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
            raise ValueError(
                f"`{name}` should hold finite values only. Row {rows[0]}{more} has NaN or Inf."
            )
    if like is not None:
        kind, like_kind = (("strings" if a.dtype.kind in "USO" else "numbers") for a in (x, like))
        if kind != like_kind or x.shape[1:] != like.shape[1:]:
            raise ValueError(
                f"`{name}` should have the sample shape of `x`, {like.shape[1:]} ({like_kind}). "
                f"Received: `{name}.shape`={x.shape} ({kind})"
            )
    return x


def _none_or_shape(array: Any) -> str:
    return "None" if array is None else f"an array of shape {np.shape(array)}"


def _none_or_keys(labels: Mapping[str, Any] | None) -> str:
    return "None" if labels is None else f"a dict with keys {list(labels)}"
