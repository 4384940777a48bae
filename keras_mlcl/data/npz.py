"""The keras-mlcl `.npz` dataset format: `load_npz` and `save_npz`."""

import math
import os
import tokenize
import zipfile
import zlib

import numpy as np

from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.labels import as_label_array
from keras_mlcl.data.labels import check_same_kind
from keras_mlcl.utils.atomic_write import write_beside
from keras_mlcl.utils.class_names import string_labels
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_readable

# Prefixes of the optional held-out splits in an `.npz` file (`x_test` + `y_test_<level>`).
_SPLIT_KEYS = {"test": ("x_test", "y_test"), "val": ("x_val", "y_val")}
_CLASS_NAMES_PREFIX = "class_names_"
_SINGLE_LEVEL_NAME = "label"
# Keys of the optional row ids of each split.
_IDS_KEYS = {"": "ids", "test": "ids_test", "val": "ids_val"}


def load_npz(path: str | os.PathLike[str]) -> LabeledDataset:
    """Loads a dataset from an `.npz` file in the keras-mlcl format.

    The file holds `x` `(N, ...)` and one label array per level, `y_<level>`: integer class
    ids `(N,)` (`-1` = missing), class names `(N,)` as a string array (mapped to ids like
    `LabeledDataset` does, `""` = missing) or multi-hot `(N, K)`. Levels are ordered coarse ->
    fine in the order the arrays were written. A single-level file may name its labels `y` (the
    level is then called `"label"`). An optional test split is `x_test` with one
    `y_test_<level>` (or `y_test`) per training level; likewise an optional validation split
    `x_val` / `y_val_<level>`.
    Optional `class_names_<level>` string arrays name the classes, and optional `ids`,
    `ids_test`, `ids_val` arrays hold row ids of each split. Other keys are ignored.

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
    check_readable("The `.npz` dataset file", path)
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
    splits: dict[str, tuple[np.ndarray | None, dict[str, np.ndarray] | None]] = {}
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
        for level, train in train_labels.items():
            try:
                check_same_kind(
                    train,
                    split_labels[level],
                    _npz_key("y", level, single),
                    _npz_key(y_key, level, single),
                )
            except ValueError as error:
                raise ValueError(f"In the `.npz` file {path!r}: {error}") from None
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
            **{
                f"{split}_ids" if split else "ids": arrays.get(key)
                for split, key in _IDS_KEYS.items()
            },
        )
    except ValueError as error:
        raise ValueError(f"In the `.npz` file {path!r}: {error}") from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` archive, or a one-line `ValueError` naming `path`."""
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        what = (
            "an empty file" if size == 0 else f"a file of {size} bytes that is not a complete zip"
        )
        raise ValueError(f"{path!r} is not an .npz archive (numpy.savez output): it is {what}.")
    try:
        problem = _member_problem(path)
        if problem is None:
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
    except MemoryError as error:
        raise ValueError(
            f"Cannot read the .npz archive {path!r}: its arrays do not fit in memory ({error})."
        ) from None
    raise ValueError(f"The .npz archive {path!r} has a corrupt member {problem}.")


def _member_problem(path: str) -> str | None:
    """What is wrong with the first member of the zip `path` that is not a sound `.npy` array.

    Only each member's `.npy` header is read: the size it declares (shape x item size) is
    compared with the member's size in the zip directory, so a corrupt or forged header is
    found before any array is allocated.

    Returns:
        `"'<member>': <what is wrong>"`, or `None` when every member is sound.
    """
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                except (ValueError, SyntaxError, tokenize.TokenError) as error:
                    reason = " ".join(str(error.args[0] if error.args else error).split())
                    return f"{info.filename!r}: its .npy header cannot be read ({reason})"
                header_size = member.tell()
            if dtype.hasobject:  # pickled: refused by `np.load(allow_pickle=False)`
                continue
            declared = header_size + math.prod(shape) * dtype.itemsize
            if declared != info.file_size:
                return (
                    f"{info.filename!r}: its header declares a {dtype} array of shape {shape} "
                    f"({declared:,} bytes), but the member holds {info.file_size:,} bytes"
                )
    return None


def _npz_key(prefix: str, level: str, single: bool) -> str:
    return prefix if single else f"{prefix}_{level}"


def _check_npz_labels(
    path: str, prefix: str, labels: LevelLabels, num_samples: int, single: bool
) -> dict[str, np.ndarray]:
    checked = {}
    for level, value in labels.items():
        key = _npz_key(prefix, level, single)
        try:
            strings = string_labels(value)
            array = as_label_array(key, value) if strings is None else strings
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


def save_npz(dataset: LabeledDataset, path: str | os.PathLike[str]) -> str:
    """Writes a `LabeledDataset` to a compressed `.npz` file that `load_npz` reads back.

    Args:
        dataset: the `LabeledDataset` to write.
        path: the output path (`.npz` is appended when missing). The file is written beside
            it, then moved there: an earlier file at `path` is replaced only once the new one
            is complete, and is kept when the write fails.

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
    for split, key in _IDS_KEYS.items():
        ids = getattr(dataset, f"{split}_ids" if split else "ids")
        if ids is not None:
            arrays[key] = ids
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    with write_beside(path, replace=True) as partial:
        with open(partial, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path
