"""Argument checks that raise Keras-style `ValueError`s before any compute."""

import math
import os
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from keras_mlcl.utils.types import Tensor

Choice = TypeVar("Choice")


def check_positive_float(name: str, value: Any) -> float:
    """Returns `value` as a float, or raises if it is not a finite number > 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"`{name}` should be a positive float. Received: `{name}`={value!r}")
    return number


def check_non_negative_float(name: str, value: Any) -> float:
    """Returns `value` as a float, or raises if it is not a finite number >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not math.isfinite(number) or number < 0:
        raise ValueError(f"`{name}` should be a non-negative float. Received: `{name}`={value!r}")
    return number


def check_positive_int(name: str, value: Any) -> int:
    """Returns `value`, or raises if it is not an int > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` should be a positive integer. Received: `{name}`={value!r}")
    return value


def check_choice(name: str, value: Choice, choices: Sequence[Choice]) -> Choice:
    """Returns `value`, or raises if it is not one of `choices`."""
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` should be one of {expected}. Received: `{name}`={value!r}")
    return value


def static_batch_size(tensor: Tensor) -> int | None:
    """The static size of the first axis, or `None` when it is unknown."""
    shape = tensor.shape
    if len(shape) == 0 or shape[0] is None:
        return None
    return int(shape[0])


def check_same_batch_size(
    y_true_name: str, y_true: Tensor, y_pred_name: str, y_pred: Tensor
) -> None:
    """Raises when two tensors' static batch sizes are known and differ."""
    n_true = static_batch_size(y_true)
    n_pred = static_batch_size(y_pred)
    if n_true is not None and n_pred is not None and n_true != n_pred:
        raise ValueError(
            f"`{y_true_name}` and `{y_pred_name}` should have the same batch "
            f"size. Received: `{y_true_name}.shape`={tuple(y_true.shape)} and "
            f"`{y_pred_name}.shape`={tuple(y_pred.shape)}"
        )


def check_readable(name: str, path: str | os.PathLike[str]) -> None:
    """Raises a `PermissionError` when `path`, or a folder above it, exists but cannot be read.

    A folder whose permissions deny reading hides what it holds: without this check, a dataset
    in it is reported as not found.

    Args:
        name: how the message calls `path`, e.g. `"The CLINC150 folder"`.
        path: a file or folder; one that does not exist passes.
    """
    path = os.path.abspath(os.fspath(path))
    folders = []
    parent = os.path.dirname(path)
    while parent not in folders:
        folders.append(parent)
        parent = os.path.dirname(parent)
    for folder in reversed(folders):
        if os.path.isdir(folder) and not os.access(folder, os.X_OK):
            raise PermissionError(
                f"{name} {path!r} is not readable: permission denied on the folder {folder!r}."
            )
    mode = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
    if os.path.exists(path) and not os.access(path, mode):
        raise PermissionError(f"{name} {path!r} is not readable: permission denied.")
