"""Stratified splits of a `LabeledDataset`: a test split, a validation split, a subsample.

The draws are scikit-learn's (`sklearn.model_selection.train_test_split` with `stratify`):
each class of the finest single-label level keeps its share of the rows, up to rounding (the
rows left over by rounding go to the classes with the largest remainders, ties broken at
random). Negative ids (unlabelled rows) form a class of their own. Classes with a single row,
which scikit-learn cannot split, share one stratum (or join the largest class when there is only
one such row). The draw is uniformly random when every level is multi-hot, or when fewer rows
are drawn (or left) than there are strata. Samples keep their order in both parts.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_mlcl.data.labeled_dataset import LabeledDataset


def _check_fraction(name: str, value: Any, allow_one: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    upper_ok = number is not None and (number <= 1 if allow_one else number < 1)
    if isinstance(value, bool) or number is None or not number > 0 or not upper_ok:
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"`{name}` should be in {interval}. Received: `{name}`={value!r}")
    return number


def _strata(dataset: LabeledDataset) -> np.ndarray | None:
    """Per-sample stratum ids of the finest single-label level; `None` when all are multi-hot."""
    for level in reversed(dataset.levels):
        if not dataset.is_multi_hot(level):
            strata = np.unique(dataset.labels[level], return_inverse=True)[1].reshape(-1)
            counts = np.bincount(strata)
            single = counts[strata] == 1
            if single.sum() == 1:
                strata[single] = np.argmax(counts)
            elif single.any():
                strata[single] = len(counts)
            return strata
    return None


def _draw(dataset: LabeledDataset, size: int, seed: int) -> np.ndarray:
    """Boolean mask of `size` training rows drawn stratified (see the module docstring)."""
    from sklearn.model_selection import train_test_split as sklearn_split

    num_samples = len(dataset.x)
    strata = _strata(dataset)
    if strata is not None and min(size, num_samples - size) < len(np.unique(strata)):
        strata = None
    _, drawn = sklearn_split(
        np.arange(num_samples), test_size=size, stratify=strata, random_state=seed
    )
    mask = np.zeros(num_samples, dtype=bool)
    mask[drawn] = True
    return mask


def _held_out_size(dataset: LabeledDataset, fraction: float) -> int:
    num_samples = len(dataset.x)
    if num_samples < 2:
        raise ValueError(f"`dataset` should have at least 2 samples. Received: {num_samples}")
    return min(max(int(round(num_samples * fraction)), 1), num_samples - 1)


def _take(labels: Mapping[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {level: values[index] for level, values in labels.items()}


def _take_ids(ids: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if ids is None else ids[index]


def train_test_split(
    dataset: LabeledDataset, test_fraction: float = 0.2, seed: int = 0
) -> LabeledDataset:
    """Holds out a stratified test split from a dataset that has none.

    Stratifies on the finest single-label level (each class keeps its share, up to rounding);
    when every level is multi-hot the split is uniformly random. Samples keep their order, and
    row `ids` (when any) go with their rows into `ids` / `test_ids`.

    Args:
        dataset: a `LabeledDataset` without a test split.
        test_fraction: share of the samples that go to the test split, in (0, 1). Defaults to
            0.2.
        seed: seed of the random choice. Defaults to 0.

    Returns:
        A new `LabeledDataset` whose `x_test` / `test_labels` are the held-out samples.

    Example:

    >>> data = LabeledDataset(x=np.arange(10)[:, None], labels={"label": [0, 1] * 5})
    >>> train_test_split(data, test_fraction=0.2).x_test.shape
    (2, 1)
    """
    test_fraction = _check_fraction("test_fraction", test_fraction, allow_one=False)
    if dataset.has_test:
        raise ValueError(
            "`dataset` already has a test split; `train_test_split` only holds one out for "
            f"datasets without one. Received: dataset {dataset.name!r} with "
            f"{len(dataset.x_test)} test samples"
        )
    test = _draw(dataset, _held_out_size(dataset, test_fraction), seed)
    return dataclasses.replace(
        dataset,
        x=dataset.x[~test],
        labels=_take(dataset.labels, ~test),
        x_test=dataset.x[test],
        test_labels=_take(dataset.labels, test),
        ids=_take_ids(dataset.ids, ~test),
        test_ids=_take_ids(dataset.ids, test),
    )


def subsample(dataset: LabeledDataset, fraction: float, seed: int = 0) -> LabeledDataset:
    """Keeps a stratified share of the training samples (the held-out splits are untouched).

    Stratifies on the finest single-label level (uniformly random when every level is
    multi-hot); when `round(fraction * N)` is `N` the dataset is returned unchanged. Samples
    keep their order, and row `ids` (when any) are kept with their rows.

    Args:
        dataset: a `LabeledDataset`.
        fraction: share of the training samples to keep, in (0, 1].
        seed: seed of the random choice. Defaults to 0.

    Returns:
        A new `LabeledDataset` with `round(fraction * N)` training samples (at least 1).

    Example:

    >>> from keras_mlcl.data import load_dataset
    >>> small = subsample(load_dataset("fashion_mnist"), fraction=0.1, seed=1)
    >>> small.x.shape
    (600, 28, 28)
    """
    fraction = _check_fraction("fraction", fraction, allow_one=True)
    size = max(int(round(len(dataset.x) * fraction)), 1)
    if size >= len(dataset.x):
        return dataset
    keep = _draw(dataset, size, seed)
    return dataclasses.replace(
        dataset,
        x=dataset.x[keep],
        labels=_take(dataset.labels, keep),
        ids=_take_ids(dataset.ids, keep),
    )


def validation_split(
    dataset: LabeledDataset, fraction: float = 0.1, seed: int = 0
) -> tuple[LabeledDataset, LabeledDataset]:
    """Carves a stratified validation set out of the training samples.

    Stratifies like `train_test_split`. The returned training dataset keeps the test split;
    the validation dataset has none. Row `ids` (when any) go with their rows.

    Args:
        dataset: a `LabeledDataset`.
        fraction: share of the training samples that go to validation, in (0, 1). Defaults
            to 0.1.
        seed: seed of the random choice. Defaults to 0.

    Returns:
        A tuple `(train, val)` of `LabeledDataset`s.

    Example:

    >>> from keras_mlcl.data import load_dataset
    >>> train, val = validation_split(load_dataset("fashion_mnist"), fraction=0.1)
    >>> len(train.x), len(val.x)
    (5400, 600)
    """
    fraction = _check_fraction("fraction", fraction, allow_one=False)
    val = _draw(dataset, _held_out_size(dataset, fraction), seed)
    train = dataclasses.replace(
        dataset,
        x=dataset.x[~val],
        labels=_take(dataset.labels, ~val),
        x_val=None,
        val_labels=None,
        ids=_take_ids(dataset.ids, ~val),
        val_ids=None,
    )
    validation = LabeledDataset(
        x=dataset.x[val],
        labels=_take(dataset.labels, val),
        name=f"{dataset.name}_val",
        class_names=dataset.class_names,
        ids=_take_ids(dataset.ids, val),
        columns=dataset.columns,
    )
    return train, validation
