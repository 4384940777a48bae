"""`save_npz` writes beside its target and moves the file there whole."""

import errno
import os

import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import load_npz
from keras_mlcl.data import save_npz

pytestmark = pytest.mark.backend_independent


def dataset(value):
    return LabeledDataset(x=np.full((4, 2), value, "float32"), labels={"fine": [0, 1, 0, 1]})


def test_a_failed_write_keeps_the_earlier_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = save_npz(dataset(1.0), tmp_path / "data")
    assert path == str(tmp_path / "data.npz")
    before = open(path, "rb").read()
    real_savez = np.savez_compressed

    def full_disk(file, **arrays):
        real_savez(file, **arrays)  # most of the file is written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    with pytest.raises(OSError) as error:
        save_npz(dataset(2.0), path)
    assert open(path, "rb").read() == before
    assert error.value.filename == path
    assert os.listdir(tmp_path) == ["data.npz"]
    monkeypatch.undo()
    save_npz(dataset(3.0), path)  # a complete write replaces the file
    np.testing.assert_array_equal(load_npz(path).x, np.full((4, 2), 3.0, "float32"))
    assert os.listdir(tmp_path) == ["data.npz"]
