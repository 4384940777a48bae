"""Label checks for `LabeledDataset`, string labels to class ids, and dense class ids.

A level's labels are integer class ids `(N,)` (`-1` = unlabelled) or a multi-hot matrix
`(N, K)` of 0/1 values, stored as `int32`. A level given as strings (class names) is mapped to
class ids once, over all its splits together, by `encode_string_labels`.
"""

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_mlcl.utils.class_names import encode_class_names
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels


def as_label_array(name: str, values: ArrayLike) -> np.ndarray:
    """One level's labels as `int32`, checked to be int ids `(N,)` or multi-hot `(N, K)`.

    Args:
        name: how the error messages call the array, e.g. `"labels['fine']"`.
        values: the labels, any array-like of integers, integral floats or booleans.

    Returns:
        The labels as an `int32` NumPy array.
    """
    array = np.asarray(values)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` should be integer class ids of shape (N,) or a multi-hot matrix of shape "
            f"(N, K). Received: `{name}.shape`={array.shape}"
        )
    if array.dtype == bool:
        array = array.astype("int32")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(
            f"`{name}` should hold integer class ids or 0/1 multi-hot values. "
            f"Received: `{name}.dtype`={array.dtype}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` should hold finite label values. Received NaN or Inf.")
    if np.issubdtype(array.dtype, np.floating) and np.any(array != np.round(array)):
        raise ValueError(
            f"`{name}` should hold integer class ids or 0/1 multi-hot values. "
            f"Received non-integer values, e.g. {array[array != np.round(array)][0]!r}"
        )
    if array.ndim == 2 and array.size and not np.all((array == 0) | (array == 1)):
        raise ValueError(
            f"`{name}` is 2-D, so it should be a multi-hot matrix of 0/1 values. "
            f"Received values {sorted(set(np.unique(array).tolist()) - {0, 1})[:5]}"
        )
    if np.issubdtype(array.dtype, np.integer) and array.size:
        info = np.iinfo(np.int32)
        if array.max() > info.max or array.min() < info.min:
            raise ValueError(f"`{name}` should hold class ids that fit in int32.")
    return array.astype("int32")


