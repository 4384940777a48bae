"""The `keras-mlcl` command end to end, on small data, in the active backend."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_mlcl.cli.main import main

SERVE = """
import sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
check = np.load(sys.argv[1] + "/serving_check.npz")
out = loaded.serve(tf.constant(check["inputs"]))
print(max(float(np.abs(out[k].numpy() - check[k]).max()) for k in out))
"""


def write_unseen_npz(path, n=240, seed=0):
    """A 2-level vector dataset in the `.npz` format (`x`, `y_<level>`), new to the project."""
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 6, size=n)
    centres = rng.normal(size=(6, 12)) * 3
    x = (centres[fine] + rng.normal(size=(n, 12))).astype("float32")
    np.savez(path, x=x, y_group=fine // 3, y_kind=fine)


def served_difference(saved_model):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SERVE, saved_model], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return float(result.stdout.strip().splitlines()[-1])


def test_train_on_an_unseen_npz_evaluates_per_level_and_exports(tmp_path, capsys):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data)
    out = os.path.join(tmp_path, "run")
    code = main(["train", "--data", data, "--epochs", "3", "--out", out, "--quiet"])
    assert code == 0
    assert capsys.readouterr().out == ""  # --quiet
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["levels"] == ["group", "kind"]
    assert results["test_split"].startswith("held out")
    assert results["train_size"] + results["test_size"] == 240
    for level in ("group", "kind"):
        assert results["linear_probe"][level] > 0.9  # well-separated clusters
        assert results["knn"][level] > 0.9
    assert os.path.getsize(os.path.join(out, "embeddings.png")) > 1000
    assert served_difference(os.path.join(out, "saved_model")) < 1e-5
    assert sorted(os.listdir(tmp_path)) == ["mine.npz", "run"]

    code = main(["evaluate", "--model", os.path.join(out, "model.keras"), "--data", data])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["linear_probe"] == pytest.approx(results["linear_probe"], abs=1e-6)


@pytest.mark.parametrize("method", ["supcon+ce", "himulcon", "ce"])
def test_other_methods_run(tmp_path, method):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=120)
    out = os.path.join(tmp_path, "run")
    assert (
        main(["train", "--data", data, "--loss", method, "--epochs", "1", "--out", out, "--quiet"])
        == 0
    )
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["method"] == method


def run_cli(*args, cwd):
    env = {**os.environ}
    return subprocess.run(
        [sys.executable, "-c", "from keras_mlcl_launcher import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "imagenet"], "`name_or_path` should be one of"),
        (["--data", "{missing_x}"], "x"),
        (["--data", "{short_labels}"], "one row per input"),
        (["--fraction", "0"], "`fraction` should be in (0, 1]"),
        (["--fraction", "1.5"], "`fraction` should be in (0, 1]"),
        (["--loss", "triplet"], "`method` should be one of"),
        (["--out", "{unwritable}"], "should be writable"),
        (["--data", "{nan}"], "`x` should hold finite values only. Row 2 has NaN"),
        (["--batch-size", "0"], "--batch-size"),
        (["--out", "."], "contains the working folder"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_folder(tmp_path, args, message):
    np.savez(os.path.join(tmp_path, "missing_x.npz"), y_a=np.zeros(4, int))
    np.savez(os.path.join(tmp_path, "short.npz"), x=np.zeros((5, 3)), y_a=np.zeros(4, int))
    nan = np.zeros((5, 3))
    nan[2, 1] = np.nan
    np.savez(os.path.join(tmp_path, "nan.npz"), x=nan, y_a=np.zeros(5, int))
    blocker = os.path.join(tmp_path, "file")
    open(blocker, "w").close()
    names = {
        "{missing_x}": os.path.join(tmp_path, "missing_x.npz"),
        "{short_labels}": os.path.join(tmp_path, "short.npz"),
        "{unwritable}": os.path.join(blocker, "run"),
        "{nan}": os.path.join(tmp_path, "nan.npz"),
    }
    args = [names.get(a, a) for a in args]
    if "--out" not in args:
        args += ["--out", os.path.join(tmp_path, "run")]
    result = run_cli("train", "--epochs", "1", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-mlcl: error:")
    assert message in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["file", "missing_x.npz", "nan.npz", "short.npz"]


def test_help_of_every_command():
    for args in (
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["bench", "--help"],
        ["bench", "quality", "--help"],
        ["bench", "speed", "--help"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0


COMMITTED_RUN = os.path.join(
    os.path.dirname(__file__), "..", "..", "saved_models", "fashion_mnist_mlcl"
)


def test_committed_default_run_serves_its_recorded_outputs():
    saved_model = os.path.join(COMMITTED_RUN, "saved_model")
    check = np.load(os.path.join(saved_model, "serving_check.npz"))
    assert check["inputs"].shape == (8, 28, 28, 1)
    assert served_difference(saved_model) < 1e-5
    with open(os.path.join(COMMITTED_RUN, "results.json")) as f:
        results = json.load(f)
    assert results["dataset"] == "fashion_mnist" and results["levels"] == ["coarse", "fine"]


def test_bench_speed_quick_writes_the_spec_json(tmp_path):
    out = os.path.join(tmp_path, "speed")
    assert main(["bench", "speed", "--quick", "--out", out, "--quiet"]) == 0
    with open(os.path.join(out, "speed.json")) as f:
        results = json.load(f)
    for case in ("supcon_vs_matmul", "heads4_vs_4x_one_head", "fit_step_vs_ce"):
        assert results[case]["ratio"] > 0 and results[case]["target"] > 0
