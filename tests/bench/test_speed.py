"""The speed benchmark's harness (quick mode; no wall-clock thresholds), on every backend."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import keras
import pytest

from keras_mlcl.bench import speed_cases
from keras_mlcl.bench.report import plot_speed_sweep
from keras_mlcl.bench.report import speed_table
from keras_mlcl.bench.speed import CASES
from keras_mlcl.bench.speed import MEMORY_TARGETS
from keras_mlcl.bench.speed import QUICK
from keras_mlcl.bench.speed import TARGETS
from keras_mlcl.bench.speed import run_speed_bench
from keras_mlcl.bench.speed_cases import MEMORY_SIDES
from keras_mlcl.bench.speed_cases import side_peak_rss_mb
from keras_mlcl.bench.speed_cases import sweep_repeats

LARGE = "supcon_16k_vs_matmul"
IN_PROCESS = [case for case in CASES if case != LARGE]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick bench's in-process cases, run once for the module's tests."""
    out = str(tmp_path_factory.mktemp("speed"))
    return out, run_speed_bench(out=out, cases=IN_PROCESS, quick=True, verbose=0)


def check_case(case, entry):
    """The target, direction, context and verdict of one case's entry."""
    assert entry["target"] == TARGETS[case]
    assert entry["better"] == ("higher" if case.startswith("vs_") else "lower")
    assert entry["backend"] == keras.backend.backend()
    expected_n = QUICK["large_n"] if case == LARGE else QUICK["n"]
    assert entry["n"] == expected_n and entry["dim"] == QUICK["dim"]
    assert entry["machine"]["cpu_count"] == os.cpu_count()
    assert entry["quick"] is True
    if entry.get("skipped"):
        assert entry["ratio"] is None and entry["meets_target"] is None
        assert isinstance(entry["reason"], str) and entry["reason"]
        return
    ratio = entry["ratio"]
    assert isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0
    measured, baseline = entry["measured_ms"], entry["baseline_ms"]
    assert measured > 0 and baseline > 0
    expected = baseline / measured if case.startswith("vs_") else measured / baseline
    assert ratio == pytest.approx(expected, rel=1e-9)
    if case in MEMORY_TARGETS:
        met = ratio <= entry["target"] and entry["memory_target_met"]
        assert entry["meets_target"] == met
    elif entry["better"] == "lower":
        assert entry["meets_target"] == (ratio <= entry["target"])
    else:
        assert entry["meets_target"] == (ratio >= entry["target"])


@pytest.mark.backend_independent
def test_every_case_runs_by_default_in_order(monkeypatch):
    """`cases=None` runs every case of `CASES`, in that order (the cases faked here)."""
    called = []

    def fake(name):
        def case(n, *args, **kwargs):
            called.append(name)
            return {"ratio": 1.0, "n": n, "loss_extra_mb": 0.0}

        return case

    names = [
        "supcon_vs_matmul",
        "supcon_large_vs_matmul",
        "replica_vs_global",
        "heads_vs_one_head",
        "fit_step_vs_ce",
        "vs_pml_supcon",
        "vs_sklearn_knn",
    ]
    for name in names:
        monkeypatch.setattr(speed_cases, name, fake(name))
    monkeypatch.setattr(speed_cases, "sweep_point", lambda size, *args: {"n": size})
    results = run_speed_bench(quick=True, verbose=0)
    assert list(results) == list(CASES)
    assert called == names
    assert [point["n"] for point in results["supcon_vs_matmul"]["sweep"]] == list(QUICK["sizes"])


def test_quick_run_has_every_case_with_its_target(quick_run):
    _, results = quick_run
    assert list(results) == IN_PROCESS
    for case, entry in results.items():
        check_case(case, entry)


def test_pml_case_is_skipped_with_a_reason_off_torch(quick_run):
    _, results = quick_run
    entry = results["vs_pml_supcon"]
    if keras.backend.backend() != "torch":
        assert entry["skipped"] is True
        assert "torch backend" in entry["reason"]
    else:
        try:
            import pytorch_metric_learning  # noqa: F401
        except ImportError:
            assert entry["skipped"] is True and "not installed" in entry["reason"]
        else:
            assert entry["ratio"] > 0


