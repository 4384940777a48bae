"""The `keras-mlcl` command end to end, on small data, in the active backend."""

import json
import os

import keras
import numpy as np
import pytest

from keras_mlcl.cli.main import main
from tests.cli.commands import command
from tests.cli.commands import one_error_line
from tests.cli.commands import write_unseen_npz
from tests.experiments.test_phase_timer import check_timings


def served_difference(saved_model):
    """The largest difference between the SavedModel's outputs on its `serving_check.npz`
    inputs and the outputs recorded there, served by `tf.saved_model.load` in this process
    (tests/models/test_saving.py serves an export in a fresh process, on every backend)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model)
    check = np.load(os.path.join(saved_model, "serving_check.npz"))
    out = loaded.serve(tf.constant(check["inputs"]))
    return max(float(np.abs(out[k].numpy() - check[k]).max()) for k in out)


def test_train_on_an_unseen_npz_evaluates_per_level_and_exports(tmp_path, capsys):
    """The whole command on every backend: training, probe, kNN, plot, export, evaluate."""
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
    phases = ["load", "prepare", "train", "embed", "probe", "knn", "retrieval", "save"]
    check_timings(results["timings_s"], [*phases, "index", "export", "plot"])

    code = main(["evaluate", "--model", os.path.join(out, "model.keras"), "--data", data])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["linear_probe"] == pytest.approx(results["linear_probe"], abs=1e-6)


@pytest.mark.spread_over_backends
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
        results = json.load(f)
    assert results["method"] == method
    assert results["temperature"] == (None if method == "ce" else 0.1)  # ce uses none
    assert results["linear_probe"]["kind"] > 0.9  # well-separated clusters
    if method.endswith("ce"):  # the classifier, refit on the frozen encoder, at its probe
        refit = results["classifier_refit"]["kind"]
        assert refit["loss"] < refit["initial_loss"]
        assert results["classifier"]["kind"]["accuracy"] >= results["linear_probe"]["kind"] - 0.02


def odd_data(path, kind):
    rng = np.random.default_rng(1)
    n = 90
    x = rng.normal(size=(n, 5)).astype("float32")
    fine = np.arange(n) % 3
    if kind == "constant":
        np.savez(path, x=np.zeros((n, 5), "float32"), y_a=fine % 2, y_b=fine)
    elif kind == "test_of_one_row":
        np.savez(path, x=x, y=fine, x_test=x[:1], y_test=fine[:1])
    elif kind == "test_of_two_rows":
        np.savez(path, x=x, y=fine, x_test=x[:2], y_test=fine[:2])
    elif kind == "one_class":
        np.savez(path, x=x, y=np.zeros(n, int))
    elif kind == "huge_ids":
        np.savez(path, x=x, y=np.where(fine == 0, 10**9, fine))


@pytest.mark.parametrize(
    "kind", ["constant", "test_of_one_row", "test_of_two_rows", "one_class", "huge_ids"]
)
@pytest.mark.parametrize("method", ["mlcl+ce"])
def test_odd_but_valid_data_finishes(tmp_path, kind, method):
    data = os.path.join(tmp_path, "odd.npz")
    odd_data(data, kind)
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--loss", method, "--epochs", "1", "--out", out]
    assert main([*args, "--no-export", "--quiet"]) == 0
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    plot = results["plots"]["embeddings"]
    if kind in ("constant", "test_of_one_row", "test_of_two_rows"):
        assert plot["file"] is None and plot["missing"]
        assert not os.path.exists(os.path.join(out, "embeddings.png"))
    else:
        assert os.path.getsize(os.path.join(out, plot["file"])) > 1000
    if kind == "huge_ids":
        assert results["class_ids"] == {"label": [1, 2, 10**9]}
        model_bytes = os.path.getsize(os.path.join(out, "model.keras"))
        assert model_bytes < 5_000_000  # a 3-way classifier, not 10**9 outputs
    if kind == "one_class":
        assert results["linear_probe"]["label"] == 1.0


@pytest.mark.backend_independent
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
def test_bad_input_is_one_line_exit_2_and_no_run_folder(
    tmp_path, monkeypatch, capfd, args, message
):
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
    monkeypatch.chdir(tmp_path)
    code, _, err = command(capfd, "train", "--epochs", "1", *args)
    assert code == 2
    assert message in one_error_line(err)
    assert sorted(os.listdir(tmp_path)) == ["file", "missing_x.npz", "nan.npz", "short.npz"]


@pytest.mark.backend_independent
def test_help_of_every_command(capfd):
    for args in (
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["bench", "--help"],
        ["bench", "quality", "--help"],
        ["bench", "speed", "--help"],
    ):
        code, out, err = command(capfd, *args)
        assert code == 0 and err == ""
        assert out.startswith(" ".join(["usage: keras-mlcl", *args[:-1]]) + " ")


COMMITTED_RUN = os.path.join(
    os.path.dirname(__file__), "..", "..", "saved_models", "fashion_mnist_mlcl"
)


@pytest.mark.backend_independent
def test_committed_default_run_records_the_default_data():
    """The committed run's record (its SavedModel is written by `make demo`, not committed:
    a fresh export is served in tests/models/test_saving.py and here above)."""
    with open(os.path.join(COMMITTED_RUN, "results.json")) as f:
        results = json.load(f)
    assert results["dataset"] == "fashion_mnist" and results["levels"] == ["coarse", "fine"]


@pytest.mark.backend_independent
def test_bench_speed_command_writes_the_cases_it_is_given(tmp_path):
    """The command's plumbing; the bench's harness, on every backend: tests/bench/test_speed.py."""
    out = os.path.join(tmp_path, "speed")
    args = ["bench", "speed", "--quick", "--cases", "supcon_vs_matmul,heads4_vs_4x_one_head"]
    assert main([*args, "--out", out, "--quiet"]) == 0
    with open(os.path.join(out, "speed.json")) as f:
        results = json.load(f)
    assert list(results) == ["supcon_vs_matmul", "heads4_vs_4x_one_head"]
    for entry in results.values():
        assert entry["target"] > 0 and entry["better"] == "lower"
        assert entry["ratio"] == pytest.approx(entry["measured_ms"] / entry["baseline_ms"])
    with open(os.path.join(out, "speed.md"), encoding="utf-8") as f:
        assert "`heads4_vs_4x_one_head`" in f.read()


@pytest.mark.backend_independent
def test_a_validation_split_gives_validation_curves_and_retrieval_logs(tmp_path, saved_figures):
    """With `x_val` in the data, each epoch logs the validation loss and Recall@1 / mAP@R per
    level (history.csv), and each head's loss plot draws the validation curve beside the
    training one."""
    rng = np.random.default_rng(0)
    fine = rng.integers(0, 4, size=160)
    x = (rng.normal(size=(4, 8)) * 3)[fine] + rng.normal(size=(160, 8))
    data = os.path.join(tmp_path, "val.npz")
    np.savez(
        data, x=x[:120], y_group=fine[:120] // 2, y_kind=fine[:120],
        x_val=x[120:], y_val_group=fine[120:] // 2, y_val_kind=fine[120:],
    )  # fmt: skip
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--epochs", "2", "--no-export", "--plot", "none"]
    assert main([*args, "--out", out, "--quiet"]) == 0
    with open(os.path.join(out, "history.csv")) as f:
        header = f.readline().strip().split(",")
    for column in ("val_loss", "val_kind_loss", "val_kind_recall_at_1", "val_group_map_at_r"):
        assert column in header, header
    labels = [[line.get_label() for line in figure.axes[0].get_lines()] for figure in saved_figures]
    assert labels and all(names == ["train", "validation"] for names in labels), labels


@pytest.mark.backend_independent
@pytest.mark.parametrize("package", ["tensorflow", "tensorboard"])
def test_tensorboard_without_its_packages_is_refused_before_training(
    tmp_path, monkeypatch, capfd, package
):
    """`--tensorboard` writes through TensorFlow and its `tensorboard` package (the
    `tensorboard` extra); either one missing is one line naming it, before any run folder."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else find_spec(name)
    )
    data = write_unseen_npz(os.path.join(tmp_path, "mine.npz"), n=60)
    out = os.path.join(tmp_path, "run")
    code, out_text, err = command(capfd, "train", "--data", data, "--out", out, "--tensorboard")
    assert code == 2 and out_text == ""
    line = one_error_line(err)
    assert f"`{package}` package" in line and "keras-mlcl[tensorboard]" in line
    assert os.listdir(tmp_path) == ["mine.npz"]


