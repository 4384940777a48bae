"""`keras-mlcl train` refuses bad data files in one line, exit code 2, before training.

The loaders' checks are tested in tests/data/test_bad_files.py; this module checks that the
command reports them as one line and writes nothing. Every case is refused before a model is
built or fitted, so the module runs once per `make test` (see tests/conftest.py).
"""

import io
import os
import zipfile

import numpy as np
import pytest

from tests.cli.commands import command
from tests.cli.commands import one_error_line
from tests.testing import file_tree

pytestmark = pytest.mark.backend_independent


def _forged_header_npz(path):
    """A 1 KB `.npz` whose `x.npy` header declares a 256 TiB float64 array."""
    header = io.BytesIO()
    shape = (2**22, 2**22, 2)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    labels = io.BytesIO()
    np.save(labels, np.arange(8) % 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
        archive.writestr("y.npy", labels.getvalue())


CASES = {
    "zero_features": (
        lambda path: np.savez(path, x=np.zeros((40, 0)), y=np.arange(40) % 2),
        "`x` should have at least one feature per sample",
    ),
    "declares_256_tib": (_forged_header_npz, "has a corrupt member 'x.npy': its header declares"),
    "images_3x3": (
        lambda path: np.savez(path, x=np.zeros((40, 3, 3)), y=np.arange(40) % 2),
        "`x` holds 3x3 images: `input_shape` should be (height, width, channels) with height "
        "and width of at least 8",
    ),
    "short_class_names": (
        lambda path: np.savez(
            path, x=np.ones((40, 4)), y_fine=np.arange(40) % 4, class_names_fine=["a", "b"]
        ),
        "`class_names['fine']` should name every class id of level 'fine' (0 to 3)",
    ),
    "unlabelled_level": (
        lambda path: np.savez(
            path, x=np.ones((40, 4)), y_coarse=np.arange(40) % 2, y_fine=-np.ones(40, int)
        ),
        "`labels['fine']` should label at least one row",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capfd, case):
    write, expected = CASES[case]
    write(str(tmp_path / "data.npz"))
    monkeypatch.chdir(tmp_path)
    before = file_tree(tmp_path)
    code, out, err = command(
        capfd, "train", "--data", "data.npz", "--out", "run", "--epochs", "1", "--quiet"
    )
    assert code == 2 and out == ""
    message = one_error_line(err)
    assert expected in message
    assert "'data.npz'" in message
    assert file_tree(tmp_path) == before and not os.path.exists("run")
