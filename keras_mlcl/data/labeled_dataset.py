"""`LabeledDataset`: inputs with labels at one or more levels, and optional held-out splits.

Everything in `keras_mlcl.data` runs on the host with NumPy: datasets are loaded and split before
any backend tensor exists.
"""

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from keras_mlcl.data.labels import check_labelled
from keras_mlcl.data.labels import check_labels
from keras_mlcl.data.labels import check_names_cover_ids
from keras_mlcl.data.labels import check_same_levels
from keras_mlcl.data.labels import encode_string_labels
from keras_mlcl.utils.class_names import string_labels

if TYPE_CHECKING:
    from keras_mlcl.data.tables import TableColumns

_SPLITS = (("", "x", "labels"), ("test", "x_test", "test_labels"), ("val", "x_val", "val_labels"))
# The largest magnitude the model's float32 inputs can hold; larger float64 values become Inf.
_FLOAT32_MAX = np.finfo("float32").max


@dataclasses.dataclass
class LabeledDataset:
    """Inputs with labels at one or more levels, and optional validation and test splits.

    Labels are a dict `{level name: array}`, ordered coarse -> fine. Each level holds either
    integer class ids of shape `(N,)`, where a negative id (`-1`) means "unlabelled at this
    level", or a multi-hot matrix of shape `(N, K)` with 0/1 entries. Label arrays are stored as
    `int32`. A level may also be given as strings (class names): they are mapped to class ids
    once, over every split together, in the order of `class_names[level]` when given, else of
    the sorted unique names, which then fill `class_names[level]`. Missing names (`None`, NaN,
    `""`) become `-1`.

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
        ids: optional row ids of the training split, an array `(N,)` of distinct integers or
            strings; carried along with their rows by the splits.
        test_ids: optional row ids of the test split, like `ids`.
        val_ids: optional row ids of the validation split, like `ids`.
        columns: the `TableColumns` a dataset read by `load_table` came from, else `None`.

    Example:

    >>> data = LabeledDataset(
    ...     x=np.zeros((4, 2)), labels={"coarse": [0, 0, 1, 1], "fine": [0, 1, 2, 3]}
    ... )
    >>> data.levels
    ['coarse', 'fine']
    >>> named = LabeledDataset(x=np.zeros((3, 2)), labels={"animal": ["dog", "cat", None]})
    >>> named.labels["animal"].tolist(), named.class_names
    ([1, 0, -1], {'animal': ['cat', 'dog']})
    """

    x: np.ndarray
    labels: dict
    x_test: Any = None
    test_labels: dict | None = None
    name: str = "dataset"
    class_names: dict | None = None
    x_val: Any = None
    val_labels: dict | None = None
    ids: Any = None
    test_ids: Any = None
    val_ids: Any = None
    columns: "TableColumns | None" = None

    def __post_init__(self) -> None:
        self._encode_string_labels()
        self.x = _check_inputs("x", self.x)
        self.labels = check_labels("labels", self.labels, len(self.x))
        check_labelled("labels", self.labels)
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
            splits = [self.labels, self.test_labels, self.val_labels]
            check_names_cover_ids(self.class_names, [labels for labels in splits if labels])
        for split, x_name, _ in _SPLITS:
            ids_name = f"{split}_ids" if split else "ids"
            setattr(self, ids_name, _check_ids(ids_name, getattr(self, ids_name), x_name, self))

    def _encode_string_labels(self) -> None:
        """Replaces each level given as strings by class ids, in every split, and names them."""
        if not isinstance(self.labels, dict):
            return
        splits = [name for _, _, name in _SPLITS if isinstance(getattr(self, name), dict)]
        encoded = {name: dict(getattr(self, name)) for name in splits}
        class_names = dict(self.class_names or {})
        for level, values in self.labels.items():
            if string_labels(values) is None:
                continue
            ids, names = encode_string_labels(
                str(level),
                {name: encoded[name][level] for name in splits if level in encoded[name]},
                class_names.get(level),
            )
            for name, split_ids in ids.items():
                encoded[name][level] = split_ids
            class_names[level] = names
        for name in splits:
            setattr(self, name, encoded[name])
        if class_names:
            ordered = {level: class_names[level] for level in self.labels if level in class_names}
            self.class_names = {**ordered, **class_names}

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