@pytest.mark.backend_independent
def test_the_data_fingerprint_follows_the_order_of_the_levels():
    """`evaluate` reuses a run's probe rows only for data of the same fingerprint; the split
    stratifies on the finest level, so the same arrays with the levels in another order get
    other rows, and must not pass for the run's data."""
    from keras_mlcl.data import LabeledDataset
    from keras_mlcl.experiments.runner import data_fingerprint
    from keras_mlcl.experiments.runner import probe_split

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    coarse, fine = np.arange(60) % 2, rng.integers(0, 6, size=60)
    ordered = LabeledDataset(x=x, labels={"group": coarse, "kind": fine})
    swapped = LabeledDataset(x=x, labels={"kind": fine, "group": coarse})
    again = LabeledDataset(x=x.copy(), labels={"group": coarse.copy(), "kind": fine.copy()})
    renamed = LabeledDataset(x=x, labels={"a": coarse, "b": fine})
    assert data_fingerprint(ordered) == data_fingerprint(again)
    assert data_fingerprint(ordered) != data_fingerprint(swapped)
    assert data_fingerprint(ordered) != data_fingerprint(renamed)
    rows = [probe_split(data, 0.5, seed=0)[0].x for data in (ordered, swapped)]
    assert not np.array_equal(rows[0], rows[1])  # why the order matters


