"""Where the raw files of the datasets that are not bundled live.

The data folder is the `data_dir` argument (the command's `--data-dir`) when given, else the
`KERAS_MLCL_DATA` environment variable. Each dataset reads its own subfolder of it, e.g.
`clinc150/` or `mulan/scene/`. Nothing else is searched: a missing folder is a clear error.
"""

import os

DATA_DIR_VARIABLE = "KERAS_MLCL_DATA"


def data_root(data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The data folder: `data_dir` when given, else `$KERAS_MLCL_DATA`, else `None`.

    Args:
        data_dir: a folder, or `None`.

    Returns:
        The folder as a string (`~` expanded), or `None` when neither is set.
    """
    root = data_dir if data_dir is not None else os.environ.get(DATA_DIR_VARIABLE) or None
    return None if root is None else os.path.expanduser(os.fspath(root))


def dataset_folder(
    dataset: str, subfolder: str, data_dir: str | os.PathLike[str] | None = None
) -> str:
    """The folder holding one dataset's raw files: `subfolder` of the data folder.

    Args:
        dataset: the dataset's name, for the error message (e.g. `"clinc150"`).
        subfolder: the dataset's folder inside the data folder (e.g. `"mulan/scene"`).
        data_dir: the data folder; `None` reads `$KERAS_MLCL_DATA`.

    Returns:
        The path `<data folder>/<subfolder>` (not checked to exist).

    Raises:
        FileNotFoundError: when neither `data_dir` nor `KERAS_MLCL_DATA` is set.

    Example:

    >>> dataset_folder("clinc150", "clinc150", data_dir="/data")
    '/data/clinc150'
    """
    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError(
            f"dataset {dataset!r} needs its files: pass --data-dir DIR (`data_dir` in Python) "
            f"or set {DATA_DIR_VARIABLE}=DIR (looked for DIR/{subfolder})"
        )
    return os.path.join(root, subfolder)
