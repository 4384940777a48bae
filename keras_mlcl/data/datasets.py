"""The labelled-dataset container, the `.npz` format, splits and the dataset registry.

Everything here runs on the host with NumPy: datasets are loaded and split before any
backend tensor exists.
"""

import dataclasses
import os
import zipfile
import zlib

import numpy as np

# Prefixes of the optional held-out splits in an `.npz` file (`x_test` + `y_test_<level>`).
_SPLIT_KEYS = {"test": ("x_test", "y_test"), "val": ("x_val", "y_val")}
_CLASS_NAMES_PREFIX = "class_names_"
_SINGLE_LEVEL_NAME = "label"


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
    x_test: np.ndarray = None
    test_labels: dict = None
    name: str = "dataset"
    class_names: dict = None
    x_val: np.ndarray = None
    val_labels: dict = None

    def __post_init__(self):
        self.x = _check_inputs("x", self.x)
        self.labels = _check_labels("labels", self.labels, len(self.x))
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
            split_labels = _check_labels(labels_name, split_labels, len(x_split))
            _check_same_levels("labels", self.labels, labels_name, split_labels)
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
    def levels(self):
        """The label level names, coarse -> fine."""
        return list(self.labels)

    @property
    def has_test(self):
        """Whether the dataset carries a test split."""
        return self.x_test is not None

    def is_multi_hot(self, level):
        """Whether `level` holds multi-hot `(N, K)` labels (else integer class ids `(N,)`)."""
        return self.labels[level].ndim == 2

    def num_classes(self, level):
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


def _check_inputs(name, x, like=None):
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


def _none_or_shape(array):
    return "None" if array is None else f"an array of shape {np.shape(array)}"


def _none_or_keys(labels):
    return "None" if labels is None else f"a dict with keys {list(labels)}"


def _as_label_array(name, values):
    """One level's labels as `int32`, checked to be int ids `(N,)` or multi-hot `(N, K)`."""
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


def _check_labels(name, labels, num_samples):
    """Checks a `{level: array}` dict against the number of samples; returns it as int32."""
    if not isinstance(labels, dict) or not labels:
        raise ValueError(
            f"`{name}` should be a non-empty dict {{level name: label array}}. "
            f"Received: `{name}`={type(labels).__name__}"
            + (" (empty)" if isinstance(labels, dict) else "")
        )
    checked = {}
    for level, values in labels.items():
        array = _as_label_array(f"{name}[{level!r}]", values)
        if len(array) != num_samples:
            raise ValueError(
                f"`{name}[{level!r}]` should have one row per input ({num_samples}). "
                f"Received: {len(array)} rows"
            )
        checked[str(level)] = array
    return checked


def _check_same_levels(train_name, train_labels, other_name, other_labels):
    """Checks that a held-out split has the training levels, with the same label kind."""
    missing = [level for level in train_labels if level not in other_labels]
    extra = [level for level in other_labels if level not in train_labels]
    if missing or extra:
        raise ValueError(
            f"`{other_name}` should have the same levels as `{train_name}` "
            f"({list(train_labels)}). Missing: {missing}; unexpected: {extra}"
        )
    for level, train in train_labels.items():
        other = other_labels[level]
        if train.ndim != other.ndim:
            kinds = {1: "integer class ids", 2: "multi-hot"}
            raise ValueError(
                f"Level {level!r} is {kinds[train.ndim]} in `{train_name}` but "
                f"{kinds[other.ndim]} in `{other_name}`: both splits should use the same kind."
            )
        if train.ndim == 2 and train.shape[1] != other.shape[1]:
            raise ValueError(
                f"Level {level!r} should have the same number of multi-hot columns in "
                f"`{train_name}` ({train.shape[1]}) and `{other_name}` ({other.shape[1]})."
            )


