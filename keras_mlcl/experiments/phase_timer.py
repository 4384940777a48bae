"""The wall-clock time of each phase of a run (loading, training, probe, plot, export...)."""

import contextlib
import math
import sys
import time
from collections.abc import Iterator
from typing import Any


class PhaseTimer:
    """Times the phases of a run; with `verbose`, reports each labelled one on stderr.

    The clock starts when the timer is made. Each `phase` adds its seconds to its key (a
    phase run twice is the sum of both). `record` gives every phase and the total, as a run's
    `results.json` holds them under `"timings_s"`.

    Args:
        verbose: whether a phase with a `label` prints `keras-mlcl: <label> ...` when it
            starts and its seconds when it ends (on stderr). Defaults to 0 (nothing printed).

    Example:

    >>> timer = PhaseTimer()
    >>> with timer.phase("load"):
    ...     rows = sorted(range(1000))
    >>> timings = timer.record()
    >>> list(timings), timings["load"] <= timings["total"]
    (['load', 'total'], True)
    """

    def __init__(self, verbose: Any = 0) -> None:
        self.verbose = verbose
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, key: str, label: str | None = None) -> Iterator[None]:
        """Times the `with` block as the phase `key`.

        Args:
            key: the phase's name in `seconds` and `record`, e.g. `"probe"`.
            label: what `verbose` prints, e.g. `"linear probe (2 levels)"`; None prints
                nothing.
        """
        if key == "total":
            raise ValueError("`key` should name a phase; 'total' is the whole run's time.")
        report = bool(self.verbose) and label is not None
        if report:
            print(f"keras-mlcl: {label} ...", end="", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            if report:
                print(" failed", file=sys.stderr, flush=True)  # the error gets its own line
            raise
        finally:
            seconds = time.perf_counter() - started
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        if report:
            print(f" {seconds:.1f} s", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        """Seconds since the timer was made."""
        return time.perf_counter() - self._started

    def record(self) -> dict[str, float]:
        """`{phase: seconds, ..., "total": seconds since the timer was made}`, in phase order.

        Each phase is rounded down to the millisecond and the total up, so the phases never
        sum to more than the total; the rest of the total is the time between phases.
        """
        timings = {key: math.floor(s * 1000) / 1000 for key, s in self.seconds.items()}
        timings["total"] = math.ceil(self.elapsed() * 1000) / 1000
        return timings