def encode_string_labels(
    level: str, splits: Mapping[str, Any], class_names: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Maps one level's string labels, in every split, to `int32` class ids.

    The class ids index `class_names` when given, else the sorted unique names of all splits
    together. Missing values (`None`, NaN, blank strings) become `-1`.

    Args:
        level: the level name, for error messages.
        splits: the level's labels per split, e.g. `{"labels": [...], "test_labels": [...]}`;
            each a 1-D array or list of strings and missing values.
        class_names: optional names that fix the order of the class ids.

    Returns:
        `(ids, names)`: the `int32` class ids per split, and the class names.

    Example:

    >>> ids, names = encode_string_labels("fine", {"train": ["dog", "cat", None], "test": ["cat"]})
    >>> {split: values.tolist() for split, values in ids.items()}, names
    ({'train': [1, 0, -1], 'test': [0]}, ['cat', 'dog'])
    """
    arguments = {split: f"{split}[{level!r}]" for split in splits}
    ids, names = encode_class_names(
        level, {arguments[split]: values for split, values in splits.items()}, class_names
    )
    for argument, split_ids in ids.items():
        if split_ids.ndim != 1:
            raise ValueError(
                f"`{argument}` holds class names, so it should have shape (N,). "
                f"Received: {split_ids.shape}"
            )
    return {split: ids[argument] for split, argument in arguments.items()}, names


def check_labels(name: str, labels: LevelLabels, num_samples: int) -> dict[str, np.ndarray]:
    """Checks a `{level: array}` dict against the number of samples.

    Args:
        name: how the error messages call the dict, e.g. `"test_labels"`.
        labels: dict `{level name: label array}`.
        num_samples: the number of inputs the labels belong to.

    Returns:
        The dict with `str` level names and `int32` arrays.
    """
    if not isinstance(labels, dict) or not labels:
        raise ValueError(
            f"`{name}` should be a non-empty dict {{level name: label array}}. "
            f"Received: `{name}`={type(labels).__name__}"
            + (" (empty)" if isinstance(labels, dict) else "")
        )
    checked = {}
    for level, values in labels.items():
        array = as_label_array(f"{name}[{level!r}]", values)
        if len(array) != num_samples:
            raise ValueError(
                f"`{name}[{level!r}]` should have one row per input ({num_samples}). "
                f"Received: {len(array)} rows"
            )
        checked[str(level)] = array
    return checked


def check_labelled(name: str, labels: Mapping[str, np.ndarray]) -> None:
    """Checks that each class-id level of `labels` labels at least one row.

    Args:
        name: how the error messages call the dict, e.g. `"labels"`.
        labels: dict `{level name: int32 array}`, as `check_labels` returns it.
    """
    for level, values in labels.items():
        if values.ndim == 1 and not np.any(values >= 0):
            raise ValueError(
                f"`{name}[{level!r}]` should label at least one row; every class id is -1 "
                "(unlabelled). Drop the level or label some of its rows."
            )


def check_names_cover_ids(
    class_names: Mapping[str, Sequence[str]], splits: Sequence[Mapping[str, np.ndarray]]
) -> None:
    """Checks that `class_names` names every class id, or every multi-hot column, of its levels.

    Args:
        class_names: dict `{level: names}`.
        splits: the label dicts of every split, each `{level: int32 array}`.
    """
    for level, names in class_names.items():
        arrays = [labels[level] for labels in splits]
        if arrays[0].ndim == 2:
            width = arrays[0].shape[1]
            if len(names) != width:
                raise ValueError(
                    f"`class_names[{level!r}]` should name each of the {width} multi-hot "
                    f"columns of level {level!r}. Received: {len(names)} names"
                )
            continue
        largest = max(int(values.max(initial=-1)) for values in arrays)
        if largest >= len(names):
            raise ValueError(
                f"`class_names[{level!r}]` should name every class id of level {level!r} "
                f"(0 to {largest}). Received: {len(names)} names for largest class id {largest}"
            )


def check_same_levels(
    train_name: str,
    train_labels: Mapping[str, np.ndarray],
    other_name: str,
    other_labels: Mapping[str, np.ndarray],
) -> None:
    """Checks that a held-out split has the training levels, with the same label kind."""
    missing = [level for level in train_labels if level not in other_labels]
    extra = [level for level in other_labels if level not in train_labels]
    if missing or extra:
        raise ValueError(
            f"`{other_name}` should have the same levels as `{train_name}` "
            f"({list(train_labels)}). Missing: {missing}; unexpected: {extra}"
        )
    for level, train in train_labels.items():
        check_same_kind(
            train, other_labels[level], f"{train_name}[{level!r}]", f"{other_name}[{level!r}]"
        )


def check_same_kind(train: np.ndarray, other: np.ndarray, train_name: str, other_name: str) -> None:
    """Checks that two splits of one level hold the same label kind (and multi-hot width)."""
    kinds = {1: "integer class ids (N,)", 2: "multi-hot (N, K)"}
    if train.ndim != other.ndim:
        raise ValueError(
            f"`{train_name}` is {kinds[train.ndim]} but `{other_name}` is "
            f"{kinds[other.ndim]}: both splits should use the same kind."
        )
    if train.ndim == 2 and train.shape[1] != other.shape[1]:
        raise ValueError(
            f"`{train_name}` has {train.shape[1]} multi-hot columns but `{other_name}` has "
            f"{other.shape[1]}: both splits should have the same columns."
        )


def dense_class_ids(dataset: Any) -> tuple[Any, dict[str, list[int]]]:
    """Re-maps each class-id level whose ids are not `0..K-1` to dense ids, in every split.

    A level is re-mapped when it has no `class_names` and its largest id is not one less than
    its number of distinct ids (e.g. ids `{3, 1000000000}`): the ids are replaced by their rank
    among the distinct ids of all splits, so a classifier over the level has `K` outputs, not
    `max id + 1`. Unlabelled entries (negative ids) stay `-1`. Multi-hot levels are untouched.

    Args:
        dataset: a `LabeledDataset`.

    Returns:
        `(dataset, mapping)`: the dataset with dense ids, and `{level: [original id of dense
        id 0, of dense id 1, ...]}` for the levels re-mapped (empty when none was).

    Example:

    >>> from keras_mlcl.data import LabeledDataset
    >>> data = LabeledDataset(x=np.zeros((3, 2)), labels={"label": [7, 10**9, 7]})
    >>> dense, mapping = dense_class_ids(data)
    >>> dense.labels["label"].tolist(), mapping
    ([0, 1, 0], {'label': [7, 1000000000]})
    """
    splits = [
        name
        for name in ("labels", "test_labels", "val_labels")
        if getattr(dataset, name) is not None
    ]
    mapping = {}
    for level in dataset.levels:
        if dataset.is_multi_hot(level) or (dataset.class_names and level in dataset.class_names):
            continue
        ids = np.concatenate([getattr(dataset, name)[level] for name in splits])
        present = np.unique(ids[ids >= 0])
        if present.size == 0 or present[-1] == present.size - 1:
            continue
        mapping[level] = present.tolist()
    if not mapping:
        return dataset, {}
    changed = {}
    for name in splits:
        labels = dict(getattr(dataset, name))
        for level, present in mapping.items():
            values = labels[level]
            dense = np.searchsorted(np.asarray(present), np.maximum(values, 0))
            labels[level] = np.where(values >= 0, dense, -1).astype("int32")
        changed[name] = labels
    return dataclasses.replace(dataset, **changed), mapping
