"""Fuzzing the command: random and malformed `.npz` files, random `--out` targets.

Every example asserts: exit code 0 or 2; on 2 exactly one line on stderr and nothing in the
folder touched; in every case the user's files (sentinels, the input data) byte-identical.

The 40 examples are the same in every run (derandomized); in a `make test` run each runs on
one backend, picked by a checksum of its drawn values (CRC-32 mod the number of backends).
"""

import json
import os
import tempfile
import zlib

import keras
import numpy as np
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_mlcl.cli.main import main
from keras_mlcl.experiments.run_folder import MARKER
from tests.testing import file_tree
from tests.testing import runs_on_this_backend

VALID = "valid"
MALFORMED = (
    "empty",
    "random_bytes",
    "truncated",
    "nan_row",
    "inf_test_row",
    "test_width",
    "short_labels",
    "no_x",
    "object_array",
    "float_ids",
    "labels_3d",
    "string_labels",
)
OUT_KINDS = (
    "new",
    "nested_new",
    "empty_dir",
    "user_dir",
    "dot",
    "data_folder",
    "a_file",
    "finished_run",
    "run_with_user_file",
)


def write_data(path, kind, rng):
    if kind == "empty":
        open(path, "wb").close()
        return
    if kind == "random_bytes":
        with open(path, "wb") as f:
            f.write(rng.bytes(int(rng.integers(1, 300))))
        return
    n = int(rng.integers(6, 40))
    width = int(rng.integers(1, 5))
    x = rng.normal(size=(n, width)).astype(rng.choice(["float32", "float64"]))
    classes = int(rng.integers(1, 4))
    ids = rng.integers(0, classes, size=n)
    if rng.random() < 0.3:
        ids = np.where(ids == 0, 10**9, ids)  # sparse ids
    arrays = {"x": x, "y_fine": ids}
    if rng.random() < 0.5:
        arrays["y_coarse"] = ids % 2
    if rng.random() < 0.3:
        arrays["y_fine"] = np.where(rng.random(n) < 0.2, -1, ids)  # some unlabelled
    if rng.random() < 0.4:
        m = int(rng.integers(1, 6))
        arrays["x_test"] = rng.normal(size=(m, width)).astype("float32")
        for key in [k for k in arrays if k.startswith("y_")]:
            arrays[f"y_test_{key[2:]}"] = rng.integers(0, classes, size=m)
    if kind == "nan_row":
        x[int(rng.integers(n)), int(rng.integers(width))] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == "inf_test_row":
        arrays["x_test"] = rng.normal(size=(3, width)).astype("float32")
        arrays["x_test"][1, 0] = np.inf
        for key in [k for k in arrays if k.startswith("y_") and "test" not in k]:
            arrays[f"y_test_{key[2:]}"] = np.zeros(3, int)
    elif kind == "test_width":
        arrays["x_test"] = rng.normal(size=(3, width + 1)).astype("float32")
        for key in [k for k in arrays if k.startswith("y_") and "test" not in k]:
            arrays[f"y_test_{key[2:]}"] = np.zeros(3, int)
    elif kind == "short_labels":
        arrays["y_fine"] = arrays["y_fine"][:-1]
    elif kind == "no_x":
        del arrays["x"]
    elif kind == "object_array":
        arrays["y_fine"] = np.array([{"a": 1}] * n, dtype=object)
    elif kind == "float_ids":
        arrays["y_fine"] = ids + 0.5
    elif kind == "labels_3d":
        arrays["y_fine"] = np.zeros((n, 2, 2), int)
    elif kind == "string_labels":
        arrays["y_fine"] = np.array(["a"] * n)
    np.savez(path, **arrays, allow_pickle=kind == "object_array")
    if kind == "truncated":
        with open(path, "rb") as f:
            content = f.read()
        with open(path, "wb") as f:
            f.write(content[: int(rng.integers(1, len(content)))])


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def prepare_out(root, kind, rng):
    """The `--out` argument for `kind`, and the files keras-mlcl may replace there."""
    if kind == "new":
        return "run", set()
    if kind == "nested_new":
        return os.path.join("runs", "a", "b"), set()
    if kind == "empty_dir":
        os.makedirs(os.path.join(root, "empty"))
        return "empty", set()
    if kind == "user_dir":
        write(os.path.join(root, "project", "notes.txt"), rng.bytes(20))
        write(os.path.join(root, "project", "data", "raw.bin"), rng.bytes(20))
        return "project", set()
    if kind == "dot":
        return ".", set()
    if kind == "data_folder":
        return "inputs", set()
    if kind == "a_file":
        write(os.path.join(root, "a_file"), rng.bytes(10))
        return "a_file", set()
    run = os.path.join(root, "old_run")
    write(os.path.join(run, "results.json"), b"{}")
    write(os.path.join(run, MARKER), json.dumps({"files": ["results.json"]}).encode())
    ours = {os.path.join("old_run", "results.json"), os.path.join("old_run", MARKER)}
    if kind == "run_with_user_file":
        write(os.path.join(run, "mine.txt"), rng.bytes(10))
    return "old_run", ours


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data_kind=st.sampled_from((VALID,) * 6 + MALFORMED),
    out_kind=st.sampled_from(OUT_KINDS),
    overwrite=st.booleans(),
    command=st.sampled_from(["train"] * 3 + ["bench"]),
    method=st.sampled_from(["mlcl", "supcon", "mlcl+ce", "ce"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_fuzz_the_command(capfd, data_kind, out_kind, overwrite, command, method, seed):
    """40 command runs in all, spread over the backends (the point: many inputs and targets)."""
    example = (data_kind, out_kind, overwrite, command, method, seed)
    if not runs_on_this_backend(zlib.crc32(repr(example).encode())):
        return
    rng = np.random.default_rng(seed)
    keras.backend.clear_session()
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as root:
        work = os.path.join(root, "work")
        os.makedirs(os.path.join(work, "inputs"))
        data = os.path.join("inputs", "mine.npz")
        write_data(os.path.join(work, data), data_kind, rng)
        write(os.path.join(work, "sentinel.txt"), rng.bytes(32))
        out, replaceable = prepare_out(work, out_kind, rng)
        before = file_tree(work)
        if command == "train":
            args = ["train", "--data", data, "--out", out, "--loss", method, "--epochs", "1"]
            args += ["--batch-size", "16", "--no-export", "--quiet"]
        else:
            args = ["bench", "quality", "--data", data, "--out", out, "--methods", method]
            args += ["--fractions", "1.0", "--seeds", "1", "--epochs", "1", "--grid", "{}"]
            args += ["--quiet"]
        args += ["--overwrite"] if overwrite else []
        os.chdir(work)
        try:
            capfd.readouterr()
            code = main(args)
            err = capfd.readouterr().err
        finally:
            os.chdir(previous)
        after = file_tree(work)
        event(f"exit {code}")
        assert code in (0, 2), (args, data_kind, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("keras-mlcl: error:"), err
            assert after == before, "a refused run changed files"
        else:
            assert data_kind == VALID, f"{data_kind} data was not refused"
            assert out_kind not in ("user_dir", "dot", "data_folder", "a_file")
            assert out_kind != "run_with_user_file"
            assert overwrite or out_kind != "finished_run"
            with open(os.path.join(work, out, "results.json")) as f:
                results = json.load(f)
            assert (results["method"] if command == "train" else list(results)) in (
                method,
                ["raw", method],  # the bench's `raw` baseline comes first
            )
        for path, content in before.items():
            if path not in replaceable:
                assert after.get(path) == content, f"{path} was changed or removed"
