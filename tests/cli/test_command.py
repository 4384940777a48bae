"""The command as a Unix tool: fast help, --version, defaults, quiet runs, run-folder history."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_mlcl.cli.main import main
from keras_mlcl.cli.parser import build_parser
from keras_mlcl.version import __version__
from tests.cli.commands import command
from tests.cli.commands import launch
from tests.cli.commands import one_error_line
from tests.cli.commands import write_unseen_npz
from tests.experiments.test_phase_timer import check_timings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.backend_independent
def test_help_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys\n"
        "from keras_mlcl_launcher import run\n"
        "for args in (['--help'], ['train', '--help'], ['--version'], ['train', '--lr', 'x']):\n"
        "    try:\n"
        "        run(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'numpy', 'keras_mlcl') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.backend_independent
def test_the_process_exits_0_or_2_before_any_import():
    result = launch("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"keras-mlcl {__version__}\n"
    usage = launch("train", "--lr", "0")  # refused by the parser
    assert usage.returncode == 2 and usage.stdout == ""
    assert "argument --lr: should be a positive number" in one_error_line(usage.stderr)


@pytest.mark.backend_independent
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_a_refused_run_is_one_line_and_exit_2_from_the_process(tmp_path, backend):
    """A process per backend (the point: the exit code, and nothing else on stderr once the
    libraries have started)."""
    nan = np.zeros((5, 3))
    nan[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan, y_a=np.zeros(5, int))
    refused = launch("train", "--data", "nan.npz", "--out", "run", backend=backend, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "`x` should hold finite values only. Row 2 has NaN" in one_error_line(refused.stderr)
    assert sorted(os.listdir(tmp_path)) == ["nan.npz"]


@pytest.mark.backend_independent
def test_train_help_shows_every_default(capfd):
    code, out, _ = command(capfd, "train", "--help")
    assert code == 0
    text = " ".join(out.split())
    for shown in (
        "--method METHOD",
        "(default: mlcl)",
        "(default: 15)",
        "(default: 256)",
        "(default: 0.001)",
        "(default: 0.1)",
        "(default: 0.5)",
        "(default: 1.0)",
        "(default: fashion_mnist)",
    ):
        assert shown in text
    assert "--loss" not in text  # the former name is a hidden alias


@pytest.mark.backend_independent
def test_bench_quality_takes_epochs_per_fraction():
    parser = build_parser()
    base = ["bench", "quality", "--data", "toy", "--out", "o"]
    args = parser.parse_args([*base, "--epochs-per-fraction", "0.1:30,1.0:5"])
    assert args.epochs_per_fraction == {0.1: 30, 1.0: 5}
    assert parser.parse_args(base).epochs_per_fraction is None


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs-per-fraction", "0.1=30"], "should be FRACTION:EPOCHS pairs"),
        (["--epochs-per-fraction", "0.1:0"], "should be FRACTION:EPOCHS pairs"),
        (["--epochs-per-fraction", "1.5:3"], "should be FRACTION:EPOCHS pairs"),
        (["--epochs-per-fraction", "0.1:3", "--epochs", "4"], "not allowed with argument"),
    ],
)
def test_bench_epochs_per_fraction_is_checked_at_parse_time(capfd, args, message):
    code, _, err = command(capfd, "bench", "quality", "--data", "toy", "--out", "o", *args)
    assert code == 2
    assert message in one_error_line(err)


@pytest.mark.backend_independent
def test_loss_is_a_hidden_alias_of_method():
    parser = build_parser()
    assert parser.parse_args(["train", "--loss", "supcon"]).method == "supcon"
    assert parser.parse_args(["train", "--method", "supcon"]).method == "supcon"
    assert parser.parse_args(["train"]).method == "mlcl"


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "0"], "argument --lr: should be a positive number, not '0'"),
        (["--lr", "nan"], "argument --lr: should be a positive number"),
        (["--ce-weight", "-1"], "argument --ce-weight: should be a positive number"),
        (["--coarse-temperature", "inf"], "argument --coarse-temperature: should be a positive"),
        (["--coarse-weight", "-0.5"], "argument --coarse-weight: should be a non-negative"),
        (["--weight-power", "-1"], "argument --weight-power: should be a non-negative"),
    ],
)
def test_knobs_are_checked_at_parse_time(capfd, args, message):
    code, _, err = command(capfd, "train", *args)
    assert code == 2
    assert message in one_error_line(err)


def test_knobs_reach_the_run_and_history_is_written(tmp_path, capsys):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=120)
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--method", "mlcl+ce", "--epochs", "3", "--out", out]
    args += ["--lr", "0.002", "--coarse-temperature", "0.4", "--coarse-weight", "0.5"]
    args += ["--ce-weight", "0.7", "--no-export", "--tensorboard"]
    assert main(args) == 0
    printed = capsys.readouterr()
    for phase in ("keras-mlcl: linear probe (2 levels) ...", "keras-mlcl: kNN, k=20 ..."):
        assert phase in printed.err  # one status line per phase without --quiet
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["learning_rate"] == 0.002
    assert results["model_options"] == {
        "coarse_temperature": 0.4,
        "coarse_weight": 0.5,
        "ce_weight": 0.7,
    }
    with open(os.path.join(out, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    for column in ("loss", "group_loss", "kind_loss", "kind_ce"):
        values = [float(row[column]) for row in rows]
        assert values == pytest.approx(results["history"][column], rel=1e-6)
    assert results["plots"]["loss"] == ["loss_group.png", "loss_kind.png"]
    phases = ["load", "prepare", "train", "classifier_refit", "embed", "probe", "knn"]
    phases += ["retrieval", "classifier", "save", "index", "plot"]  # no export asked for
    check_timings(results["timings_s"], phases)
    shown = [line for line in printed.out.splitlines() if line.startswith("seconds: ")]
    assert shown == [
        "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in results["timings_s"].items())
    ]
    with open(os.path.join(out, ".keras-mlcl-run.json")) as f:
        listed = json.load(f)["files"]
    for name in ("history.csv", "loss_group.png", "loss_kind.png", "results.json"):
        assert name in listed
    for name in results["plots"]["loss"]:
        with open(os.path.join(out, name), "rb") as f:
            assert f.read(8) == PNG_SIGNATURE
    events = [name for name in listed if name.startswith("tensorboard/")]
    assert any("events.out.tfevents" in name for name in events)
    assert all(os.path.isfile(os.path.join(out, name)) for name in events)


def test_train_then_evaluate_scores_the_same_rows(tmp_path, capsys):
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=200)
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--epochs", "2", "--fraction", "0.5", "--seed", "3"]
    assert main(args + ["--out", out, "--no-export", "--quiet"]) == 0
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["probe_rows"] == {
        "split": "train",
        "fraction": 0.5,
        "seed": 3,
        "validation_fraction": None,
        "count": 80,
    }
    model = os.path.join(out, "model.keras")
    assert main(["evaluate", "--model", model, "--data", data, "--quiet"]) == 0
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["probe_rows"]["count"] == 80
    assert metrics["probe_rows"]["same_as"] == "the run that wrote the model"
    assert metrics["linear_probe"] == results["linear_probe"]
    assert metrics["knn"] == results["knn"]
    assert metrics["retrieval"] == results["retrieval"]
    for level in ("group", "kind"):
        scores = results["retrieval"][level]
        assert sorted(scores) == ["map@r", "recall@1", "recall@5"]
        assert 0.5 < scores["map@r"] <= 1.0  # well-separated clusters
        assert 0.5 < scores["recall@1"] <= scores["recall@5"] <= 1.0

    other = os.path.join(tmp_path, "other.npz")
    write_unseen_npz(other, n=200, seed=1)
    elsewhere = os.path.join(tmp_path, "other.json")
    assert main(["evaluate", "--model", model, "--data", other, "--out", elsewhere]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["probe_rows"] == {
        "split": "train",
        "fraction": 1.0,
        "seed": 0,
        "validation_fraction": None,
        "count": 160,
    }


@pytest.mark.backend_independent
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_quiet_train_prints_nothing(tmp_path, backend):
    """A process per backend (the point: nothing reaches the terminal, TensorFlow's C++ too)."""
    data = os.path.join(tmp_path, "mine.npz")
    write_unseen_npz(data, n=60)
    out = os.path.join(tmp_path, "run")
    args = ["train", "--data", data, "--epochs", "1", "--no-export", "--quiet", "--out", out]
    result = launch(*args, backend=backend, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == ""
    assert result.stderr == ""
    assert os.path.isfile(os.path.join(out, "model.keras"))
