import gzip
import importlib.util
import os

import numpy as np
import pytest

from keras_mlcl.data import COARSE_OF_FINE
from keras_mlcl.data import load_dataset
from keras_mlcl.data import load_fashion_mnist
from keras_mlcl.data.fashion_mnist import BUNDLED_PATH
from keras_mlcl.data.fashion_mnist import COARSE_CLASS_NAMES
from keras_mlcl.data.fashion_mnist import DEBIAN_DIR
from keras_mlcl.data.fashion_mnist import FINE_CLASS_NAMES
from keras_mlcl.data.fashion_mnist import read_idx

pytestmark = pytest.mark.backend_independent

REPO_ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_bundled_subset_shapes_and_labels():
    data = load_fashion_mnist()
    assert data.name == "fashion_mnist"
    assert data.levels == ["coarse", "fine"]
    assert data.x.shape == (6000, 28, 28) and data.x.dtype == np.uint8
    assert data.x_test.shape == (2000, 28, 28) and data.x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(data.labels["fine"]), [600] * 10)
    np.testing.assert_array_equal(np.bincount(data.test_labels["fine"]), [200] * 10)
    # Coarse sizes follow from the grouping: 4, 1, 1, 3 and 1 fine classes.
    np.testing.assert_array_equal(np.bincount(data.labels["coarse"]), [2400, 600, 600, 1800, 600])
    for labels in (data.labels, data.test_labels):
        assert labels["fine"].min() == 0 and labels["fine"].max() == 9
        assert labels["coarse"].min() == 0 and labels["coarse"].max() == 4
        np.testing.assert_array_equal(labels["coarse"], np.asarray(COARSE_OF_FINE)[labels["fine"]])
    assert data.class_names == {"coarse": list(COARSE_CLASS_NAMES), "fine": list(FINE_CLASS_NAMES)}
    assert data.num_classes("coarse") == 5 and data.num_classes("fine") == 10


def test_bundled_subset_is_real_images():
    data = load_fashion_mnist()
    # Real photographs: varied, not constant, and class means differ (e.g. trousers vs bags).
    assert 40 < data.x.mean() < 110
    assert len(np.unique(data.x.reshape(len(data.x), -1), axis=0)) == len(data.x)
    means = [data.x[data.labels["fine"] == c].mean() for c in range(10)]
    assert max(means) - min(means) > 20


def test_coarse_of_fine_grouping():
    groups = {}
    for fine, coarse in enumerate(COARSE_OF_FINE):
        groups.setdefault(COARSE_CLASS_NAMES[coarse], []).append(FINE_CLASS_NAMES[fine])
    assert groups == {
        "upper body": ["T-shirt/top", "Pullover", "Coat", "Shirt"],
        "lower body": ["Trouser"],
        "full body": ["Dress"],
        "footwear": ["Sandal", "Sneaker", "Ankle boot"],
        "bags": ["Bag"],
    }


def test_bundled_file_size_and_licence():
    assert os.path.getsize(BUNDLED_PATH) <= 5 * 1024 * 1024
    licence = os.path.join(os.path.dirname(BUNDLED_PATH), "LICENSE-fashion-mnist.txt")
    with open(licence, encoding="utf-8") as file:
        text = file.read()
    assert "Zalando SE" in text and "Permission is hereby granted" in text


def test_load_dataset_default_is_the_bundled_subset():
    data = load_dataset("fashion_mnist")
    assert data.x.shape == (6000, 28, 28) and data.levels == ["coarse", "fine"]
    bundled = load_fashion_mnist()
    np.testing.assert_array_equal(data.x, bundled.x)
    np.testing.assert_array_equal(data.labels["fine"], bundled.labels["fine"])


def write_idx(path, array):
    codes = {np.dtype("uint8"): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def test_read_idx_plain_and_gzipped(tmp_path):
    array = np.arange(2 * 3 * 4, dtype="uint8").reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte", array)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_full_from_a_folder_of_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(12, 28, 28), dtype="uint8")
    y = np.arange(12, dtype="uint8") % 10
    x_test, y_test = x[:5], y[:5][::-1].copy()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x_test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_test)
    data = load_fashion_mnist(full=True, path=tmp_path)
    assert data.name == "fashion_mnist_full"
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.labels["fine"], y)
    np.testing.assert_array_equal(data.labels["coarse"], [COARSE_OF_FINE[v] for v in y])
    np.testing.assert_array_equal(data.test_labels["coarse"], [COARSE_OF_FINE[v] for v in y_test])


def test_full_missing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(full=True, path=tmp_path)
    with pytest.raises(ValueError, match="`path` is only used with `full=True`"):
        load_fashion_mnist(path=tmp_path)


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(DEBIAN_DIR, "train-images-idx3-ubyte.gz")),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_script_reproduces_the_bundled_subset():
    spec = importlib.util.spec_from_file_location(
        "make_fashion_mnist_subset",
        os.path.join(REPO_ROOT, "scripts", "make_fashion_mnist_subset.py"),
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    arrays = script.make_subset(DEBIAN_DIR, train_per_class=600, test_per_class=200)
    with np.load(BUNDLED_PATH) as bundled:
        assert sorted(bundled.files) == sorted(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(bundled[key], value)
    full = load_fashion_mnist(full=True, path=DEBIAN_DIR)
    assert full.x.shape == (60000, 28, 28) and full.x_test.shape == (10000, 28, 28)
