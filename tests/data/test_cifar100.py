import os
import pickle

import numpy as np
import pytest

from keras_mlcl.data import load_cifar100
from keras_mlcl.data import load_dataset

pytestmark = pytest.mark.backend_independent


def write_cifar_pickles(folder, n_train=6, n_test=4, meta=True):
    """A tiny CIFAR-100 python layout; pixel values encode (sample, channel, row, column)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype="uint8")
        fine = rng.integers(0, 100, size=n).tolist()
        coarse = [f // 5 for f in fine]
        content = {
            b"filenames": [f"{i}.png".encode() for i in range(n)],
            b"batch_label": split.encode(),
            b"fine_labels": fine,
            b"coarse_labels": coarse,
            b"data": data,
        }
        with open(os.path.join(folder, split), "wb") as file:
            pickle.dump(content, file)
        splits[split] = (data, fine, coarse)
    if meta:
        names = {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        }
        with open(os.path.join(folder, "meta"), "wb") as file:
            pickle.dump(names, file, protocol=2)
    return splits


def test_pickle_layout(tmp_path):
    splits = write_cifar_pickles(tmp_path)
    data = load_cifar100(source="pickle", data_dir=tmp_path)
    assert data.name == "cifar100" and data.levels == ["coarse", "fine"]
    assert data.x.shape == (6, 32, 32, 3) and data.x.dtype == np.uint8
    assert data.x_test.shape == (4, 32, 32, 3)
    raw, fine, coarse = splits["train"]
    # Channels last: x[i, row, col, ch] = data[i, ch * 1024 + row * 32 + col].
    for i, row, col, ch in [(0, 0, 0, 0), (1, 5, 7, 2), (5, 31, 31, 1), (3, 10, 0, 2)]:
        assert data.x[i, row, col, ch] == raw[i, ch * 1024 + row * 32 + col]
    np.testing.assert_array_equal(data.labels["fine"], fine)
    np.testing.assert_array_equal(data.labels["coarse"], coarse)
    np.testing.assert_array_equal(data.test_labels["fine"], splits["test"][1])
    assert data.class_names["fine"][:2] == ["fine0", "fine1"]
    assert len(data.class_names["coarse"]) == 20
    assert data.num_classes("fine") == 100 and data.num_classes("coarse") == 20


def test_pickle_without_meta_and_missing_files(tmp_path):
    write_cifar_pickles(tmp_path, meta=False)
    data = load_cifar100(source="pickle", data_dir=str(tmp_path))
    assert data.class_names is None
    with pytest.raises(FileNotFoundError, match="CIFAR-100 pickles"):
        load_cifar100(source="pickle", data_dir=tmp_path / "nowhere")


def test_pickle_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    write_cifar_pickles(tmp_path, meta=False)
    with open(tmp_path / "train", "wb") as file:
        pickle.dump({b"data": Evil()}, file)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar100(source="pickle", data_dir=tmp_path)


def test_pickle_missing_keys(tmp_path):
    write_cifar_pickles(tmp_path, meta=False)
    with open(tmp_path / "train", "wb") as file:
        pickle.dump({b"data": np.zeros((1, 3072), "uint8"), b"fine_labels": [0]}, file)
    with pytest.raises(ValueError, match="Missing: \\['coarse_labels'\\]"):
        load_cifar100(source="pickle", data_dir=tmp_path)


def test_bad_source():
    with pytest.raises(ValueError, match="`source` should be one of 'tfds', 'pickle'"):
        load_cifar100(source="web")


def test_tfds_with_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with tfds.testing.mock_data(num_examples=24, data_dir=str(tmp_path)):
        data = load_cifar100(data_dir=str(tmp_path))
        # Independent read of the same (deterministic) mock splits.
        expected = {
            split: next(iter(tfds.as_numpy(tfds.load("cifar100", split=split).batch(100))))
            for split in ("train", "test")
        }
        via_registry = load_dataset("cifar100", data_dir=str(tmp_path))
    assert data.levels == ["coarse", "fine"]
    assert data.x.shape == (24, 32, 32, 3) and data.x.dtype == np.uint8
    assert data.x_test.shape == (24, 32, 32, 3)
    np.testing.assert_array_equal(data.x, expected["train"]["image"])
    np.testing.assert_array_equal(data.labels["fine"], expected["train"]["label"])
    np.testing.assert_array_equal(data.labels["coarse"], expected["train"]["coarse_label"])
    np.testing.assert_array_equal(data.test_labels["fine"], expected["test"]["label"])
    np.testing.assert_array_equal(data.test_labels["coarse"], expected["test"]["coarse_label"])
    # Mock labels are drawn independently per level, so only ranges can be checked.
    for labels in (data.labels, data.test_labels):
        assert 0 <= labels["fine"].min() and labels["fine"].max() < 100
        assert 0 <= labels["coarse"].min() and labels["coarse"].max() < 20
    assert len(data.class_names["fine"]) == 100 and len(data.class_names["coarse"]) == 20
    np.testing.assert_array_equal(via_registry.x, data.x)


def test_tfds_not_prepared_is_a_clear_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar100(data_dir=str(tmp_path))
