"""String labels (class names) to int32 class ids and back, on the host, with NumPy.

Labels are strings when they are a NumPy str or bytes array, or a list or object array holding
at least one `str` or `bytes`. A missing label (`None`, NaN, an empty or blank string) is
unlabelled: class id `-1`. The class ids index a list of names: given ones, or the sorted
distinct names found in all the labels mapped together.
"""

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_mlcl.utils.types import ArrayLike

# How many unknown names an error message shows.
SHOWN_NAMES = 5


def string_labels(labels: Any) -> np.ndarray | None:
    """`labels` as a NumPy array when they are string labels (any shape), else `None`.

    A list keeps its values as they are (an object array: NaN stays NaN, not "nan"); anything
    that is not a list or a NumPy array of str, bytes or objects (int ids, multi-hot, tensors)
    gives `None`.

    Args:
        labels: the labels, any array-like.

    Returns:
        A str, bytes or object NumPy array, or `None`.

    Example:

    >>> string_labels(["cat", None]).tolist(), string_labels(np.array([0, 1]))
    (['cat', None], None)
    """
    if isinstance(labels, (list, tuple)):
        array = np.asarray(labels, dtype=object)
    elif isinstance(getattr(labels, "dtype", None), np.dtype) and labels.dtype.kind in "OSU":
        array = np.asarray(labels)
    else:
        return None
    if array.dtype.kind in "SU":
        return array
    return array if any(isinstance(v, (str, bytes)) for v in array.flat) else None


def is_missing_label(value: Any) -> bool:
    """Whether one label value means "unlabelled": `None`, NaN, or an empty (blank) string."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, (str, bytes)):
        return not value.strip()
    return False


def encode_class_names(
    level: str, labels: Mapping[str, Any], class_names: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Maps one level's string labels, in one or several arrays, to `int32` class ids.

    Args:
        level: the labels' level, for error messages.
        labels: `{argument: labels}`, the argument naming the labels in error messages (e.g.
            `"y['fine']"`); each labels array-like, of any shape, holds strings (str or bytes)
            and missing values (`None`, NaN, empty or blank strings).
        class_names: the names of class `0, 1, ...`; `None` for the sorted distinct names of
            all the labels together.

    Returns:
        `(ids, names)`: `{argument: int32 class ids of the shape of its labels}` (`-1` where
        missing), and the class names.

    Example:

    >>> ids, names = encode_class_names("fine", {"a": ["dog", "cat", None], "b": [b"ant"]})
    >>> {argument: values.tolist() for argument, values in ids.items()}, names
    ({'a': [2, 1, -1], 'b': [0]}, ['ant', 'cat', 'dog'])
    >>> encode_class_names("fine", {"y": [["dog", ""]]}, ["dog", "cat"])[0]["y"].tolist()
    [[0, -1]]
    """
    texts = {argument: _texts(argument, values) for argument, values in labels.items()}
    # Each array's distinct values (decoded, "" when blank) and its rows' index among them.
    distinct = {}
    for argument, text in texts.items():
        values, inverse = np.unique(text, return_inverse=True)
        distinct[argument] = ([_text(value) for value in values.tolist()], inverse)
    if class_names is None:
        names = sorted({name for found, _ in distinct.values() for name in found if name})
    else:
        names = [str(name) for name in class_names]
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(
                f"`class_names[{level!r}]` should not repeat a name. Received: {repeated} "
                f"more than once in {len(names)} names"
            )
    index = {name: i for i, name in enumerate(names)}
    index[""] = -1
    ids = {}
    for argument, text in texts.items():
        found, inverse = distinct[argument]
        unknown = sorted({name for name in found if name not in index})
        if unknown:
            more = f" and {len(unknown) - SHOWN_NAMES} more" if len(unknown) > SHOWN_NAMES else ""
            raise ValueError(
                f"`{argument}` should hold class names of level {level!r} (listed in "
                f"`class_names[{level!r}]`, {len(names)} names). Received unknown names: "
                f"{unknown[:SHOWN_NAMES]}{more}"
            )
        found_ids = np.asarray([index[name] for name in found], dtype="int32")
        ids[argument] = found_ids[np.reshape(inverse, -1)].reshape(text.shape)
    return ids, names


def names_from_ids(level: str, ids: ArrayLike, names: Sequence[str]) -> np.ndarray:
    """Int class ids as their class names (an object array; `None` for ids < 0).

    Args:
        level: the ids' level, for error messages.
        ids: int class ids, any shape.
        names: the level's class names, class id `i` being `names[i]`.

    Returns:
        An object NumPy array of the shape of `ids`.

    Example:

    >>> names_from_ids("fine", [1, -1], ["cat", "dog"]).tolist()
    ['dog', None]
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or (ids.size and ids.max() >= len(names)):
        raise ValueError(
            f"`ids` should be int class ids below {len(names)} (the class names of "
            f"{level!r}), or -1 for unlabelled. Received: dtype {ids.dtype}"
            + (f", largest id {ids.max()}" if ids.size and ids.dtype.kind in "iu" else "")
        )
    table = np.asarray([*names, None], dtype=object)
    return table[np.where(ids < 0, len(names), ids)]


def _texts(argument: str, labels: Any) -> np.ndarray:
    """`labels` as a str or bytes array of their shape (`""` for `None` and NaN); a value that is
    neither a string nor missing raises."""
    array = string_labels(labels)
    if array is None:
        array = np.asarray(labels, dtype=object)
    if array.dtype.kind in "SU":
        return array
    try:
        return np.asarray(np.frompyfunc(_text, 1, 1)(array), dtype=str)
    except TypeError:
        flat = array.ravel().tolist()
        row = [isinstance(v, (str, bytes)) or is_missing_label(v) for v in flat].index(False)
        index = tuple(int(i) for i in np.unravel_index(row, array.shape))
        where = f"row {row}" if array.ndim == 1 else f"index {index}"
        raise ValueError(
            f"`{argument}` should hold class names (strings), or None, NaN or '' for unlabelled "
            f"rows. Received: {flat[row]!r} ({type(flat[row]).__name__}) on {where}"
        ) from None


def _text(value: Any) -> str:
    """One label's class name, `""` when missing; `TypeError` for a non-string."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value if value.strip() else ""
    if is_missing_label(value):
        return ""
    raise TypeError(type(value).__name__)
