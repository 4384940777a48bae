"""Median wall-clock times of zero-argument functions, timed round by round.

The compiled forward-and-gradient steps that get timed come from
`keras_mlcl.backend` (`gradient_runner`, `matmul_runner`, `peak_memory_mb`),
which holds the bench's backend-specific code.
"""

import time

import numpy as np

WARMUP = 3


def time_interleaved(functions, repeats, warmup=WARMUP):
    """Median seconds of each zero-argument function, timed round by round.

    Interleaving the functions inside each round spreads any slow-down of the
    machine (another process, a frequency change) over all of them alike.

    Args:
        functions: a dict of name to zero-argument callable.
        repeats: the number of timed rounds.
        warmup: untimed calls of each function first (compilation, caches).

    Returns:
        A dict of name to the median seconds of one call.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}
