"""The dataset registry: `load_dataset` by name, filled by the loaders themselves.

Each loader module calls `register_dataset` for the names it serves, so this module imports no
loader; importing `keras_mlcl.data` imports all of them.
"""

import os
from collections.abc import Callable
from typing import Any

from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.npz import load_npz

_LOADERS: dict[str, Callable] = {}


def register_dataset(name: str, loader: Callable[..., Any]) -> Callable[..., Any]:
    """Makes `load_dataset(name, data_dir)` call `loader(data_dir)`.

    Args:
        name: the dataset's name, a non-empty string not ending in `.npz`.
        loader: a function of one argument, the data folder (`None` when not given), that
            returns a `LabeledDataset`.

    Returns:
        `loader`, unchanged.

    Example:

    >>> def load_my_set(data_dir):
    ...     return load_npz(os.path.join(data_dir or ".", "my_set.npz"))
    >>> loader = register_dataset("my_set", load_my_set)
    >>> data = LabeledDataset(x=np.zeros((4, 2)), labels={"label": [0, 1, 0, 1]})
    >>> path = keras_mlcl.data.save_npz(data, "my_set.npz")
    >>> load_dataset("my_set").labels["label"].tolist()
    [0, 1, 0, 1]
    """
    if not isinstance(name, str) or not name or name.endswith(".npz"):
        raise ValueError(
            f"`name` should be a non-empty string not ending in '.npz'. Received: `name`={name!r}"
        )
    if name in _LOADERS:
        raise ValueError(f"A dataset named {name!r} is already registered.")
    if not callable(loader):
        raise ValueError(f"`loader` should be callable. Received: `loader`={loader!r}")
    _LOADERS[name] = loader
    return loader


def dataset_names() -> list[str]:
    """The names `load_dataset` knows (besides paths to `.npz` files), sorted."""
    return sorted(_LOADERS)


def load_dataset(
    name_or_path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None
) -> LabeledDataset:
    """Loads a dataset by name, or from an `.npz` file.

    Names registered by keras-mlcl's loaders:
    - `"fashion_mnist"`: the bundled real Fashion-MNIST subset (levels coarse (5), fine (10)).
    - `"fashion_mnist_full"`: all 70,000 Fashion-MNIST images (`<data folder>/fashion-mnist`,
      else Keras' cache or Debian's package).
    - `"cifar100"`: CIFAR-100 through tensorflow-datasets (levels coarse (20), fine (100)).
    - `"clinc150"`: CLINC150 intents (levels domain (10), intent (150)), `<data folder>/clinc150`.
    - `"mulan_scene"`, `"mulan_emotions"`, `"mulan_medical"`: MULAN multi-label sets (one
      multi-hot level, `labels`), `<data folder>/mulan/<name>`.

    Args:
        name_or_path: one of `dataset_names()`, or a path ending in `.npz`.
        data_dir: the data folder holding the raw files (the tensorflow-datasets folder for
            `"cifar100"`). When `None`, `$KERAS_MLCL_DATA` (see
            `keras_mlcl.data.data_dirs.dataset_folder`).

    Returns:
        A `LabeledDataset`.

    Example:

    >>> data = load_dataset("fashion_mnist")
    >>> data.levels
    ['coarse', 'fine']
    """
    name = os.fspath(name_or_path)
    if name.endswith(".npz"):
        return load_npz(name)
    if name not in _LOADERS:
        known = ", ".join(repr(known_name) for known_name in dataset_names())
        raise ValueError(
            f"`name_or_path` should be one of {known}, or a path ending in '.npz'. "
            f"Received: `name_or_path`={name_or_path!r}"
        )
    return _LOADERS[name](data_dir)
