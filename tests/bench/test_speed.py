"""The speed benchmark's harness (quick mode; no wall-clock thresholds) and the
closed-form gradient of the optimised kernel against autodiff."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

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
from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_weights
from tests.testing import to_numpy
from tests.testing import unit_rows
from tests.testing import value_and_grad


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("speed"))
    return out, run_speed_bench(out=out, quick=True, verbose=0)


def test_quick_run_has_every_case_with_its_target(quick_run):
    _, results = quick_run
    assert list(results) == list(CASES)
    for case, entry in results.items():
        assert entry["target"] == TARGETS[case]
        assert entry["better"] == ("higher" if case.startswith("vs_") else "lower")
        assert entry["backend"] == keras.backend.backend()
        expected_n = QUICK["large_n"] if case == "supcon_16k_vs_matmul" else QUICK["n"]
        assert entry["n"] == expected_n and entry["dim"] == QUICK["dim"]
        assert entry["machine"]["cpu_count"] == os.cpu_count()
        assert entry["quick"] is True


def test_quick_run_ratios_are_positive_and_match_their_medians(quick_run):
    _, results = quick_run
    for case, entry in results.items():
        if entry.get("skipped"):
            assert entry["ratio"] is None and entry["meets_target"] is None
            assert isinstance(entry["reason"], str) and entry["reason"]
            continue
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


def test_large_case_measures_each_side_in_a_fresh_process(quick_run):
    _, results = quick_run
    entry = results["supcon_16k_vs_matmul"]
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
    assert entry["time_target_met"] == (entry["ratio"] <= TARGETS["supcon_16k_vs_matmul"])


def test_replica_case_times_a_quarter_of_the_anchors(quick_run):
    _, results = quick_run
    entry = results["dist_replica_vs_global"]
    assert entry["replicas"] == 4
    local = QUICK["n"] // 4
    assert entry["measured"].startswith(f"one replica's loss: {local} anchors x {QUICK['n']}")
    assert entry["baseline"].startswith(f"single-device loss: {QUICK['n']} anchors")
    assert "larger" not in entry  # quick mode: no 4 x N point


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
    for case in CASES:
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


def test_gpu_check_script_runs_on_the_cpu(tmp_path):
    backend = keras.backend.backend()
    if backend not in ("jax", "torch"):
        pytest.skip("scripts/gpu_check.py runs on JAX and torch")
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "gpu_check.py")
    command = [sys.executable, script, "--cpu-smoke", "--backends", backend, "--sizes", "16,32"]
    result = subprocess.run(
        command + ["--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "gpu_check.json", encoding="utf-8") as f:
        report = json.load(f)[backend]
    assert [row["n"] for row in report["sizes"]] == [16, 32]
    for row in report["sizes"]:
        assert row["ratio"] == pytest.approx(row["loss_ms"] / row["matmul_ms"])
    assert report["fit"]["samples"] == 256 and report["fit"]["first_epoch_s"] > 0
    assert math.isfinite(report["fit"]["final_loss"]) and report["fit"]["final_loss"] > 0
    assert f"| {backend} | " in result.stdout


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


# The kernel's gradient is written out by hand for speed: check it against
# autodiff of a plain masked log-softmax formulation.


def plain_supcon(z, w, temperature, normalization="count"):
    n = z.shape[-2]
    logits = ops.matmul(z, ops.swapaxes(z, -1, -2)) / temperature
    off_diagonal = ops.logical_not(ops.eye(n, dtype="bool"))
    masked = ops.where(off_diagonal, logits, -1e9)
    log_p = masked - ops.logsumexp(masked, axis=-1, keepdims=True)
    w = ops.where(off_diagonal, w, 0.0)
    if normalization == "count":
        norm = ops.sum(ops.cast(w > 0, "float32"), axis=-1)
    else:
        norm = ops.sum(w, axis=-1)
    total = -ops.sum(w * log_p, axis=-1)
    return ops.where(norm > 0, total / ops.maximum(norm, 1e-12), 0.0)


@pytest.mark.parametrize("normalization", ["count", "weight"])
@pytest.mark.parametrize("rule", ["equal", "jaccard"])
def test_kernel_gradient_matches_autodiff(normalization, rule):
    rng = np.random.default_rng(3)
    n = 24
    if rule == "equal":
        labels = rng.integers(-1, 5, size=n)
    else:
        labels = (rng.random((n, 4)) < 0.4).astype("int32")
    w = to_numpy(positive_weights(labels, rule))
    z = unit_rows(rng, n, 6)
    c = ops.convert_to_tensor(rng.normal(size=n).astype("float32"))

    def fast(x):
        return ops.sum(c * supcon_from_weights(x, w, 0.2, normalization)[0])

    def plain(x):
        return ops.sum(c * plain_supcon(x, w, 0.2, normalization))

    value, grad = value_and_grad(fast, z)
    expected_value, expected_grad = value_and_grad(plain, z)
    np.testing.assert_allclose(value, expected_value, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-5, rtol=1e-5)


def test_kernel_gradient_for_batched_heads_and_temperatures():
    rng = np.random.default_rng(4)
    heads, n = 3, 16
    z = np.stack([unit_rows(rng, n, 5) for _ in range(heads)])
    w = np.stack([to_numpy(positive_weights(rng.integers(0, 3 + h, size=n))) for h in range(heads)])
    temperatures = np.array([0.5, 0.2, 0.1], "float32")

    def fast_z(x):
        return ops.sum(supcon_from_weights(x, w, temperatures)[0])

    def plain_z(x):
        return sum(ops.sum(plain_supcon(x[h], w[h], float(temperatures[h]))) for h in range(heads))

    def fast_t(t):
        return ops.sum(supcon_from_weights(z, w, t)[0])

    def plain_t(t):
        return sum(ops.sum(plain_supcon(z[h], w[h], t[h])) for h in range(heads))

    for fast, plain, x in ((fast_z, plain_z, z), (fast_t, plain_t, temperatures)):
        value, grad = value_and_grad(fast, x)
        expected_value, expected_grad = value_and_grad(plain, x)
        np.testing.assert_allclose(value, expected_value, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(grad, expected_grad, atol=1e-4, rtol=1e-5)


def test_kernel_gradient_of_a_pair_is_zero():
    # With N = 2 every valid anchor's only other sample is its positive:
    # p = 1, the loss is identically 0 and so is its gradient.
    z = np.array([[1.0, 0.0], [0.6, 0.8]], "float32")
    w = np.ones((2, 2), "float32")
    value, grad = value_and_grad(lambda x: ops.sum(supcon_from_weights(x, w, 0.5)[0]), z)
    assert value == 0.0
    np.testing.assert_allclose(grad, np.zeros_like(z), atol=1e-7)
