"""Files written beside their target, then moved into place whole (`write_beside`).

A reader never sees a half-written file, and a failed write (a full disk, an interrupt) leaves
the target as it was. The temporary sibling has a short name, `.keras-mlcl-tmp-<hash>-<random>`
(`sibling_prefix`), so that any valid target name has a valid sibling.
"""

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator

TEMP_TAG = ".keras-mlcl-tmp-"


def sibling_prefix(tag: str, name: str) -> str:
    """The name prefix of a temporary sibling of the file or folder `name`: `tag` and a short
    hash of `name`, so that its length is bounded whatever the length of `name`.

    Example:

    >>> sibling_prefix(TEMP_TAG, "run" * 80)
    '.keras-mlcl-tmp-...-'
    >>> len(sibling_prefix(TEMP_TAG, "run" * 80))
    29
    """
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    return f"{tag}{digest}-"


def default_mode(full: int) -> int:
    """The permissions `full` (0o666 for a file, 0o777 for a folder) less the process's umask:
    what `open` and `os.makedirs` give a new file or folder."""
    umask = os.umask(0)
    os.umask(umask)
    return full & ~umask


@contextlib.contextmanager
def write_beside(out: str | os.PathLike[str], replace: bool = False) -> Iterator[str]:
    """Yields a temporary file path beside `out`; when the block ends without error, the file
    becomes `out`. On error, the temporary file is removed and `out` is untouched; an
    `OSError` that names no file (a write on a full disk) is given `out` as its file name.

    Args:
        out: the file to write.
        replace: whether an existing `out` is replaced (once the new file is complete).
            Defaults to False: `out` must not exist, and is never replaced (`ValueError`).

    Example:

    >>> with write_beside("notes.txt") as partial:
    ...     with open(partial, "w") as f:
    ...         _ = f.write("hello")
    >>> open("notes.txt").read()
    'hello'
    """
    out = os.fspath(out)
    folder, name = os.path.split(os.path.abspath(out))
    handle, partial = tempfile.mkstemp(prefix=sibling_prefix(TEMP_TAG, name), dir=folder)
    os.close(handle)
    try:
        os.chmod(partial, default_mode(0o666))  # mkstemp's 0o600 would outlive the write
        yield partial
        if replace:
            os.replace(partial, out)
            return
        try:
            os.link(partial, out)  # fails if `out` exists: nothing is ever replaced
        except FileExistsError:
            raise ValueError(f"{out!r} exists; it is never replaced: choose a new file.") from None
    except OSError as error:
        if error.filename is None:
            error.filename = out
        raise
    finally:
        if os.path.lexists(partial):
            os.remove(partial)