def load_npz(path):
    """Loads a dataset from an `.npz` file in the keras-mlcl format.

    The file holds `x` `(N, ...)` and one label array per level, `y_<level>`: integer class
    ids `(N,)` (`-1` = missing) or multi-hot `(N, K)`. Levels are ordered coarse -> fine in the
    order the arrays were written. A single-level file may name its labels `y` (the level is then
    called `"label"`). An optional test split is `x_test` with one `y_test_<level>` (or `y_test`)
    per training level; likewise an optional validation split `x_val` / `y_val_<level>`.
    Optional `class_names_<level>` string arrays name the classes. Other keys are ignored.

    Args:
        path: path to the `.npz` file.

    Returns:
        A `LabeledDataset` named after the file.

    Example:

    >>> np.savez("toy.npz", x=np.zeros((4, 2)), y_coarse=[0, 0, 1, 1], y_fine=[0, 1, 2, 3])
    >>> load_npz("toy.npz").levels
    ['coarse', 'fine']
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No `.npz` dataset file at {path!r}.")
    arrays = _read_npz(path)
    if "x" not in arrays:
        raise ValueError(
            f"The `.npz` file {path!r} should hold the inputs as `x`. Received keys: {list(arrays)}"
        )
    held_out_keys = tuple(y_key for _, y_key in _SPLIT_KEYS.values())
    held_out_prefixes = tuple(f"{y_key}_" for y_key in held_out_keys)
    train_keys = [
        key
        for key in arrays
        if (key == "y" or key.startswith("y_"))
        and key not in held_out_keys
        and not key.startswith(held_out_prefixes)
    ]
    if not train_keys:
        raise ValueError(
            f"The `.npz` file {path!r} should hold at least one label array, `y` or "
            f"`y_<level>`. Received keys: {list(arrays)}"
        )
    if "y" in train_keys and len(train_keys) > 1:
        raise ValueError(
            f"The `.npz` file {path!r} should name its labels either `y` (one level) or "
            f"`y_<level>` (any number of levels), not both. Received keys: {list(arrays)}"
        )
    train_labels = {
        (_SINGLE_LEVEL_NAME if key == "y" else key[2:]): arrays[key] for key in train_keys
    }
    single = "y" in arrays
    train_labels = _check_npz_labels(path, "y", train_labels, len(arrays["x"]), single)
    splits = {}
    for split, (x_key, y_key) in _SPLIT_KEYS.items():
        split_labels = {
            key[len(y_key) + 1 :] if key != y_key else _SINGLE_LEVEL_NAME: value
            for key, value in arrays.items()
            if key == y_key or key.startswith(f"{y_key}_")
        }
        if x_key not in arrays:
            if split_labels:
                raise ValueError(
                    f"The `.npz` file {path!r} has `{y_key}_*` labels but no `{x_key}` inputs."
                )
            splits[split] = (None, None)
            continue
        missing = [level for level in train_labels if level not in split_labels]
        if missing:
            keys = [f"{y_key}" if single else f"{y_key}_{level}" for level in missing]
            raise ValueError(
                f"The `.npz` file {path!r} has `{x_key}` but no labels for level(s) {missing}: "
                f"expected key(s) {keys}. Received keys: {list(arrays)}"
            )
        extra = [level for level in split_labels if level not in train_labels]
        if extra:
            raise ValueError(
                f"The `.npz` file {path!r} has {split} labels for level(s) {extra} that the "
                f"training labels do not have (training levels: {list(train_labels)})."
            )
        split_labels = {level: split_labels[level] for level in train_labels}
        split_labels = _check_npz_labels(path, y_key, split_labels, len(arrays[x_key]), single)
        _check_npz_kinds(path, train_labels, split_labels, y_key, single)
        splits[split] = (arrays[x_key], split_labels)
    class_names = {}
    for key, value in arrays.items():
        if key.startswith(_CLASS_NAMES_PREFIX):
            level = key[len(_CLASS_NAMES_PREFIX) :]
            if level in train_labels:
                class_names[level] = [str(name) for name in value.tolist()]
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        return LabeledDataset(
            x=arrays["x"],
            labels=train_labels,
            x_test=splits["test"][0],
            test_labels=splits["test"][1],
            name=name,
            class_names=class_names or None,
            x_val=splits["val"][0],
            val_labels=splits["val"][1],
        )
    except ValueError as error:
        raise ValueError(f"In the `.npz` file {path!r}: {error}") from None


def _read_npz(path):
    """The arrays of an `.npz` archive, or a one-line `ValueError` naming `path`."""
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        what = (
            "an empty file" if size == 0 else f"a file of {size} bytes that is not a complete zip"
        )
        raise ValueError(f"{path!r} is not an .npz archive (numpy.savez output): it is {what}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(
                f"The .npz archive {path!r} holds object (pickled) arrays, which are never "
                "loaded; store strings as a fixed-width str array."
            ) from None
        raise ValueError(f"Cannot read the .npz archive {path!r}: {error}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"Cannot read the .npz archive {path!r} (corrupt?): {reason}") from None


def _npz_key(prefix, level, single):
    return prefix if single else f"{prefix}_{level}"


def _check_npz_labels(path, prefix, labels, num_samples, single):
    checked = {}
    for level, value in labels.items():
        key = _npz_key(prefix, level, single)
        try:
            array = _as_label_array(key, value)
        except ValueError as error:
            raise ValueError(f"In the `.npz` file {path!r}: {error}") from None
        if len(array) != num_samples:
            x_key = "x" if prefix == "y" else "x" + prefix[1:]
            raise ValueError(
                f"In the `.npz` file {path!r}: `{key}` should have one row per input of "
                f"`{x_key}` ({num_samples}). Received: {len(array)} rows"
            )
        checked[level] = array
    return checked


def _check_npz_kinds(path, train_labels, split_labels, prefix, single):
    for level, train in train_labels.items():
        other = split_labels[level]
        train_key = _npz_key("y", level, single)
        other_key = _npz_key(prefix, level, single)
        if train.ndim != other.ndim:
            kinds = {1: "integer class ids (N,)", 2: "multi-hot (N, K)"}
            raise ValueError(
                f"In the `.npz` file {path!r}: `{train_key}` is {kinds[train.ndim]} but "
                f"`{other_key}` is {kinds[other.ndim]}; both should use the same kind."
            )
        if train.ndim == 2 and train.shape[1] != other.shape[1]:
            raise ValueError(
                f"In the `.npz` file {path!r}: `{train_key}` has {train.shape[1]} multi-hot "
                f"columns but `{other_key}` has {other.shape[1]}."
            )


def save_npz(dataset, path):
    """Writes a `LabeledDataset` to a compressed `.npz` file that `load_npz` reads back.

    Args:
        dataset: the `LabeledDataset` to write.
        path: the output path (`.npz` is appended by NumPy when missing).

    Returns:
        The path written.

    Example:

    >>> data = LabeledDataset(x=np.zeros((4, 2)), labels={"fine": [0, 1, 2, 3]})
    >>> save_npz(data, "toy")
    'toy.npz'
    """
    for level in dataset.levels:
        if level.startswith(("test_", "val_")):
            raise ValueError(
                "Level names should not start with 'test_' or 'val_' (reserved for held-out "
                f"splits in the `.npz` format). Received: level {level!r}"
            )
    arrays = {"x": dataset.x}
    for level, values in dataset.labels.items():
        arrays[f"y_{level}"] = values
    for split, (x_key, y_key) in _SPLIT_KEYS.items():
        x_split = getattr(dataset, x_key)
        if x_split is None:
            continue
        arrays[x_key] = x_split
        for level, values in getattr(dataset, f"{split}_labels").items():
            arrays[f"{y_key}_{level}"] = values
    for level, names in (dataset.class_names or {}).items():
        arrays[f"{_CLASS_NAMES_PREFIX}{level}"] = np.asarray(names, dtype=str)
    path = os.fspath(path)
    np.savez_compressed(path, **arrays)
    return path if path.endswith(".npz") else path + ".npz"


def _check_fraction(name, value, allow_one):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    upper_ok = number is not None and (number <= 1 if allow_one else number < 1)
    if isinstance(value, bool) or number is None or not number > 0 or not upper_ok:
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"`{name}` should be in {interval}. Received: `{name}`={value!r}")
    return number


def _strata(dataset):
    """Per-sample stratum ids from the finest single-label level (all zeros when none)."""
    for level in reversed(dataset.levels):
        if not dataset.is_multi_hot(level):
            return np.unique(dataset.labels[level], return_inverse=True)[1].reshape(-1)
    return np.zeros(len(dataset.x), dtype="int64")


def _stratified_choice(strata, size, rng):
    """Boolean mask selecting `size` samples with each stratum's share as close as possible.

    Each stratum `c` of `n_c` samples gets `floor(n_c * size / N)` picks; the picks left over go
    one each to the strata with the largest remainders (ties broken at random).
    """
    num_samples = len(strata)
    counts = np.bincount(strata)
    ideal = counts * (size / num_samples)
    picks = np.floor(ideal).astype("int64")
    left_over = size - int(picks.sum())
    if left_over > 0:
        remainders = ideal - picks
        tie_break = rng.random(len(counts))
        order = np.lexsort((tie_break, -remainders))
        picks[order[:left_over]] += 1
    mask = np.zeros(num_samples, dtype=bool)
    for stratum, count in enumerate(picks):
        if count:
            members = np.flatnonzero(strata == stratum)
            mask[rng.choice(members, size=int(count), replace=False)] = True
    return mask


def _take(labels, index):
    return {level: values[index] for level, values in labels.items()}


def train_test_split(dataset, test_fraction=0.2, seed=0):
    """Holds out a stratified test split from a dataset that has none.

    Stratifies on the finest single-label level (each class keeps its share, up to rounding);
    when every level is multi-hot the split is uniformly random. Samples keep their order.

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
    num_samples = len(dataset.x)
    if num_samples < 2:
        raise ValueError(f"`dataset` should have at least 2 samples. Received: {num_samples}")
    size = min(max(int(round(num_samples * test_fraction)), 1), num_samples - 1)
    test = _stratified_choice(_strata(dataset), size, np.random.default_rng(seed))
    return dataclasses.replace(
        dataset,
        x=dataset.x[~test],
        labels=_take(dataset.labels, ~test),
        x_test=dataset.x[test],
        test_labels=_take(dataset.labels, test),
    )


