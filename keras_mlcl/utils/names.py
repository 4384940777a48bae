"""Layer and file names derived from a user's level names, safe on every backend and disk.

A level name is any string (`"fine level"`, `"niveau_é"`, 250 characters): it stays the key of
the labels, the heads and the outputs. What Keras, TensorFlow or the file system receive is a
name derived from it: the level name itself when it holds only ASCII letters, digits, `_`, `.`
and `-` (so the layers and saved weights of such names never change), else its ASCII letters
and digits with every other character as `_`, followed by 8 hex digits of the name's SHA-1, so
that two level names never share a derived name.
"""

import hashlib
import re
import unicodedata

# What TensorFlow accepts in a name scope, less its separators (`/`, `\\`, `>`).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_.\-]")
_DIGEST_LENGTH = 8


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_LENGTH]


def layer_name(name: str) -> str:
    """A layer name for the level `name`, accepted by Keras and TensorFlow.

    Args:
        name: the level (or head) name, any string.

    Returns:
        `name` when it holds only ASCII letters, digits, `_`, `.` and `-`; else its characters
        as ASCII (accents dropped, anything else `_`), `_` and 8 hex digits of its SHA-1.

    Example:

    >>> layer_name("fine"), layer_name("fine level"), layer_name("niveau_é")
    ('fine', 'fine_level_076c42b7', 'niveau_e_54b8eec3')
    """
    if _SAFE_NAME.fullmatch(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return f"{_UNSAFE_CHARACTER.sub('_', ascii_name)}_{_digest(name)}"


def file_name_part(name: str, max_length: int = 64) -> str:
    """`layer_name(name)`, cut to at most `max_length` characters, for use in a file name.

    A longer name keeps its first characters and ends with `_` and 8 hex digits of the full
    name's SHA-1, so file names stay far below the file system's limit (255 bytes) and two long
    names sharing their start still differ.

    Args:
        name: the level (or head) name, any string.
        max_length: the most characters returned, at least 16. Defaults to 64.

    Returns:
        A non-empty string of ASCII letters, digits, `_`, `.` and `-`.

    Example:

    >>> file_name_part("fine"), len(file_name_part("x" * 250))
    ('fine', 64)
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 16:
        raise ValueError(
            f"`max_length` should be an int >= 16. Received: `max_length`={max_length!r}"
        )
    safe = layer_name(name)
    if len(safe) <= max_length:
        return safe
    return f"{safe[: max_length - _DIGEST_LENGTH - 1]}_{_digest(name)}"
