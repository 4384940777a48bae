"""Argument checks shared by the augmentation layers."""

import math
import numbers
from typing import Any


def as_float(value: Any) -> float | None:
    """`value` as a float, or None for a bool, a non-number or NaN."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def check_rate(name: str, value: Any) -> float:
    """Returns `value` as a float, or raises if it is not in [0, 1)."""
    number = as_float(value)
    if number is None or not 0.0 <= number < 1.0:
        raise ValueError(f"`{name}` should be a float in [0, 1). Received: `{name}`={value!r}")
    return number


def check_unit_float(name: str, value: Any) -> float:
    """Returns `value` as a float, or raises if it is not in [0, 1]."""
    number = as_float(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"`{name}` should be a float in [0, 1]. Received: `{name}`={value!r}")
    return number


def check_token_id(name: str, value: Any, allow_none: bool = False) -> int | None:
    """Returns `value`, or raises if it is not a non-negative int."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`{name}` should be a non-negative integer token id. Received: `{name}`={value!r}"
        )
    return int(value)
