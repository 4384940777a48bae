"""Run folders: written beside the target, swapped in when complete, never touching foreign files.

A run (of `keras-mlcl train` or `bench quality`) is written into a temporary sibling of its
target folder, made with a unique name and marked as ours from its first moment. Only when the
run is complete is it moved to the target. A finished run carries a marker file listing every
file the run wrote, so a later run can recognise it (not guess), and refuse a folder that holds
anything else.

Rules, for a target folder `out`:
- `out` does not exist, or is an empty folder: the run is moved there.
- `out` is a link: the folder it points to is the target (the link is kept); a link to
  nothing is refused.
- `out` is a mount point: refused (a mount point cannot be replaced by another folder).
- `out` is (or contains) the working folder or a protected path (the input data): refused.
- `out` holds anything that is not a keras-mlcl run: refused, nothing touched.
- `out` is a finished run: refused unless `overwrite=True`; then the old run is replaced only
  once the new one is complete. A run folder that also holds foreign files is refused even then.
- A temporary folder left by a killed run is removed only when it carries our marker and the
  process that made it is gone.

Temporary siblings have short names (`keras_mlcl.utils.atomic_write.sibling_prefix`), so that
any valid target name has a valid sibling. A write that fails (a full disk) raises its
`OSError` naming the target when the system named no file.
"""

import contextlib
import datetime
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

from keras_mlcl.utils.atomic_write import TEMP_TAG
from keras_mlcl.utils.atomic_write import default_mode
from keras_mlcl.utils.atomic_write import sibling_prefix
from keras_mlcl.version import __version__

MARKER = ".keras-mlcl-run.json"
PARTIAL_MARKER = ".keras-mlcl-partial.json"
_OLD_TAG = ".keras-mlcl-old-"


class RunFolderError(ValueError):
    """A run folder that cannot be written without touching files keras-mlcl did not write."""


def _files_below(folder: str) -> list[str]:
    """Relative paths of every file and link below `folder` (folders themselves excluded)."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def read_marker(folder: str) -> dict[str, Any] | None:
    """The marker of a finished run in `folder` as a dict, or None when there is none."""
    path = os.path.join(folder, MARKER)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    return marker


def foreign_files(folder: str) -> list[str]:
    """Files in a run folder that its marker does not list (everything, when unmarked)."""
    marker = read_marker(folder)
    ours = set(marker["files"]) | {MARKER} if marker else set()
    return [path for path in _files_below(folder) if path not in ours]


def _real_path(out: str) -> str:
    """`out` with every link resolved; a link to nothing is refused."""
    if os.path.islink(out) and not os.path.exists(out):
        raise RunFolderError(
            f"The run folder {out!r} is a link to {os.readlink(out)!r}, which does not exist."
        )
    return os.path.realpath(out)


def _contains(outer: str, inner: str) -> bool:
    outer, inner = os.path.realpath(outer), os.path.realpath(inner)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_target(out: str, overwrite: bool = False, protected: Sequence[str | None] = ()) -> bool:
    """Raises a `RunFolderError` when a run may not be written to `out`.

    A link is checked as the folder it points to.

    Args:
        out: the target run folder.
        overwrite: whether a finished earlier run in `out` may be replaced.
        protected: paths the run must not be able to touch (the input data); the working
            folder is always protected.

    Returns:
        Whether `out` holds a finished run that the new one will replace.
    """
    real = _real_path(out)
    if os.path.exists(real) and not os.path.isdir(real):
        raise RunFolderError(f"The run folder {out!r} should be a folder. It is a file.")
    for path in (os.getcwd(), *protected):
        if path is not None and _contains(real, path):
            what = "the working folder" if path == os.getcwd() else f"the input {path!r}"
            raise RunFolderError(
                f"The run folder {out!r} contains {what}; choose a new folder for the run."
            )
    if os.path.ismount(real):
        raise RunFolderError(
            f"The run folder {out!r} is a mount point, which a finished run cannot be moved "
            f"onto; choose a folder inside it (e.g. {os.path.join(out, 'run')!r})."
        )
    if not os.path.isdir(real) or not os.listdir(real):
        return False
    if read_marker(real) is None:
        raise RunFolderError(
            f"The run folder {out!r} exists and is not a keras-mlcl run; nothing was touched. "
            "Choose a new or empty folder."
        )
    foreign = foreign_files(real)
    if foreign:
        raise RunFolderError(
            f"The run folder {out!r} holds files that keras-mlcl did not write "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); nothing was "
            "touched. Choose a new or empty folder."
        )
    if not overwrite:
        raise RunFolderError(
            f"The run folder {out!r} holds a finished keras-mlcl run; pass --overwrite "
            "(overwrite=True) to replace it."
        )
    return True


def _process_alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell: keep it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        pass
    return True


def _clean_stale(parent: str, base: str) -> None:
    """Removes temporary folders of `base` left by killed runs, when marked as ours."""
    prefix = sibling_prefix(TEMP_TAG, base)
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        path = os.path.join(parent, name)
        try:
            with open(os.path.join(path, PARTIAL_MARKER), encoding="utf-8") as f:
                owner = json.load(f)
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not provably ours
        if not _process_alive(pid, host):
            shutil.rmtree(path, ignore_errors=True)


def _write_json(path: str, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)


def _remove_run(folder: str) -> None:
    """Deletes a finished run's folder if it still holds only files its marker lists."""
    if read_marker(folder) is not None and not foreign_files(folder):
        shutil.rmtree(folder)