def test_quick_run_sweep_covers_the_sizes(quick_run):
    _, results = quick_run
    sweep = results["supcon_vs_matmul"]["sweep"]
    assert [point["n"] for point in sweep] == list(QUICK["sizes"])
    for point in sweep:
        assert point["loss_ms"] > 0 and point["matmul_ms"] > 0
        assert point["ratio"] == pytest.approx(point["loss_ms"] / point["matmul_ms"])
        assert point["loss_peak_mb"] is None or point["loss_peak_mb"] >= 0
        assert isinstance(point["memory_method"], str)


@pytest.mark.backend_independent
def test_large_case_measures_each_side_in_a_fresh_process(tmp_path):
    """Three child processes, one per side (the point), each starting the libraries anew.

    The children run the backend's runners, which the in-process cases check on every
    backend; the fresh-process harness itself runs once.
    """
    out = str(tmp_path / "speed")
    entry = run_speed_bench(out=out, cases=[LARGE], quick=True, verbose=0)[LARGE]
    check_case(LARGE, entry)
    rss = entry["rss_mb"]
    assert sorted(rss) == sorted(MEMORY_SIDES)
    # Every side's process imports the libraries: hundreds of MB, far above the inputs.
    assert all(value > 50 for value in rss.values())
    assert entry["loss_extra_mb"] == pytest.approx(rss["loss"] - rss["baseline"])
    assert entry["matmul_extra_mb"] == pytest.approx(rss["matmul"] - rss["baseline"])
    assert entry["loss_minus_matmul_mb"] == pytest.approx(rss["loss"] - rss["matmul"])
    # A quarter of one N x N float32 buffer.
    assert entry["memory_target_mb"] == pytest.approx(QUICK["large_n"] ** 2 / 2**20)
    assert entry["memory_target_met"] == (entry["loss_extra_mb"] <= entry["memory_target_mb"])
    assert entry["time_target_met"] == (entry["ratio"] <= TARGETS[LARGE])
    with open(os.path.join(out, "speed.md"), encoding="utf-8") as f:
        assert f"`{LARGE}`" in f.read()


def test_replica_case_times_a_quarter_of_the_anchors(quick_run):
    _, results = quick_run
    entry = results["dist_replica_vs_global"]
    assert entry["replicas"] == 4
    local = QUICK["n"] // 4
    assert entry["measured"].startswith(f"one replica's loss: {local} anchors x {QUICK['n']}")
    assert entry["baseline"].startswith(f"single-device loss: {QUICK['n']} anchors")
    assert "larger" not in entry  # quick mode: no 4 x N point


def test_knn_case_times_both_implementations_on_the_same_data(quick_run):
    _, results = quick_run
    entry = results["vs_sklearn_knn"]
    assert (entry["n"], entry["references"], entry["k"]) == (QUICK["n"], 16 * QUICK["n"], 20)
    assert "KNeighborsClassifier" in entry["baseline"]
    # Clustered data without ties: both give the same accuracy.
    assert entry["accuracy"]["ours"] == entry["accuracy"]["sklearn"]


def test_memory_side_must_be_known():
    with pytest.raises(ValueError, match="`side` should be one of"):
        side_peak_rss_mb("everything", 8, 4)


def test_sweep_rounds_shrink_above_2048():
    assert [sweep_repeats(n, 10) for n in (256, 2048, 4096, 8192, 16384)] == [10, 10, 5, 2, 2]


def test_heads_case_compares_with_heads_times_one_head(quick_run):
    _, results = quick_run
    entry = results["heads4_vs_4x_one_head"]
    assert entry["heads"] == 4
    assert entry["baseline_ms"] == pytest.approx(4 * entry["one_head_ms"])


def test_files_hold_the_results(quick_run):
    out, results = quick_run
    with open(os.path.join(out, "speed.json"), encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(results))
    with open(os.path.join(out, "speed.md"), encoding="utf-8") as f:
        table = f.read()
    for case in IN_PROCESS:
        assert f"`{case}`" in table