def subsample(dataset, fraction, seed=0):
    """Keeps a stratified share of the training samples (the held-out splits are untouched).

    Stratifies on the finest single-label level (uniformly random when every level is
    multi-hot); with `fraction=1.0` the dataset is returned unchanged. Samples keep their order.

    Args:
        dataset: a `LabeledDataset`.
        fraction: share of the training samples to keep, in (0, 1].
        seed: seed of the random choice. Defaults to 0.

    Returns:
        A new `LabeledDataset` with `round(fraction * N)` training samples (at least 1).

    Example:

    >>> small = subsample(load_dataset("fashion_mnist"), fraction=0.1, seed=1)
    >>> small.x.shape
    (600, 28, 28)
    """
    fraction = _check_fraction("fraction", fraction, allow_one=True)
    if fraction == 1.0:
        return dataset
    num_samples = len(dataset.x)
    size = max(int(round(num_samples * fraction)), 1)
    keep = _stratified_choice(_strata(dataset), size, np.random.default_rng(seed))
    return dataclasses.replace(dataset, x=dataset.x[keep], labels=_take(dataset.labels, keep))


def dense_class_ids(dataset):
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


def validation_split(dataset, fraction=0.1, seed=0):
    """Carves a stratified validation set out of the training samples.

    Stratifies like `train_test_split`. The returned training dataset keeps the test split;
    the validation dataset has none.

    Args:
        dataset: a `LabeledDataset`.
        fraction: share of the training samples that go to validation, in (0, 1). Defaults
            to 0.1.
        seed: seed of the random choice. Defaults to 0.

    Returns:
        A tuple `(train, val)` of `LabeledDataset`s.

    Example:

    >>> train, val = validation_split(load_dataset("fashion_mnist"), fraction=0.1)
    >>> len(train.x), len(val.x)
    (5400, 600)
    """
    fraction = _check_fraction("fraction", fraction, allow_one=False)
    num_samples = len(dataset.x)
    if num_samples < 2:
        raise ValueError(f"`dataset` should have at least 2 samples. Received: {num_samples}")
    size = min(max(int(round(num_samples * fraction)), 1), num_samples - 1)
    val = _stratified_choice(_strata(dataset), size, np.random.default_rng(seed))
    train = dataclasses.replace(
        dataset, x=dataset.x[~val], labels=_take(dataset.labels, ~val), x_val=None, val_labels=None
    )
    validation = LabeledDataset(
        x=dataset.x[val],
        labels=_take(dataset.labels, val),
        name=f"{dataset.name}_val",
        class_names=dataset.class_names,
    )
    return train, validation