@contextlib.contextmanager
def run_folder(
    out: str | os.PathLike[str],
    kind: str,
    overwrite: bool = False,
    protected: Sequence[str | None] = (),
) -> Iterator[str]:
    """Yields a temporary folder to write a run into; moves it to `out` when complete.

    The checks of `check_target` run first, before any work. On an exception the temporary
    folder is removed and `out` is left as it was; an `OSError` that names no file (a write
    on a full disk) is given `out` as its file name.

    Args:
        out: the target run folder.
        kind: what wrote the run (`"train"`, `"bench quality"`), recorded in the marker.
        overwrite: whether a finished earlier run in `out` may be replaced.
        protected: paths the run must not be able to touch (the input data).

    Example:

    >>> with run_folder("runs/first", "train") as folder:
    ...     with open(os.path.join(folder, "results.json"), "w") as f:
    ...         _ = f.write("{}")
    >>> sorted(os.listdir("runs/first"))
    ['.keras-mlcl-run.json', 'results.json']
    """
    out = os.path.normpath(os.fspath(out))
    check_target(out, overwrite=overwrite, protected=protected)
    parent, base = os.path.split(_real_path(out))
    try:
        os.makedirs(parent, exist_ok=True)
        _clean_stale(parent, base)
        temp = tempfile.mkdtemp(prefix=sibling_prefix(TEMP_TAG, base), dir=parent)
        os.chmod(temp, default_mode(0o777))  # mkdtemp's 0o700 would outlive the run
        _write_json(
            os.path.join(temp, PARTIAL_MARKER), {"pid": os.getpid(), "host": socket.gethostname()}
        )
    except OSError as error:
        raise RunFolderError(
            f"The run folder {out!r} should be writable. Cannot write beside it: {error.strerror}"
        ) from None
    try:
        yield temp
        os.remove(os.path.join(temp, PARTIAL_MARKER))
        marker = {
            "written_by": "keras-mlcl",
            "version": __version__,
            "kind": kind,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "files": _files_below(temp),
        }
        _write_json(os.path.join(temp, MARKER), marker)
        _swap_in(temp, out, overwrite)
    except BaseException as error:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = out
        raise


def _swap_in(temp: str, out: str, overwrite: bool) -> None:
    """Moves the finished run `temp` to `out` (the folder a link `out` points to), replacing an
    earlier run only when allowed."""
    replaces = check_target(out, overwrite=overwrite)  # again: `out` may have changed
    real = _real_path(out)
    if not replaces:
        if os.path.isdir(real):
            os.rmdir(real)  # empty; fails, touching nothing, if a file appeared since
        os.rename(temp, real)
        return
    parent, base = os.path.split(real)
    old = tempfile.mkdtemp(prefix=sibling_prefix(_OLD_TAG, base), dir=parent)
    os.rmdir(old)
    os.rename(real, old)
    try:
        os.rename(temp, real)
    except BaseException:
        os.rename(old, real)
        raise
    _remove_run(old)


def add_to_run(folder: str, name: str) -> None:
    """Records a file written later into a finished run (e.g. `metrics.json` of `evaluate`).

    Does nothing when `folder` is not a run folder.
    """
    marker = read_marker(folder)
    if marker is None or name in marker["files"]:
        return
    marker["files"] = sorted(marker["files"] + [name])
    partial = os.path.join(folder, MARKER + ".new")
    _write_json(partial, marker)
    os.replace(partial, os.path.join(folder, MARKER))
