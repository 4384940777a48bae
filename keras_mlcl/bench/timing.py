"""Median wall-clock times of zero-argument functions, timed round by round.

The compiled forward-and-gradient steps that get timed come from
`keras_mlcl.bench.backend` (`gradient_runner`, `matmul_runner`,
`peak_memory_mb`), which holds the bench's backend-specific code.
"""

import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeAlias

import numpy as np

WARMUP = 3

Run: TypeAlias = Callable[[], Any]
"""A zero-argument callable: one forward pass and its gradient, waited for."""

Runner: TypeAlias = tuple[Run, Any, Any]
"""`(run, step, step_args)`: `run` to time, and the compiled `step` with its arguments for
`peak_memory_mb` (None where the backend reads the memory from `run` itself)."""


def time_interleaved(
    functions: Mapping[str, Run], repeats: int, warmup: int = WARMUP
) -> dict[str, float]:
    """Median seconds of each zero-argument function, timed round by round.

    Interleaving the functions inside each round spreads any slow-down of the
    machine (another process, a frequency change) over all of them alike.

    Args:
        functions: a dict of name to zero-argument callable.
        repeats: the number of timed rounds.
        warmup: untimed calls of each function first (compilation, caches).
            Defaults to `WARMUP`.

    Returns:
        A dict of name to the median seconds of one call.

    Example:

    >>> medians = time_interleaved({"sum": lambda: sum(range(100))}, repeats=3, warmup=1)
    >>> list(medians), medians["sum"] > 0
    (['sum'], True)
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}