_DATASET_NAMES = (
    "fashion_mnist",
    "fashion_mnist_full",
    "cifar100",
    "clinc150",
    "mulan_scene",
    "mulan_emotions",
    "mulan_medical",
)


def dataset_names():
    """The names `load_dataset` knows (besides paths to `.npz` files)."""
    return list(_DATASET_NAMES)


def load_dataset(name_or_path, data_dir=None):
    """Loads a dataset by name, or from an `.npz` file.

    Known names:
    - `"fashion_mnist"`: the bundled real Fashion-MNIST subset (levels coarse (5), fine (10)).
    - `"fashion_mnist_full"`: all 70,000 Fashion-MNIST images (Keras cache or Debian package).
    - `"cifar100"`: CIFAR-100 through tensorflow-datasets (levels coarse (20), fine (100)).
    - `"clinc150"`: CLINC150 intents (levels domain (10), intent (150)).
    - `"mulan_scene"`, `"mulan_emotions"`, `"mulan_medical"`: MULAN multi-label sets (one
      multi-hot level, `labels`).

    Args:
        name_or_path: one of the names above, or a path ending in `.npz`.
        data_dir: where the raw data lives: the tensorflow-datasets data folder for
            `"cifar100"`; for the others, a folder holding `fashion-mnist/`, `clinc150/` or
            `mulan/<name>/`. When `None`, each loader looks in its default places (see
            `load_clinc150`, `load_mulan`, `load_fashion_mnist`).

    Returns:
        A `LabeledDataset`.

    Example:

    >>> data = load_dataset("fashion_mnist")
    >>> data.levels
    ['coarse', 'fine']
    """
    name = os.fspath(name_or_path)
    if name.endswith(".npz"):
        return load_npz(name)
    if name == "fashion_mnist":
        from keras_mlcl.data.fashion_mnist import load_fashion_mnist

        return load_fashion_mnist()
    if name == "fashion_mnist_full":
        from keras_mlcl.data.fashion_mnist import load_fashion_mnist

        path = None if data_dir is None else os.path.join(data_dir, "fashion-mnist")
        return load_fashion_mnist(full=True, path=path)
    if name == "cifar100":
        from keras_mlcl.data.cifar100 import load_cifar100

        return load_cifar100(source="tfds", data_dir=data_dir)
    if name == "clinc150":
        from keras_mlcl.data.clinc150 import load_clinc150

        path = None if data_dir is None else os.path.join(data_dir, "clinc150")
        return load_clinc150(path)
    if name.startswith("mulan_") and name in _DATASET_NAMES:
        from keras_mlcl.data.mulan import load_mulan

        mulan_name = name[len("mulan_") :]
        path = None if data_dir is None else os.path.join(data_dir, "mulan", mulan_name)
        return load_mulan(mulan_name, path)
    known = ", ".join(repr(known_name) for known_name in _DATASET_NAMES)
    raise ValueError(
        f"`name_or_path` should be one of {known}, or a path ending in '.npz'. "
        f"Received: `name_or_path`={name_or_path!r}"
    )


def default_data_dirs():
    """Folders searched for raw datasets when no path is given, in order.

    `$KERAS_MLCL_DATA_DIR` when set, then `./data` and `../shared/data` relative to the
    current directory.
    """
    dirs = []
    if os.environ.get("KERAS_MLCL_DATA_DIR"):
        dirs.append(os.environ["KERAS_MLCL_DATA_DIR"])
    dirs.append(os.path.join(os.getcwd(), "data"))
    dirs.append(os.path.join(os.getcwd(), "..", "shared", "data"))
    return dirs
