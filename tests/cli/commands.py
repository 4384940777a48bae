"""Running the `keras-mlcl` command in tests: in this process, or as a process of its own.

In-process is the default (`command`): the same parser and commands, without a Python and
TensorFlow start-up per call. A child process (`launch`) is for what only a process shows:
its exit code, what reaches its stderr, what it imports.
"""

import os
import subprocess
import sys

import numpy as np

from keras_mlcl_launcher import run

LAUNCH = "from keras_mlcl_launcher import main; main()"


def write_unseen_npz(path, n=240, seed=0):
    """A 2-level vector dataset in the `.npz` format (`x`, `y_<level>`), new to the project.

    Returns:
        `path`.
    """
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 6, size=n)
    centres = rng.normal(size=(6, 12)) * 3
    x = (centres[fine] + rng.normal(size=(n, 12))).astype("float32")
    np.savez(path, x=x, y_group=fine // 3, y_kind=fine)
    return path


def command(capfd, *args):
    """`keras-mlcl ARGS` in this process, as the console script runs it.

    Args:
        capfd: pytest's `capfd` fixture; what was captured before the call is dropped.
        *args: the command line after `keras-mlcl`.

    Returns:
        `(exit code, stdout, stderr)` of the call.
    """
    capfd.readouterr()
    try:
        code = run(list(args))
    except SystemExit as exit_:  # --help, --version and usage errors exit from the parser
        code = exit_.code
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def one_error_line(stderr):
    """The single `keras-mlcl: error: ...` line that `stderr` should be."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("keras-mlcl: error:"), stderr
    return lines[0]


def launch(*args, backend=None, cwd=None):
    """`keras-mlcl ARGS` as a process of its own (under `backend` if given).

    Returns:
        The completed process (`returncode`, `stdout`, `stderr` as text).
    """
    env = dict(os.environ)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
