"""Fashion-MNIST with a two-level hierarchy: 5 garment groups over the 10 classes.

The default is a compact real subset bundled with the package (see
`scripts/make_fashion_mnist_subset.py`); `full=True` reads all 70,000 images from local IDX
files. Fashion-MNIST is (c) 2017 Zalando SE, MIT licence (`bundled/LICENSE-fashion-mnist.txt`).
"""

import gzip
import os

import numpy as np

from keras_mlcl.data.data_dirs import DATA_DIR_VARIABLE
from keras_mlcl.data.data_dirs import data_root
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.npz import load_npz
from keras_mlcl.data.registry import register_dataset
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.validation import check_readable

FINE_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
COARSE_CLASS_NAMES = ("upper body", "lower body", "full body", "footwear", "bags")
# COARSE_OF_FINE[fine class id] = coarse class id.
COARSE_OF_FINE = (0, 1, 0, 2, 0, 3, 0, 3, 4, 3)

BUNDLED_PATH = os.path.join(os.path.dirname(__file__), "bundled", "fashion_mnist_subset.npz")
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
_FILES = {
    "x": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("uint8"),
    0x09: np.dtype("int8"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an IDX file (the MNIST array format), gzipped or not, into a NumPy array.

    Args:
        path: path to the file; a name ending in `.gz` is decompressed.

    Returns:
        The array, with the shape and element type stored in the file's header.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as file:
        content = file.read()
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise ValueError(f"{os.fspath(path)!r} is not an IDX file (bad magic number).")
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    ndim = content[3]
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(content, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(
            f"{os.fspath(path)!r} is truncated: header shape {shape} needs "
            f"{int(np.prod(shape))} values, found {data.size}."
        )
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx_file(folder: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def default_full_dirs() -> list[str]:
    """Folders searched for the full Fashion-MNIST IDX files, in order.

    `$KERAS_MLCL_DATA/fashion-mnist` when that variable is set, then Keras' download cache
    (`$KERAS_HOME/datasets/fashion-mnist`, `KERAS_HOME` defaulting to `~/.keras`), then
    Debian's `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist`).
    """
    keras_home = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    root = data_root()
    own = [] if root is None else [os.path.join(root, "fashion-mnist")]
    return own + [os.path.join(keras_home, "datasets", "fashion-mnist"), DEBIAN_DIR]


def read_fashion_mnist_idx(path: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """Reads the full Fashion-MNIST from a folder of IDX files.

    Args:
        path: folder holding `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
            `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`. When `None`, the
            first folder of `default_full_dirs()` that holds all four.

    Returns:
        A dict with `x` (60000, 28, 28) uint8, `y` (60000,), `x_test` (10000, 28, 28) and
        `y_test` (10000,), the labels being fine class ids 0-9.
    """
    folders = [os.fspath(path)] if path is not None else default_full_dirs()
    for folder in folders:
        check_readable("The Fashion-MNIST folder", folder)
        found = {key: _find_idx_file(folder, stem) for key, stem in _FILES.items()}
        files = {key: file for key, file in found.items() if file is not None}
        if len(files) == len(_FILES):
            return {key: read_idx(file) for key, file in files.items()}
    raise FileNotFoundError(
        "The full Fashion-MNIST was not found: looked for the IDX files "
        f"({', '.join(stem + '[.gz]' for stem in _FILES.values())}) in {folders}. "
        "Fetch it once with `keras.datasets.fashion_mnist.load_data()` (downloads to "
        "~/.keras/datasets/fashion-mnist) or `apt-get install dataset-fashion-mnist`, or put "
        "them in DIR/fashion-mnist and pass --data-dir DIR (`load_dataset`'s `data_dir`) or "
        f"set {DATA_DIR_VARIABLE}=DIR. The bundled subset needs no download: "
        "`load_fashion_mnist()`."
    )


def _with_hierarchy(
    x: np.ndarray, fine: ArrayLike, x_test: np.ndarray, fine_test: ArrayLike, name: str
) -> LabeledDataset:
    coarse_of_fine = np.asarray(COARSE_OF_FINE, dtype="int32")
    fine = np.asarray(fine, dtype="int32")
    fine_test = np.asarray(fine_test, dtype="int32")
    return LabeledDataset(
        x=x,
        labels={"coarse": coarse_of_fine[fine], "fine": fine},
        x_test=x_test,
        test_labels={"coarse": coarse_of_fine[fine_test], "fine": fine_test},
        name=name,
        class_names={"coarse": list(COARSE_CLASS_NAMES), "fine": list(FINE_CLASS_NAMES)},
    )


def load_fashion_mnist(
    full: bool = False, path: str | os.PathLike[str] | None = None
) -> LabeledDataset:
    """Loads Fashion-MNIST with levels `coarse` (5 garment groups) and `fine` (10 classes).

    Coarse groups (`COARSE_OF_FINE`): upper body {T-shirt/top, Pullover, Coat, Shirt},
    lower body {Trouser}, full body {Dress}, footwear {Sandal, Sneaker, Ankle boot},
    bags {Bag}.

    Args:
        full: when `False` (default), the bundled subset: 6,000 training and 2,000 test images
            (600 and 200 per class, drawn stratified from the official splits). When `True`, the
            full 60,000 / 10,000 images read from local IDX files (no download).
        path: with `full=True`, the folder of IDX files; `None` searches Keras' cache
            (`default_full_dirs()`: `$KERAS_MLCL_DATA/fashion-mnist`, Keras' cache, Debian's).

    Returns:
        A `LabeledDataset`: `x` uint8 `(N, 28, 28)` images, labels `coarse` and `fine`, a test
        split and class names.

    Example:

    >>> data = load_fashion_mnist()
    >>> data.x.shape, data.levels
    ((6000, 28, 28), ['coarse', 'fine'])
    """
    if not full:
        if path is not None:
            raise ValueError(
                "`path` is only used with `full=True` (the subset is bundled). "
                f"Received: `path`={path!r}"
            )
        subset = load_npz(BUNDLED_PATH)
        subset.name = "fashion_mnist"
        return subset
    arrays = read_fashion_mnist_idx(path)
    return _with_hierarchy(
        arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"], name="fashion_mnist_full"
    )


register_dataset("fashion_mnist", lambda data_dir: load_fashion_mnist())
register_dataset(
    "fashion_mnist_full",
    lambda data_dir: load_fashion_mnist(
        full=True, path=None if data_dir is None else os.path.join(data_dir, "fashion-mnist")
    ),
)