def evaluate_case(folder, case):
    """`(model path, data path, what the one error line says)` of a bad `evaluate --model`."""
    data = write_unseen_npz(os.path.join(folder, "mine.npz"), n=40)
    model = os.path.join(folder, "model.keras")
    record = os.path.join(folder, "results.json")
    if case == "plain_keras_model":
        plain = keras.Sequential([keras.Input((12,)), keras.layers.Dense(2)])
        plain.save(model)
        return model, data, f"The model file {model!r} should hold a keras_mlcl ContrastiveModel"
    with open(model, "wb") as f:
        f.write(b"a model file, never read: the record is checked first")
    if case == "text_model_without_its_record":
        text = os.path.join(folder, "text.npz")
        np.savez(text, x=np.array(["a short text", "another one"] * 10), y=np.arange(20) % 2)
        return model, text, f"reads its vocabulary from its run's {record!r}, which is missing"
    with open(record, "w") as f:
        f.write({"record_is_a_list": "[1, 2]", "corrupt_record": '{"preprocessing": {"ki'}[case])
    if case == "record_is_a_list":
        return model, data, f"The run's record {record!r} should be a JSON object"
    return model, data, f"Cannot read the run's record {record!r}"


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "case",
    ["plain_keras_model", "record_is_a_list", "text_model_without_its_record", "corrupt_record"],
)
def test_evaluate_a_model_that_is_not_a_runs_is_one_line_naming_the_file(tmp_path, capfd, case):
    """These were tracebacks (`AttributeError`, `KeyError: 'text'`) or named no file."""
    model, data, message = evaluate_case(str(tmp_path), case)
    listed = sorted(os.listdir(tmp_path))
    code, out, err = command(capfd, "evaluate", "--model", model, "--data", data)
    assert code == 2 and out == ""
    assert message in one_error_line(err)
    assert sorted(os.listdir(tmp_path)) == listed  # no metrics.json


@pytest.mark.backend_independent
def test_quiet_train_prints_nothing_when_the_export_is_skipped(tmp_path, capfd, monkeypatch):
    """Without TensorFlow the export is skipped: the results say so, and `--quiet` prints
    nothing (the skip was a line on stderr). Every backend, TensorFlow's own logging included:
    tests/cli/test_command.py's `test_quiet_train_prints_nothing`."""
    from keras_mlcl.models import ContrastiveModel
    from keras_mlcl.models.export import MissingTensorFlowError

    def missing(*args, **kwargs):
        raise MissingTensorFlowError("TensorFlow is not installed")

    monkeypatch.setattr(ContrastiveModel, "export", missing)
    data = write_unseen_npz(os.path.join(tmp_path, "mine.npz"), n=60)
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--epochs", "1", "--plot", "none", "--out", out]
    assert command(capfd, *args, "--quiet") == (0, "", "")
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["export"] == {
            "saved_model": None,
            "skipped": "TensorFlow is not installed",
        }


@pytest.mark.backend_independent
def test_quiet_mutes_warnings_and_tensorflow_logging(tmp_path, capfd, monkeypatch):
    """Under `--quiet` the command runs with warnings ignored and TensorFlow's Python log at
    ERROR (a tf.function retracing notice printed under `bench quality --quiet`); without it,
    neither is changed. (Pytest captures warnings and log records itself, so the state the
    command runs in is what is checked.)"""
    import logging
    import warnings

    from keras_mlcl.cli import main as cli_main

    seen = []

    def record(args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn("overflow encountered", RuntimeWarning, stacklevel=1)
        seen.append((len(caught), logging.getLogger("tensorflow").getEffectiveLevel()))
        return 0

    monkeypatch.setattr(cli_main, "run_train", record)
    tensorflow_log = logging.getLogger("tensorflow")
    monkeypatch.setattr(tensorflow_log, "level", logging.WARNING)
    data = write_unseen_npz(os.path.join(tmp_path, "mine.npz"), n=30)
    args = ["train", "--data", data, "--out", os.path.join(tmp_path, "run")]
    assert command(capfd, *args)[0] == 0
    assert seen[-1] == (1, logging.WARNING)
    assert command(capfd, *args, "--quiet") == (0, "", "")
    assert seen[-1] == (0, logging.ERROR)
    with warnings.catch_warnings(record=True) as after:  # the filter does not outlive the command
        warnings.simplefilter("always")
        warnings.warn("still shown", RuntimeWarning, stacklevel=1)
    assert len(after) == 1
