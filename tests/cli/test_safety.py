"""The command never touches what it did not write, and refuses bad data before training.

Host-side file logic: the module runs once per `make test` (see tests/conftest.py).
"""

import errno
import json
import os
import zipfile

import numpy as np
import pytest

from keras_mlcl.cli.main import main
from keras_mlcl.experiments.run_folder import run_folder
from tests.cli.commands import command
from tests.cli.commands import one_error_line
from tests.cli.commands import write_unseen_npz
from tests.testing import file_tree

pytestmark = pytest.mark.backend_independent


def train(*args, out, capfd=None):
    if capfd is not None:
        capfd.readouterr()  # drop what earlier steps logged (e.g. TensorFlow's device start-up)
    code = main(["train", "--epochs", "1", "--no-export", "--quiet", "--out", out, *args])
    message = one_error_line(capfd.readouterr().err) if capfd is not None and code == 2 else None
    return code, message


@pytest.mark.parametrize("name", ["train", "bench"])
def test_out_holding_user_files_is_refused_untouched(tmp_path, monkeypatch, capfd, name):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=60)
    project = os.path.join(tmp_path, "myproject")
    os.makedirs(os.path.join(project, "data"))
    for file_name in ("notes.txt", os.path.join("data", "raw.csv")):
        with open(os.path.join(project, file_name), "w") as f:
            f.write("the user's own words")
    before = file_tree(tmp_path)
    args = ["train", "--epochs", "1"] if name == "train" else ["bench", "quality"]
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, _, err = command(capfd, *args, "--data", data, "--out", "myproject", *extra)
        assert code == 2
        assert "'myproject'" in one_error_line(err)
    assert file_tree(tmp_path) == before


def test_out_dot_or_a_folder_holding_the_data_is_refused(tmp_path, monkeypatch, capfd):
    data = os.path.join(tmp_path, "inputs", "mine.npz")
    os.makedirs(os.path.dirname(data))
    write_unseen_npz(data, n=60)
    monkeypatch.chdir(tmp_path)
    before = file_tree(tmp_path)
    for out in (".", "..", "inputs"):
        code, message = train("--data", data, "--overwrite", out=out, capfd=capfd)
        assert code == 2 and "contains" in message
    assert file_tree(tmp_path) == before


def test_finished_run_is_replaced_only_with_overwrite(tmp_path, capfd):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=60)
    out = os.path.join(tmp_path, "run")
    assert train("--data", data, out=out)[0] == 0
    first = file_tree(out)
    code, message = train("--data", data, "--seed", "1", out=out, capfd=capfd)
    assert code == 2 and "--overwrite" in message
    assert file_tree(out) == first
    assert train("--data", data, "--seed", "1", "--overwrite", out=out)[0] == 0
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["seed"] == 1
    assert sorted(os.listdir(tmp_path)) == ["mine.npz", "run"]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    data = os.path.join(folder, "mine.npz")
    write_unseen_npz(data, n=80)
    out = os.path.join(folder, "run")
    assert train("--data", data, out=out)[0] == 0
    return os.path.join(out, "model.keras")


def write_bad(tmp_path, kind):
    path = os.path.join(tmp_path, f"{kind}.npz")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    y = np.arange(40) % 2
    if kind == "nan_x":
        x[13, 2] = np.nan
        np.savez(path, x=x, y=y)
    elif kind == "inf_x_test":
        x_test = x[:5].copy()
        x_test[3, 0] = np.inf
        np.savez(path, x=x, y=y, x_test=x_test, y_test=y[:5])
    elif kind == "x_test_shape":
        np.savez(path, x=x, y=y, x_test=x[:5, :4], y_test=y[:5])
    elif kind == "empty":
        open(path, "w").close()
    elif kind == "not_zip":
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY not really")
    elif kind == "truncated":
        np.savez(path, x=x, y=y)
        with open(path, "rb") as f:
            content = f.read()
        with open(path, "wb") as f:
            f.write(content[: len(content) // 2])
    elif kind == "corrupt_member":
        np.savez_compressed(path, x=x, y=y)
        with open(path, "rb") as f:
            content = bytearray(f.read())
        content[100:140] = b"\xff" * 40  # inside the first member's compressed data
        with open(path, "wb") as f:
            f.write(bytes(content))
    elif kind == "other_width":  # 6 features; `saved_run` was trained on 12
        np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("nan_x", "`x` should hold finite values only. Row 13 has NaN or Inf"),
        ("inf_x_test", "`x_test` should hold finite values only. Row 3 has NaN or Inf"),
        ("x_test_shape", "`x_test` should have the sample shape of `x`, (6,)"),
        ("empty", "is not an .npz archive"),
        ("not_zip", "is not an .npz archive"),
        ("truncated", "is not an .npz archive"),
        ("corrupt_member", "Cannot read the .npz archive"),
    ],
)
def test_bad_data_is_refused_before_training(tmp_path, capfd, kind, message):
    path = write_bad(tmp_path, kind)
    out = os.path.join(tmp_path, "run")
    code, line = train("--data", path, out=out, capfd=capfd)
    assert code == 2 and message in line, line
    assert os.path.basename(path) in line
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]


