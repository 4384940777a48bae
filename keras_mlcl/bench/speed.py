"""Speed benchmark: the SupCon kernel and the training step against their baselines.

Every case is a ratio of two timings taken in the same process, interleaved
round by round (so both sides see the same machine load), after warm-up, as
medians:

| case | ratio | target |
|---|---|---|
| `supcon_vs_matmul` | SupCon fwd+bwd / bare `z @ z.T` fwd+bwd | <= 1.3 |
| `supcon_16k_vs_matmul` | the same at N = 16384; and extra memory | <= 1.5, <= 256 MB |
| `dist_replica_vs_global` | one of 4 replicas' loss / the single-device loss | <= 0.4 |
| `heads4_vs_4x_one_head` | 4-head `MultiLevelSupCon` / (4 x one head) | <= 1.2 |
| `fit_step_vs_ce` | `ContrastiveModel` train step / CE classifier step | <= 1.15 |
| `vs_pml_supcon` | pytorch-metric-learning `SupConLoss` / ours (torch) | >= 2.5 |
| `vs_sklearn_knn` | scikit-learn brute-force cosine kNN / our `knn_accuracy` | >= 3 |

Cases named `vs_*` are speed-ups over a peer (higher is better); the others
are cost ratios (lower is better). `vs_sklearn_knn` classifies 5,000
queries against 50,000 references of 128 dims with k = 20 (`KNN_SIZES`;
`quick`: `n` queries against `16 * n` references of `dim` dims), in a tenth
of the rounds (at least 3). `supcon_vs_matmul` also holds a sweep over
the batch size `N` (fewer rounds above N = 2048) with the peak memory of the
loss and of the matmul.

Extra memory (`supcon_16k_vs_matmul` and the sweep) is measured in fresh
processes, one per side, each running only that side after the same warm-up
(`keras_mlcl.bench.speed_cases.side_peak_rss_mb`): a baseline process that
makes the inputs and runs a fwd+bwd of `sum(z * z)`, a matmul process and a
loss process. The loss's extra memory is its peak resident set minus the
baseline's; the target is a quarter of one `N x N` float32 buffer (256 MB at
N = 16384). The matmul process's extra memory (its `N x N` product and
cotangent) is reported beside it. The memory target counts in `meets_target`
together with the time ratio.

The measured functions are compiled the way each backend runs fastest:
`jax.jit` on JAX, `tf.function(jit_compile=True)` (XLA) on TensorFlow; on
PyTorch eager, and for `supcon_vs_matmul` also `torch.compile` (outside
`quick` mode; the faster of the two is the case's ratio, both are recorded).
`fit_step_vs_ce` uses each model's own `compile()` defaults. The cases live in
`keras_mlcl.bench.speed_cases`, the backend-specific runners in
`keras_mlcl.bench.backend`, the Markdown in `keras_mlcl.bench.report`.
"""

import datetime
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

import keras

from keras_mlcl.bench import speed_cases
from keras_mlcl.bench.machine import machine_description
from keras_mlcl.bench.report import write_speed_results
from keras_mlcl.experiments.run_folder import check_target

TARGETS = {
    "supcon_vs_matmul": 1.3,
    "supcon_16k_vs_matmul": 1.5,
    "dist_replica_vs_global": 0.4,
    "heads4_vs_4x_one_head": 1.2,
    "fit_step_vs_ce": 1.15,
    "vs_pml_supcon": 2.5,
    "vs_sklearn_knn": 3.0,
}
# Extra memory of the loss over the baseline process, as a fraction of one
# N x N float32 buffer: a quarter, 256 MB at N = 16384.
MEMORY_TARGETS = {"supcon_16k_vs_matmul": 0.25}
CASES = tuple(TARGETS)
DEFAULT_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
DEFAULT_REPEATS = 30
LARGE_N = 16384
REPLICAS = 4
KNN_SIZES = {"queries": 5000, "references": 50000, "dim": 128, "k": 20}
QUICK: dict[str, Any] = {
    "n": 64,
    "dim": 16,
    "sizes": (32, 64),
    "repeats": 2,
    "features": 32,
    "width": 32,
    "large_n": 256,
}


