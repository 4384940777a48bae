"""The temperatures a contrastive loss accepts: positive, and at least `MIN_TEMPERATURE`.

The loss scales the cosine similarities of unit embeddings (in [-1, 1]) by `1 / temperature`
in float32. At `MIN_TEMPERATURE = 1e-4` the scaled similarities reach 1e4 and the loss's
gradients about 4e3 times the embeddings'; below it float32 keeps ever fewer digits of their
differences, and near 1e-38 `1 / temperature` overflows and the loss is NaN.
"""

import math
from typing import Any

MIN_TEMPERATURE = 1e-4


def check_temperature(name: str, value: Any) -> float:
    """Returns `value` as a float, or raises if it is not a finite float >= `MIN_TEMPERATURE`.

    Args:
        name: the argument's name, for the error message.
        value: the temperature given.

    Returns:
        The temperature, a float.

    Example:

    >>> check_temperature("temperature", 0.07)
    0.07
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < MIN_TEMPERATURE:
        raise ValueError(
            f"`{name}` should be a positive float >= {MIN_TEMPERATURE} (the loss scales "
            f"similarities by 1 / temperature). Received: `{name}`={value!r}"
        )
    return number