def test_markdown_table_of_known_results():
    entry = {
        "ratio": 1.25,
        "target": 1.3,
        "better": "lower",
        "meets_target": True,
        "measured_ms": 5.0,
        "baseline_ms": 4.0,
        "measured": "loss",
        "baseline": "matmul",
        "mode": "jax.jit",
        "backend": "jax",
        "n": 1024,
        "dim": 128,
        "repeats": 30,
        "date": "2026-01-01",
        "machine": {"cpu_count": 2, "platform": "Linux", "load_average": [1.0]},
    }
    skipped = dict(entry, ratio=None, meets_target=None, skipped=True, reason="no peer")
    skipped.update(better="higher", target=2.5)
    large = dict(entry, n=16384, ratio=1.4, target=1.5, meets_target=False)
    large.update(
        rss_mb={"baseline": 600.0, "matmul": 2648.0, "loss": 900.0},
        loss_extra_mb=300.0,
        matmul_extra_mb=2048.0,
        loss_minus_matmul_mb=-1748.0,
        memory_target_mb=256.0,
        memory_target_met=False,
    )
    replica = dict(entry, ratio=0.3, target=0.4)
    replica["larger"] = {"n": 4096, "ratio": 0.28, "measured_ms": 2.8, "baseline_ms": 10.0}
    table = speed_table(
        {
            "supcon_vs_matmul": entry,
            "supcon_16k_vs_matmul": large,
            "dist_replica_vs_global": replica,
            "vs_pml_supcon": skipped,
        }
    )
    assert (
        "| `supcon_vs_matmul` | 1024 | 1.25 | <= 1.3 | yes | 5.00 (loss) | 4.00 (matmul) |" in table
    )
    assert (
        "| `supcon_16k_vs_matmul` | 16384 | 1.40 | <= 1.5; extra memory <= 256 MB | no |" in table
    )
    assert (
        "baseline 600 MB, matmul 2648 MB, SupCon 900 MB; SupCon's extra memory 300 MB "
        "(target <= 256 MB: not met), the matmul's 2048 MB, SupCon minus matmul -1748 MB."
    ) in table
    assert "`dist_replica_vs_global` at N = 4096: ratio 0.28 (2.80 ms / 10.00 ms)." in table
    assert "| `vs_pml_supcon` | 1024 | skipped | >= 2.5 | - | - | - | no peer |" in table


def test_sweep_plot_is_written(tmp_path):
    """A picture for docs/benchmarks.md, drawn from known points: that it is written is the
    check (the numbers it shows are the sweep's, checked above and in `speed_table`)."""
    sweep = [
        {
            "n": n,
            "loss_ms": n / 100,
            "matmul_ms": n / 120,
            "loss_peak_mb": None,
            "matmul_peak_mb": None,
            "loss_extra_mb": n**2 / 2**22,
            "matmul_extra_mb": n**2 / 2**18,
        }
        for n in (256, 1024, 4096)
    ]
    path = tmp_path / "sweep.png"
    plot_speed_sweep({"jax": {"supcon_vs_matmul": {"sweep": sweep}}}, str(path))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


GPU_CHECK = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "gpu_check.py")


