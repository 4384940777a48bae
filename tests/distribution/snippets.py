"""Reads the code snippets of docs/scaling.md and runs them in child processes."""

import os
import re
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GUIDE = os.path.join(REPO, "docs", "scaling.md")


def snippet(name):
    """The Python code block that follows `<!-- snippet: name -->` in the guide."""
    with open(GUIDE, encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    if match is None:
        raise AssertionError(f"docs/scaling.md has no snippet {name!r}")
    return match.group(1)


def run_script(code, tmp_path, backend, env=None, launcher=(), timeout=300):
    """Writes `code` to a file and runs it with `python [launcher] file`.

    Returns:
        The completed process; its stdout and stderr are in the assertion
        message when it fails.
    """
    path = tmp_path / "snippet.py"
    path.write_text(code, encoding="utf-8")
    child_env = dict(os.environ)
    child_env.update(
        {
            "KERAS_BACKEND": backend,
            "PYTHONPATH": REPO + os.pathsep + child_env.get("PYTHONPATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    child_env.update(env or {})
    process = subprocess.run(
        [sys.executable, *launcher, str(path)],
        cwd=str(tmp_path),
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == 0, (
        f"snippet failed (exit {process.returncode})\n--- stdout\n{process.stdout[-4000:]}"
        f"\n--- stderr\n{process.stderr[-6000:]}"
    )
    return process
