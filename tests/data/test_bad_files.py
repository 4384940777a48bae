"""Bad data files end in one `ValueError` naming the file (and the array, member or level).

Each case is refused by the loader, before any array reaches a model.
"""

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import load_clinc150
from keras_mlcl.data import load_dataset
from keras_mlcl.data import load_mulan
from keras_mlcl.data import load_npz
from keras_mlcl.utils.validation import check_readable

pytestmark = pytest.mark.backend_independent

FLOAT32_MAX = float(np.finfo("float32").max)


def _labels(n):
    return np.arange(n) % 2


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _declared_header(shape):
    """A `.npy` header declaring a float64 array of `shape`, followed by 64 zero bytes."""
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + b"\0" * 64


BAD_NPZ = {
    "zero_features": (
        lambda path: np.savez(path, x=np.zeros((10, 0)), y=_labels(10)),
        r"`x` should have at least one feature per sample. Received: `x.shape`=\(10, 0\)",
    ),
    "zero_rows": (
        lambda path: np.savez(path, x=np.zeros((0, 3)), y=np.zeros(0, int)),
        r"`x` should hold at least one row \(sample\). Received: `x.shape`=\(0, 3\)",
    ),
    "beyond_float32": (
        lambda path: np.savez(
            path,
            x=np.ones((6, 2)),
            y=_labels(6),
            x_test=np.array([[1.0, 2.0], [1.0, -1e300], [3e38, 1e39]]),
            y_test=_labels(3),
        ),
        r"`x_test` should hold values within float32's range .* Row 1 \(and 1 more\) has 1e\+300",
    ),
    "short_class_names": (
        lambda path: np.savez(
            path, x=np.ones((6, 2)), y_fine=[0, 1, 4, 2, 0, 1], class_names_fine=["a", "b"]
        ),
        r"`class_names\['fine'\]` should name every class id of level 'fine' \(0 to 4\). "
        r"Received: 2 names for largest class id 4",
    ),
    "short_class_names_in_test": (
        lambda path: np.savez(
            path,
            x=np.ones((4, 2)),
            y_fine=[0, 1, 0, 1],
            x_test=np.ones((2, 2)),
            y_test_fine=[0, 2],
            class_names_fine=["a", "b"],
        ),
        r"\(0 to 2\). Received: 2 names for largest class id 2",
    ),
    "multi_hot_names": (
        lambda path: np.savez(
            path,
            x=np.ones((4, 2)),
            y_tags=np.eye(3, dtype=int)[[0, 1, 2, 0]],
            class_names_tags=["a", "b"],
        ),
        r"`class_names\['tags'\]` should name each of the 3 multi-hot columns of level 'tags'. "
        r"Received: 2 names",
    ),
    "unlabelled_level": (
        lambda path: np.savez(path, x=np.ones((4, 2)), y_coarse=[0, 0, 1, 1], y_fine=[-1] * 4),
        r"`labels\['fine'\]` should label at least one row; every class id is -1",
    ),
    "corrupt_member": (
        lambda path: _write_zip(
            path,
            {
                "x.npy": _npy_bytes(np.zeros((4, 2)))[:10] + b"{'descr': '<f8', (((" + b" " * 60,
                "y.npy": _npy_bytes(_labels(4)),
            },
        ),
        r"has a corrupt member 'x.npy': its .npy header cannot be read",
    ),
    "declares_291_tib": (
        lambda path: _write_zip(
            path,
            {"x.npy": _declared_header((2**22, 2**22, 2)), "y.npy": _npy_bytes(_labels(4))},
        ),
        r"has a corrupt member 'x.npy': its header declares a float64 array of shape "
        r"\(4194304, 4194304, 2\) \(281,474,976,710,784 bytes\), but the member holds 192 bytes",
    ),
    "truncated_member": (
        lambda path: _write_zip(
            path,
            {"x.npy": _npy_bytes(np.zeros((4, 2)))[:-8], "y.npy": _npy_bytes(_labels(4))},
            zipfile.ZIP_STORED,
        ),
        r"has a corrupt member 'x.npy': .*shape \(4, 2\) \(192 bytes\), but the member holds "
        r"184 bytes",
    ),
    "not_an_array_member": (
        lambda path: _write_zip(path, {"x.npy": b"hello", "y.npy": _npy_bytes(_labels(4))}),
        r"has a corrupt member 'x.npy': its .npy header cannot be read",
    ),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_bad_npz_is_one_value_error_naming_the_file(tmp_path, case):
    write, message = BAD_NPZ[case]
    path = str(tmp_path / f"{case}.npz")
    write(path)
    with pytest.raises(ValueError, match=re.escape(repr(path)) + ".*" + message) as raised:
        load_npz(path)
    assert "\n" not in str(raised.value)


def test_declared_sizes_are_checked_before_anything_is_allocated(tmp_path, monkeypatch):
    path = str(tmp_path / "forged.npz")
    BAD_NPZ["declares_291_tib"][0](path)
    assert os.path.getsize(path) < 1024

    def no_read(*args, **kwargs):
        raise AssertionError("an array was read")

    monkeypatch.setattr(np.lib.format, "read_array", no_read)
    with pytest.raises(ValueError, match="declares"):
        load_npz(path)


def test_float_inputs_up_to_float32_max_are_kept(tmp_path):
    x = np.array([[FLOAT32_MAX, -FLOAT32_MAX], [0.0, 1.0]])
    data = LabeledDataset(x=x, labels={"label": [0, 1]})
    np.testing.assert_array_equal(data.x, x)
    assert np.isfinite(data.x.astype("float32")).all()
    # float32 inputs cannot hold a larger value; an int64 one casts to a finite float32.
    LabeledDataset(x=np.full((2, 1), np.iinfo("int64").max), labels={"label": [0, 1]})
    with pytest.raises(ValueError, match=r"`x` should hold values within .* Row 1 has 3\.5e\+38"):
        LabeledDataset(x=np.array([[0.0], [3.5e38]]), labels={"label": [0, 1]})


def test_class_names_may_name_classes_no_row_holds():
    data = LabeledDataset(
        x=np.ones((3, 2)), labels={"fine": [0, 1, 1]}, class_names={"fine": ["a", "b", "c"]}
    )
    assert data.num_classes("fine") == 3
    with pytest.raises(ValueError, match=r"\(0 to 1\). Received: 1 names for largest class id 1"):
        LabeledDataset(x=np.ones((3, 2)), labels={"fine": [0, 1, -1]}, class_names={"fine": ["a"]})


def test_a_partly_unlabelled_level_is_kept():
    data = LabeledDataset(x=np.ones((3, 2)), labels={"fine": [-1, 2, -1]})
    assert data.labels["fine"].tolist() == [-1, 2, -1]
    # A held-out split may leave a level unlabelled; only the training labels must label it.
    LabeledDataset(
        x=np.ones((2, 2)),
        labels={"fine": [0, 1]},
        x_test=np.ones((1, 2)),
        test_labels={"fine": [-1]},
    )


def _write_mulan(folder, xml, train_arff):
    os.makedirs(folder)
    arff = "@relation toy\n@attribute f numeric\n@attribute a {0,1}\n@data\n0.5,1\n1.5,0\n"
    with open(os.path.join(folder, "toy.xml"), "w") as f:
        f.write(xml)
    with open(os.path.join(folder, "toy-train.arff"), "wb") as f:
        f.write(train_arff if train_arff is not None else arff.encode())
    with open(os.path.join(folder, "toy-test.arff"), "w") as f:
        f.write(arff)


GOOD_XML = '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="a"/></labels>'


@pytest.mark.parametrize(
    "xml, train_arff, file_name, message",
    [
        ('<labels><label name="a"></labels', None, "toy.xml", "is not well-formed XML: "),
        (GOOD_XML, bytes(range(256)), "toy-train.arff", r"should be an ARFF text file \(UTF-8\)"),
    ],
)
def test_malformed_mulan_files_are_named(tmp_path, xml, train_arff, file_name, message):
    folder = str(tmp_path / "toy")
    _write_mulan(folder, xml, train_arff)
    path = os.path.join(folder, file_name)
    with pytest.raises(ValueError, match=re.escape(repr(path)) + ".*" + message):
        load_mulan("toy", folder)
    _write_mulan(str(tmp_path / "good"), GOOD_XML, None)
    assert load_mulan("toy", tmp_path / "good").labels["labels"].tolist() == [[1], [0]]


DOMAINS = {"banking": ["balance", "transfer"]}
SPLITS = {
    "train": [["what is my balance", "balance"], ["send money", "transfer"]],
    "val": [["balance please", "balance"]],
    "test": [["move money", "transfer"]],
}


@pytest.mark.parametrize(
    "file_name, content, message",
    [
        ("data_full.json", {"val": [], "test": []}, r"should hold the splits \['train', 'val', "),
        ("data_full.json", b"\x89PNG\r\n\x1a\n\x00", "should be JSON. Received bytes that are not"),
        ("data_full.json", b"train: []", "should be JSON. Received text that is not JSON"),
        ("data_full.json", [1, 2], "should be a JSON object .* Received: a JSON array"),
        (
            "data_full.json",
            {**SPLITS, "val": [["only a text"]]},
            r"split 'val' as a list of \[text, intent\] pairs of strings. Received: \['only",
        ),
        ("domains.json", {"banking": "balance"}, "mapping each domain to a list of intent names"),
    ],
)
def test_malformed_clinc150_files_are_named(tmp_path, file_name, content, message):
    files = {"data_full.json": SPLITS, "domains.json": DOMAINS, file_name: content}
    for name, value in files.items():
        with open(tmp_path / name, "wb") as f:
            f.write(value if isinstance(value, bytes) else json.dumps(value).encode())
    path = os.path.join(tmp_path, file_name)
    with pytest.raises(ValueError, match=re.escape(repr(path)) + ".*" + message):
        load_clinc150(tmp_path)


def test_a_sound_toy_clinc150_loads(tmp_path):
    for name, value in {"data_full.json": SPLITS, "domains.json": DOMAINS}.items():
        with open(tmp_path / name, "w") as f:
            json.dump(value, f)
    data = load_clinc150(tmp_path)
    assert data.labels["intent"].tolist() == [0, 1] and data.test_labels["intent"].tolist() == [1]


def _deny(monkeypatch, denied):
    """Makes `os.access` deny every access to `denied` (as `chmod 000` does, but for root too)."""
    real_access = os.access

    def access(path, mode, **kwargs):
        if os.path.abspath(path) == os.path.abspath(denied):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_an_unreadable_data_folder_is_not_reported_as_missing(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    folder = data_dir / "clinc150"
    folder.mkdir(parents=True)
    for name, value in {"data_full.json": SPLITS, "domains.json": DOMAINS}.items():
        with open(folder / name, "w") as f:
            json.dump(value, f)
    mulan = data_dir / "mulan" / "scene"
    mulan.mkdir(parents=True)
    np.savez(tmp_path / "data" / "set.npz", x=np.ones((2, 2)), y=[0, 1])
    _deny(monkeypatch, folder)
    with pytest.raises(PermissionError, match=f"{re.escape(repr(str(folder)))} is not readable"):
        load_clinc150(folder)
    with pytest.raises(PermissionError, match="is not readable: permission denied"):
        load_clinc150(folder / "data_full.json")
    _deny(monkeypatch, data_dir)
    for name in ("clinc150", "mulan_scene"):
        with pytest.raises(PermissionError, match=f"permission denied on the folder.*{data_dir}"):
            load_dataset(name, data_dir=data_dir)
    with pytest.raises(PermissionError, match="The `.npz` dataset file .* is not readable"):
        load_npz(data_dir / "set.npz")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its permissions")
def test_a_chmod_000_folder_is_not_readable(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    try:
        with pytest.raises(PermissionError, match="is not readable: permission denied"):
            check_readable("The folder", folder)
    finally:
        folder.chmod(0o700)


def test_missing_paths_pass_the_readable_check(tmp_path):
    check_readable("The folder", tmp_path / "not" / "there")
    check_readable("The folder", tmp_path)