def first_repeat(values: np.ndarray) -> tuple[Any, int, int] | None:
    """`(value, row, later row)` of the first value of a 1-D array that appears twice (by its
    first row), or None when every value is distinct.

    Example:

    >>> first_repeat(np.array(["a", "b", "c", "b", "a"]))
    ('a', 0, 4)
    """
    unique, first, counts = np.unique(values, return_index=True, return_counts=True)
    if not (counts > 1).any():
        return None
    repeated = np.flatnonzero(counts > 1)
    value = unique[repeated[np.argmin(first[repeated])]]
    rows = np.flatnonzero(values == value)[:2].tolist()
    return value.item(), rows[0], rows[1]


def _check_inputs(name: str, x: Any, like: np.ndarray | None = None) -> np.ndarray:
    """`x` as an array, checked: finite numbers (or strings), and the sample shape of `like`."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"`{name}` should be an array with one row per sample. Received a scalar.")
    if x.dtype.kind not in "USO" and not (x.dtype.kind in "biuf" or x.dtype == bool):
        raise ValueError(
            f"`{name}` should hold numbers or strings. Received: `{name}.dtype`={x.dtype}"
        )
    if len(x) == 0:
        raise ValueError(
            f"`{name}` should hold at least one row (sample). Received: `{name}.shape`={x.shape}"
        )
    if x.size == 0:
        raise ValueError(
            f"`{name}` should have at least one feature per sample. "
            f"Received: `{name}.shape`={x.shape}"
        )
    if x.dtype.kind == "f":
        finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise ValueError(
                f"`{name}` should hold finite values only. Row {rows[0]}{_more(rows)} has NaN "
                "or Inf."
            )
        if x.dtype.itemsize > _FLOAT32_MAX.dtype.itemsize:
            within = (np.abs(x) <= _FLOAT32_MAX).reshape(len(x), -1).all(axis=1)
            if not within.all():
                rows = np.flatnonzero(~within)
                raise ValueError(
                    f"`{name}` should hold values within float32's range (|value| <= "
                    f"{_FLOAT32_MAX:.4g}), the precision the model computes in. Row "
                    f"{rows[0]}{_more(rows)} has {np.abs(x[rows[0]]).max():.4g}."
                )
    if like is not None:
        kind, like_kind = (("strings" if a.dtype.kind in "USO" else "numbers") for a in (x, like))
        if kind != like_kind or x.shape[1:] != like.shape[1:]:
            raise ValueError(
                f"`{name}` should have the sample shape of `x`, {like.shape[1:]} ({like_kind}). "
                f"Received: `{name}.shape`={x.shape} ({kind})"
            )
    return x


def _check_ids(name: str, ids: Any, x_name: str, dataset: LabeledDataset) -> np.ndarray | None:
    """`ids` as an `int64` or `str` array with one distinct id per row of `x_name`."""
    if ids is None:
        return None
    x = getattr(dataset, x_name)
    if x is None:
        raise ValueError(
            f"`{name}` should be None when `{x_name}` is None. Received: {np.shape(ids)} ids"
        )
    array = np.asarray(ids)
    if array.dtype.kind == "O" and all(isinstance(value, str) for value in array.ravel()):
        array = array.astype(str)
    elif array.dtype.kind == "S":
        array = array.astype(str)
    if array.ndim != 1 or len(array) != len(x) or array.dtype.kind not in "iuU":
        raise ValueError(
            f"`{name}` should be integers or strings of shape ({len(x)},), one per row of "
            f"`{x_name}`. Received: shape {array.shape}, dtype {array.dtype}"
        )
    repeat = first_repeat(array)
    if repeat is not None:
        value, row, later = repeat
        raise ValueError(
            f"`{name}` should not repeat an id within a split. Received: id {value!r} "
            f"on rows {row} and {later} (0-based)"
        )
    return array.astype("int64") if array.dtype.kind in "iu" else array


def _more(rows: np.ndarray) -> str:
    return f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""


def _none_or_shape(array: Any) -> str:
    return "None" if array is None else f"an array of shape {np.shape(array)}"


def _none_or_keys(labels: Mapping[str, Any] | None) -> str:
    return "None" if labels is None else f"a dict with keys {list(labels)}"