def load_gpu_check():
    """The script as a module (it imports only the standard library at the top)."""
    spec = importlib.util.spec_from_file_location("gpu_check", GPU_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.backend_independent
def test_gpu_check_script_runs_on_the_cpu(tmp_path):
    """The script runs JAX and torch in a child process each (the point: its own processes)."""
    command = [sys.executable, GPU_CHECK, "--cpu-smoke", "--backends", "jax,torch"]
    (tmp_path / "mine.txt").write_text("kept")
    result = subprocess.run(
        command + ["--sizes", "16,32", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["gpu_check.json", "gpu_check.md", "mine.txt"]
    assert (tmp_path / "mine.txt").read_text() == "kept"
    with open(tmp_path / "gpu_check.json", encoding="utf-8") as f:
        reports = json.load(f)
    table = (tmp_path / "gpu_check.md").read_text(encoding="utf-8")
    assert table.strip() in result.stdout
    pml = importlib.util.find_spec("pytorch_metric_learning") is not None
    for backend in ("jax", "torch"):
        report = reports[backend]
        assert [row["n"] for row in report["sizes"]] == [16, 32]
        for row in report["sizes"]:
            assert row["ratio"] == pytest.approx(row["loss_ms"] / row["matmul_ms"])
            if backend == "torch" and pml:
                assert row["speedup_vs_peer"] == pytest.approx(row["peer_ms"] / row["loss_ms"])
            else:
                assert "peer_ms" not in row
        assert report["fit"]["samples"] == 256 and report["fit"]["first_epoch_s"] > 0
        assert math.isfinite(report["fit"]["final_loss"]) and report["fit"]["final_loss"] > 0
        assert f"| {backend} | " in result.stdout
    assert "skipped" in reports["jax"]["peer"]
    if pml:
        assert "SupConLoss(temperature=0.1)" in reports["torch"]["peer"]["description"]
    else:
        assert "not installed" in reports["torch"]["peer"]["skipped"]


@pytest.mark.backend_independent
def test_gpu_check_refuses_an_out_that_is_a_file(tmp_path):
    """An existing file as `--out` is refused before any backend runs, and left as it was."""
    path = tmp_path / "results"
    path.write_text("mine")
    with pytest.raises(SystemExit) as raised:
        load_gpu_check().main(["--out", str(path)])
    assert raised.value.code == 2
    assert path.read_text() == "mine"


@pytest.mark.backend_independent
def test_gpu_check_table_shows_memory_fraction_peer_and_errors():
    """Extra memory over one N x N float32 buffer, the peer's speed-up, its errors and skips."""
    gpu_check = load_gpu_check()
    fit = {
        "samples": 8,
        "batch_size": 4,
        "views": 2,
        "encoder": "MLP",
        "first_epoch_s": 1.0,
        "second_epoch_s": 0.5,
    }
    row = {"n": 1024, "loss_ms": 2.0, "matmul_ms": 1.6, "ratio": 1.25}
    row.update(loss_extra_mb=1.0, loss_extra_nn=0.25, matmul_extra_mb=8.0)
    results = {
        "torch": {
            "device": "gpu",
            "peer": {"description": "PML"},
            "sizes": [
                {**row, "peer_ms": 6.0, "peer_extra_mb": 20.0, "speedup_vs_peer": 3.0},
                {**row, "n": 65536, "peer_error": "OutOfMemoryError: CUDA out of memory"},
            ],
            "fit": fit,
        },
        "jax": {
            "device": "gpu",
            "peer": {"skipped": "torch only"},
            "sizes": [row],
            "fit": fit,
        },
    }
    lines = gpu_check.markdown(results).splitlines()
    assert lines[2] == (
        "| torch | gpu | 1024 | 2.00 | 1.60 | 1.25 | 1.00 | 0.25 | 8.00 | 6.00 | 20.00 | 3.00 |"
    )
    assert lines[3].endswith("| 8.00 | error | error | error |")
    assert lines[4].endswith("| 8.00 | – | – | – |")
    assert "- torch, N = 65536, peer: OutOfMemoryError: CUDA out of memory" in lines
    results["torch"]["peer"] = {"skipped": "pytorch-metric-learning is not installed"}
    results["torch"]["sizes"] = [row]
    results["jax"]["fit"] = {"error": "ValueError: bad"}
    lines = gpu_check.markdown(results).splitlines()
    assert lines[2].endswith("| skipped | skipped | skipped |")
    assert "- torch peer (PML) skipped: pytorch-metric-learning is not installed" in lines
    assert "- jax `ContrastiveModel.fit` failed: ValueError: bad" in lines


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"cases": ["nope"]}, "`cases` should be among"),
        ({"repeats": 0}, "`repeats` should be a positive int"),
        ({"n": 1}, "`n` should be an int >= 2"),
        ({"sizes": (1,)}, "`sizes` should be ints >= 2"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        run_speed_bench(**arguments, verbose=0)