@pytest.mark.parametrize("option", ["--batch-size", "--epochs", "--views", "--temperature"])
@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_bad_numbers_are_one_line(tmp_path, capfd, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value, "--out", os.path.join(tmp_path, "run")])
    assert exit_info.value.code == 2
    assert option in one_error_line(capfd.readouterr().err)
    assert os.listdir(tmp_path) == []


def test_evaluate_refuses_other_widths_and_unreadable_models(tmp_path, capfd, saved_run):
    wide = write_bad(tmp_path, "other_width")
    metrics = os.path.join(tmp_path, "m.json")
    capfd.readouterr()
    assert main(["evaluate", "--model", saved_run, "--data", wide, "--out", metrics]) == 2
    assert "should have the sample shape the model was trained on" in one_error_line(
        capfd.readouterr().err
    )
    corrupt = os.path.join(tmp_path, "corrupt.keras")
    with open(corrupt, "wb") as f:
        f.write(b"not a model")
    truncated = os.path.join(tmp_path, "truncated.keras")
    with open(saved_run, "rb") as f:
        content = f.read()
    with open(truncated, "wb") as f:
        f.write(content[: len(content) // 3])
    damaged = os.path.join(tmp_path, "damaged.keras")
    with zipfile.ZipFile(saved_run) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            if item.filename != "config.json":
                target.writestr(item, source.read(item))
            else:
                target.writestr(item, b"{ broken")
    data = os.path.join(tmp_path, "fine.npz")
    np.savez(data, x=np.zeros((10, 12), "float32"), y=np.arange(10) % 2)
    for model in (corrupt, truncated, damaged):
        capfd.readouterr()
        code = main(["evaluate", "--model", model, "--data", data, "--out", metrics])
        assert code == 2
        assert f"Cannot read model file {model!r}" in one_error_line(capfd.readouterr().err)
    assert not os.path.exists(metrics)


def test_evaluate_never_replaces_a_file_it_did_not_write(tmp_path, capfd, saved_run):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=60, seed=3)
    out = os.path.join(tmp_path, "metrics.json")
    with open(out, "w") as f:
        f.write("the user's own file")
    for extra in ([], ["--overwrite"]):
        args = ["evaluate", "--model", saved_run, "--data", data, "--out", out, "--quiet"]
        capfd.readouterr()
        assert main(args + extra) == 2
        one_error_line(capfd.readouterr().err)
    with open(out) as f:
        assert f.read() == "the user's own file"
    os.remove(out)
    args = ["evaluate", "--model", saved_run, "--data", data, "--out", out, "--quiet"]
    assert main(args) == 0
    assert main(args) == 2  # exists: needs --overwrite
    assert main(args + ["--overwrite"]) == 0  # ours: replaced


def skip_speed_case(monkeypatch, entry=None):
    """Makes the speed bench's `vs_pml_supcon` case instant (`entry`: its result, or a raise)."""

    def case(n, dim, repeats):
        if entry is None:
            raise AssertionError("the case ran before --out was checked")
        return dict(entry)

    monkeypatch.setattr("keras_mlcl.bench.speed_cases.vs_pml_supcon", case)


SPEED = ["bench", "speed", "--quick", "--cases", "vs_pml_supcon", "--quiet"]
SKIPPED = {"ratio": None, "skipped": True, "reason": "not measured in this test"}


def test_bench_speed_refuses_user_files_and_a_file_before_running(tmp_path, capfd, monkeypatch):
    skip_speed_case(monkeypatch)
    mine = os.path.join(tmp_path, "mine")
    os.makedirs(mine)
    with open(os.path.join(mine, "speed.md"), "w") as f:
        f.write("# my notes")
    a_file = os.path.join(tmp_path, "speed_results")
    with open(a_file, "w") as f:
        f.write("mine too")
    before = file_tree(tmp_path)
    for out, words in ((mine, "is not a keras-mlcl run"), (a_file, "It is a file")):
        for extra in ([], ["--overwrite"]):
            code, _, err = command(capfd, *SPEED, "--out", out, *extra)
            assert code == 2 and words in one_error_line(err)
    assert file_tree(tmp_path) == before


def test_bench_speed_writes_a_run_replaced_only_with_overwrite(tmp_path, capfd, monkeypatch):
    skip_speed_case(monkeypatch, SKIPPED)
    out = os.path.join(tmp_path, "speed")
    assert command(capfd, *SPEED, "--out", out)[0] == 0
    assert sorted(os.listdir(out)) == [".keras-mlcl-run.json", "speed.json", "speed.md"]
    first = file_tree(out)
    code, _, err = command(capfd, *SPEED, "--out", out)
    assert code == 2 and "--overwrite" in one_error_line(err)
    assert file_tree(out) == first
    skip_speed_case(monkeypatch, dict(SKIPPED, reason="the second run"))
    assert command(capfd, *SPEED, "--out", out, "--overwrite")[0] == 0
    with open(os.path.join(out, "speed.json")) as f:
        assert json.load(f)["vs_pml_supcon"]["reason"] == "the second run"
    assert os.listdir(tmp_path) == ["speed"]


@pytest.mark.parametrize(
    "args, flag",
    [
        (["train", "--out", ""], "--out"),
        (["train", "--data-dir", ""], "--data-dir"),
        (["bench", "speed", "--out", ""], "--out"),
        (["bench", "quality", "--data", "x.npz", "--out", ""], "--out"),
        (["evaluate", "--model", "m.keras", "--data", "x.npz", "--out", ""], "--out"),
        (["search", "--run", "", "--data", "q.csv", "--out", "n.csv"], "--run"),
    ],
)
def test_an_empty_path_is_refused_naming_the_option(tmp_path, capfd, monkeypatch, args, flag):
    monkeypatch.chdir(tmp_path)
    code, _, err = command(capfd, *args)
    assert code == 2
    assert f"argument {flag}: expected a path, received an empty string" in one_error_line(err)
    assert os.listdir(tmp_path) == []


def test_interrupt_is_one_line_exit_130_and_keeps_the_old_run(tmp_path, capfd, monkeypatch):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=60)
    out = os.path.join(tmp_path, "run")
    with run_folder(out, "train") as folder:
        with open(os.path.join(folder, "results.json"), "w") as f:
            f.write("{}")
    before = file_tree(tmp_path)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("keras_mlcl.experiments.runner.probe_split", interrupt)
    args = ["train", "--data", data, "--epochs", "1", "--quiet", "--out", out, "--overwrite"]
    code, _, err = command(capfd, *args)
    assert code == 130
    assert err.strip() == (
        "keras-mlcl: interrupted; nothing was written, and what --out held is kept"
    )
    assert file_tree(tmp_path) == before
    monkeypatch.setattr("keras_mlcl_launcher.import_tensorflow_quietly", interrupt)
    code, _, err = command(capfd, *args)
    assert code == 130 and err.strip().startswith("keras-mlcl: interrupted before the command")
    assert file_tree(tmp_path) == before


def test_a_failed_write_is_one_line_naming_the_folder_and_keeps_the_old_run(
    tmp_path, capfd, monkeypatch
):
    skip_speed_case(monkeypatch, SKIPPED)
    out = os.path.join(tmp_path, "speed")
    assert command(capfd, *SPEED, "--out", out)[0] == 0
    before = file_tree(tmp_path)

    def full_disk(results):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write on a full disk

    monkeypatch.setattr("keras_mlcl.bench.report.speed_table", full_disk)
    code, _, err = command(capfd, *SPEED, "--out", out, "--overwrite")
    assert code == 1
    assert one_error_line(err) == (
        f"keras-mlcl: error: No space left on device: {out!r}; nothing was replaced"
    )
    assert file_tree(tmp_path) == before
