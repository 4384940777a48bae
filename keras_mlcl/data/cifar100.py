"""CIFAR-100 with its two levels: 20 superclasses (coarse) over 100 classes (fine)."""

import os
import pickle
from typing import Any

import numpy as np

from keras_mlcl.data.data_dirs import data_root
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.registry import register_dataset
from keras_mlcl.utils.validation import check_readable

# A split: images `(N, 32, 32, 3)` and `{"coarse": ids, "fine": ids}`.
_Split = tuple[np.ndarray, dict[str, np.ndarray]]
# Both splits and the class names: `(x, labels, x_test, test_labels, class_names)`.
_Splits = tuple[
    np.ndarray,
    dict[str, np.ndarray],
    np.ndarray,
    dict[str, np.ndarray],
    dict[str, list[str]] | None,
]

_SOURCES = ("tfds", "pickle")
# The only globals a CIFAR-100 pickle needs: NumPy's array reconstruction, and `bytes` as
# Python 3 writes it at pickle protocol 2.
_ALLOWED_PICKLE_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and NumPy arrays only: a crafted file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"A CIFAR-100 pickle should hold only lists and NumPy arrays; refusing {module}.{name}"
        )


def _read_pickle(path: str) -> dict[str, Any]:
    with open(path, "rb") as file:
        content = _ArraysOnlyUnpickler(file, encoding="bytes").load()
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in content.items()}


def default_pickle_dirs() -> list[str]:
    """Folders searched for the CIFAR-100 python pickles, in order.

    `$KERAS_MLCL_DATA/cifar-100-python` when that variable is set, then Keras' download cache:
    `$KERAS_HOME/datasets/cifar-100-python-target/cifar-100-python` (Keras 3) and
    `$KERAS_HOME/datasets/cifar-100-python`, `KERAS_HOME` defaulting to `~/.keras`.
    """
    keras_home = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    datasets = os.path.join(keras_home, "datasets")
    root = data_root()
    own = [] if root is None else [os.path.join(root, "cifar-100-python")]
    return own + [
        os.path.join(datasets, "cifar-100-python-target", "cifar-100-python"),
        os.path.join(datasets, "cifar-100-python"),
    ]


def _load_pickle_split(folder: str, split: str) -> _Split:
    content = _read_pickle(os.path.join(folder, split))
    missing = [key for key in ("data", "fine_labels", "coarse_labels") if key not in content]
    if missing:
        raise ValueError(
            f"The CIFAR-100 pickle {os.path.join(folder, split)!r} should hold 'data', "
            f"'fine_labels' and 'coarse_labels'. Missing: {missing}"
        )
    data = np.asarray(content["data"], dtype="uint8")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"The CIFAR-100 pickle {os.path.join(folder, split)!r} should hold 'data' of shape "
            f"(N, 3072). Received shape {data.shape}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = {
        "coarse": np.asarray(content["coarse_labels"], dtype="int32"),
        "fine": np.asarray(content["fine_labels"], dtype="int32"),
    }
    return np.ascontiguousarray(images), labels


def _load_from_pickle(data_dir: str | os.PathLike[str] | None) -> _Splits:
    folders = [os.fspath(data_dir)] if data_dir is not None else default_pickle_dirs()
    for folder in folders:
        check_readable("The CIFAR-100 folder", folder)
        if os.path.isfile(os.path.join(folder, "train")) and os.path.isfile(
            os.path.join(folder, "test")
        ):
            break
    else:
        raise FileNotFoundError(
            f"CIFAR-100 pickles ('train' and 'test') were not found in {folders}. Fetch them "
            "once with `keras.datasets.cifar100.load_data()` or pass `data_dir` (the extracted "
            "'cifar-100-python' folder)."
        )
    x, labels = _load_pickle_split(folder, "train")
    x_test, test_labels = _load_pickle_split(folder, "test")
    class_names = None
    meta_path = os.path.join(folder, "meta")
    if os.path.isfile(meta_path):
        meta = _read_pickle(meta_path)
        class_names = {
            level: [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]
            for level, key in (("coarse", "coarse_label_names"), ("fine", "fine_label_names"))
            if key in meta
        } or None
    return x, labels, x_test, test_labels, class_names


