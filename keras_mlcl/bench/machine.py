"""The machine and the command a benchmark ran on, recorded beside its figures."""

import os
import platform
import shlex
import sys
from typing import Any

import keras

from keras_mlcl.bench.backend import library_details

# Environment variables that set how many threads the backends use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "XLA_FLAGS")


def machine_description() -> dict[str, Any]:
    """A dict describing the machine and software of this run.

    Returns:
        A dict with `platform`, `processor` (the CPU model name where the system tells it),
        `cpu_count`, `python`, `keras`, `backend`, the backend library's version under the
        backend's name (e.g. `"jax": "0.4.35"`), `torch_threads` on torch, `thread_settings`
        (the thread variables that are set, when any) and `load_average` (where the system
        has one).

    Example:

    >>> machine_description()["cpu_count"] == os.cpu_count()
    True
    """
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _processor_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    info.update(library_details())
    threads = {key: os.environ[key] for key in THREAD_VARIABLES if key in os.environ}
    if threads:
        info["thread_settings"] = threads
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def _processor_name() -> str:
    """The CPU model from `/proc/cpuinfo` (Linux), else what `platform` reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command_line() -> str:
    """This process's command line, as a shell would take it (`keras-mlcl ...` for the CLI)."""
    argv = list(sys.argv) or ["python"]
    if os.path.basename(argv[0]) in ("keras-mlcl", "__main__.py"):
        return shlex.join(["keras-mlcl", *argv[1:]])
    return shlex.join(argv)