def run_speed_bench(
    out: str | None = None,
    cases: Iterable[str] | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    repeats: int = DEFAULT_REPEATS,
    quick: bool = False,
    n: int = 1024,
    dim: int = 128,
    torch_compile: bool | None = None,
    verbose: int = 1,
    overwrite: bool = False,
) -> dict[str, dict[str, Any]]:
    """Runs the speed cases on the active backend and writes `speed.json`/`speed.md`.

    Args:
        out: run folder for `speed.json`, `speed.md` and the sweep's plot: new, empty, or
            (with `overwrite`) an earlier keras-mlcl run; checked before any case runs, and
            written beside, then moved there (`keras_mlcl.experiments.run_folder`).
            Defaults to None (nothing written).
        cases: names among `CASES`. Defaults to all of them;
            `vs_pml_supcon` is reported as skipped (with the reason) off the
            torch backend or without pytorch-metric-learning.
        sizes: batch sizes `N` of the sweep in `supcon_vs_matmul`.
        repeats: timed rounds per function (medians are reported); the
            fit-step case and the sweep use a third of them (at least 3),
            the sweep fewer above N = 2048 (`sweep_repeats`) and
            `supcon_16k_vs_matmul` a tenth (at least 2).
        quick: a smoke run (small `N`, `D`, sizes and encoder, 2 rounds,
            no `torch.compile`, `supcon_16k_vs_matmul` at N = 256, no
            fresh-process memory in the sweep): checks the harness, not the
            speed.
        n: batch size `N` (all views) of the kernel cases. Defaults to 1024;
            `dist_replica_vs_global` also runs at `4 * n` outside `quick`
            mode, `supcon_16k_vs_matmul` always runs at N = 16384.
        dim: embedding size `D`. Defaults to 128.
        torch_compile: also time `torch.compile` in `supcon_vs_matmul` on
            torch. Defaults to `not quick`.
        verbose: 1 shows a Keras progress bar, 0 nothing.
        overwrite: whether a finished earlier run in `out` may be replaced. Defaults to False.

    Returns:
        A dict `{case: {"ratio": float or None, "target": float,
        "better": "lower" | "higher", "meets_target": bool or None, ...}}`
        with the medians in ms, the backend, `N`, `D`, repeats and the
        machine beside each ratio; a skipped case has `"skipped": True`,
        `"reason"` and `"ratio": None`.

    Example:

    >>> results = run_speed_bench(cases=["dist_replica_vs_global"], quick=True, verbose=0)
    >>> entry = results["dist_replica_vs_global"]
    >>> entry["target"], entry["better"], entry["ratio"] > 0
    (0.4, 'lower', True)
    """
    cases = list(CASES) if cases is None else list(cases)
    unknown = [c for c in cases if c not in TARGETS]
    if unknown:
        raise ValueError(f"`cases` should be among {list(CASES)}. Received unknown cases {unknown}")
    if quick:
        n, dim, sizes = QUICK["n"], QUICK["dim"], QUICK["sizes"]
        repeats = min(repeats, QUICK["repeats"])
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` should be a positive int. Received: `repeats`={repeats!r}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"`n` should be an int >= 2. Received: `n`={n!r}")
    sizes = tuple(int(s) for s in sizes)
    if any(s < 2 for s in sizes):
        raise ValueError(f"`sizes` should be ints >= 2. Received: `sizes`={sizes}")
    if out is not None:
        check_target(out, overwrite=overwrite)
    if torch_compile is None:
        torch_compile = not quick
    backend = keras.backend.backend()
    context: dict[str, Any] = {
        "backend": backend,
        "n": n,
        "dim": dim,
        "repeats": repeats,
        "quick": bool(quick),
        "machine": machine_description(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    few = max(3, repeats // 3) if not quick else repeats
    large_n = QUICK["large_n"] if quick else LARGE_N
    steps = {"supcon_vs_matmul": 1 + len(sizes)}
    progress = keras.utils.Progbar(sum(steps.get(c, 1) for c in cases), verbose=verbose)

    results: dict[str, dict[str, Any]] = {}
    for case in cases:
        if case == "supcon_vs_matmul":
            entry = speed_cases.supcon_vs_matmul(n, dim, repeats, torch_compile)
            progress.add(1)
            entry["sweep"] = []
            for size in sizes:
                point = speed_cases.sweep_point(size, dim, few, not quick)
                entry["sweep"].append(point)
                progress.add(1)
        elif case == "supcon_16k_vs_matmul":
            rounds = repeats if quick else max(2, repeats // 10)
            memory = _sweep_memory(results, large_n)
            entry = speed_cases.supcon_large_vs_matmul(large_n, dim, rounds, memory)
            progress.add(1)
        elif case == "dist_replica_vs_global":
            larger = None if quick else 4 * n
            entry = speed_cases.replica_vs_global(n, dim, repeats, REPLICAS, larger)
            progress.add(1)
        elif case == "heads4_vs_4x_one_head":
            entry = speed_cases.heads_vs_one_head(n, dim, repeats, heads=4)
            progress.add(1)
        elif case == "fit_step_vs_ce":
            size = {"features": QUICK["features"], "width": QUICK["width"]} if quick else {}
            entry = speed_cases.fit_step_vs_ce(n, dim, few, **size)
            progress.add(1)
        elif case == "vs_pml_supcon":
            entry = speed_cases.vs_pml_supcon(n, dim, repeats)
            progress.add(1)
        else:
            sizes_knn = (
                dict(KNN_SIZES, queries=n, references=16 * n, dim=dim) if quick else KNN_SIZES
            )
            rounds = repeats if quick else max(3, repeats // 10)
            entry = speed_cases.vs_sklearn_knn(
                sizes_knn["queries"],
                sizes_knn["references"],
                sizes_knn["dim"],
                sizes_knn["k"],
                rounds,
            )
            progress.add(1)
        results[case] = _finish(case, entry, context)
    if out is not None:
        write_speed_results(results, out, overwrite=overwrite)
    return results


def _sweep_memory(results: dict[str, dict[str, Any]], n: int) -> dict[str, Any] | None:
    """The fresh-process memory of the sweep's point at `n` when this run measured it."""
    for point in results.get("supcon_vs_matmul", {}).get("sweep", []):
        if point["n"] == n and "rss_mb" in point:
            keys = ("rss_mb", "loss_extra_mb", "matmul_extra_mb", "loss_minus_matmul_mb")
            return {key: point[key] for key in keys}
    return None


def _finish(case: str, entry: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Adds target, direction, verdict and the run's context to a case entry."""
    better = "higher" if case.startswith("vs_") else "lower"
    target = TARGETS[case]
    ratio = entry.get("ratio")
    if ratio is None:
        met = None
    elif better == "higher":
        met = bool(ratio >= target)
    else:
        met = bool(ratio <= target)
    memory = {}
    if case in MEMORY_TARGETS:
        memory_target = MEMORY_TARGETS[case] * entry["n"] ** 2 * 4 / 2**20
        memory_met = bool(entry["loss_extra_mb"] <= memory_target)
        memory = {
            "time_target_met": met,
            "memory_target_mb": memory_target,
            "memory_target_met": memory_met,
        }
        met = met and memory_met
    # The case's own `n` and `repeats` (a case may run at another size) win over the run's.
    return {
        **context,
        "ratio": ratio,
        "target": target,
        "better": better,
        "meets_target": met,
        **memory,
        **entry,
    }