def _tfds_split_arrays(dataset: Any) -> _Split:
    import tensorflow_datasets as tfds

    batches = list(tfds.as_numpy(dataset.batch(10000)))
    images = np.concatenate([batch["image"] for batch in batches]).astype("uint8")
    labels = {
        "coarse": np.concatenate([batch["coarse_label"] for batch in batches]).astype("int32"),
        "fine": np.concatenate([batch["label"] for batch in batches]).astype("int32"),
    }
    return images, labels


def _load_from_tfds(data_dir: str | os.PathLike[str] | None, download: bool) -> _Splits:
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "`load_cifar100(source='tfds')` needs tensorflow-datasets: "
            "`pip install keras-mlcl[data]`, or use `source='pickle'`."
        ) from error
    try:
        (train, test), info = tfds.load(
            "cifar100",
            split=["train", "test"],
            data_dir=data_dir,
            download=download,
            with_info=True,
            shuffle_files=False,
        )
    except AssertionError as error:  # tfds' "could not find data" when download=False
        raise FileNotFoundError(
            f"CIFAR-100 is not prepared in the tensorflow-datasets folder ({error}). Pass "
            "`download=True` (needs network), or `source='pickle'` with Keras' cached files."
        ) from error
    x, labels = _tfds_split_arrays(train)
    x_test, test_labels = _tfds_split_arrays(test)
    class_names = {
        "coarse": list(info.features["coarse_label"].names),
        "fine": list(info.features["label"].names),
    }
    return x, labels, x_test, test_labels, class_names


def load_cifar100(
    source: str = "tfds", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> LabeledDataset:
    """Loads CIFAR-100 with levels `coarse` (20 superclasses) and `fine` (100 classes).

    Args:
        source: `"tfds"` (default) reads it through tensorflow-datasets (features `image`,
            `label`, `coarse_label`); `"pickle"` reads the original CIFAR-100 python layout (a
            folder with the `train` and `test` pickles holding `data`, `fine_labels` and
            `coarse_labels`, and optionally `meta` with the class names).
        data_dir: with `"tfds"`, the tensorflow-datasets data folder (`None`: tfds' default,
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`); with `"pickle"`, the folder of the
            pickles (`None`: Keras' cache, see `default_pickle_dirs()`).
        download: with `"tfds"`, whether tfds may download and prepare the data (needs
            network). Defaults to `False`: a missing dataset raises `FileNotFoundError`.

    Returns:
        A `LabeledDataset`: `x` uint8 `(50000, 32, 32, 3)` (channels last), labels `coarse` and
        `fine`, the official test split (10,000 images) and class names.

    Example (not run as a test: it needs the CIFAR-100 pickles, a 160 MB download):

    >>> data = load_cifar100(source="pickle", data_dir="~/cifar-100-python")  # doctest: +SKIP
    >>> data.num_classes("coarse"), data.num_classes("fine")  # doctest: +SKIP
    (20, 100)
    """
    if source not in _SOURCES:
        raise ValueError(
            f"`source` should be one of {', '.join(repr(s) for s in _SOURCES)}. "
            f"Received: `source`={source!r}"
        )
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
        check_readable("The CIFAR-100 folder `data_dir`", data_dir)
    if source == "tfds":
        x, labels, x_test, test_labels, class_names = _load_from_tfds(data_dir, download)
    else:
        x, labels, x_test, test_labels, class_names = _load_from_pickle(data_dir)
    return LabeledDataset(
        x=x,
        labels=labels,
        x_test=x_test,
        test_labels=test_labels,
        name="cifar100",
        class_names=class_names,
    )


register_dataset("cifar100", lambda data_dir: load_cifar100(source="tfds", data_dir=data_dir))
