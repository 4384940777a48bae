"""Speed benchmark: the SupCon kernel and the training step against their baselines.

Every case is a ratio of two timings taken in the same process, interleaved
round by round (so both sides see the same machine load), after warm-up, as
medians:

| case | ratio | target |
|---|---|---|
| `supcon_vs_matmul` | SupCon fwd+bwd / bare `z @ z.T` fwd+bwd | <= 1.3 |
| `heads4_vs_4x_one_head` | 4-head `MultiLevelSupCon` / (4 x one head) | <= 1.2 |
| `fit_step_vs_ce` | `ContrastiveModel` train step / CE classifier step | <= 1.15 |
| `vs_pml_supcon` | pytorch-metric-learning `SupConLoss` / ours (torch) | >= 2.5 |

Cases named `vs_*` are speed-ups over a peer (higher is better); the others
are cost ratios (lower is better). `supcon_vs_matmul` also holds a sweep over
the batch size `N` with the peak memory of the loss.

The measured functions are compiled the way each backend runs fastest:
`jax.jit` on JAX, `tf.function(jit_compile=True)` (XLA) on TensorFlow; on
PyTorch eager, and for `supcon_vs_matmul` also `torch.compile` (outside
`quick` mode; the faster of the two is the case's ratio, both are recorded).
`fit_step_vs_ce` uses each model's own `compile()` defaults. The cases live in
`keras_mlcl.bench.speed_cases`, the backend-specific timing in
`keras_mlcl.bench.timing`, the Markdown in `keras_mlcl.bench.report`.
"""

import datetime

import keras

from keras_mlcl.bench import speed_cases
from keras_mlcl.bench.machine import machine_description
from keras_mlcl.bench.report import write_speed_results

TARGETS = {
    "supcon_vs_matmul": 1.3,
    "heads4_vs_4x_one_head": 1.2,
    "fit_step_vs_ce": 1.15,
    "vs_pml_supcon": 2.5,
}
CASES = tuple(TARGETS)
DEFAULT_SIZES = (256, 512, 1024, 2048, 4096)
DEFAULT_REPEATS = 30
QUICK = {"n": 64, "dim": 16, "sizes": (32, 64), "repeats": 2, "features": 32, "width": 32}


def run_speed_bench(
    out=None,
    cases=None,
    sizes=DEFAULT_SIZES,
    repeats=DEFAULT_REPEATS,
    quick=False,
    n=1024,
    dim=128,
    torch_compile=None,
    verbose=1,
):
    """Runs the speed cases on the active backend and writes `speed.json`/`speed.md`.

    Args:
        out: folder for `speed.json` and `speed.md`, created if needed.
            Defaults to None (nothing written).
        cases: names among `CASES`. Defaults to all of them;
            `vs_pml_supcon` is reported as skipped (with the reason) off the
            torch backend or without pytorch-metric-learning.
        sizes: batch sizes `N` of the sweep in `supcon_vs_matmul`.
        repeats: timed rounds per function (medians are reported); the
            fit-step case and the sweep use a third of them (at least 3).
        quick: a smoke run (small `N`, `D`, sizes and encoder, 2 rounds,
            no `torch.compile`): checks the harness, not the speed.
        n: batch size `N` (all views) of the kernel cases. Defaults to 1024.
        dim: embedding size `D`. Defaults to 128.
        torch_compile: also time `torch.compile` in `supcon_vs_matmul` on
            torch. Defaults to `not quick`.
        verbose: 1 shows a Keras progress bar, 0 nothing.

    Returns:
        A dict `{case: {"ratio": float or None, "target": float,
        "better": "lower" | "higher", "meets_target": bool or None, ...}}`
        with the medians in ms, the backend, `N`, `D`, repeats and the
        machine beside each ratio; a skipped case has `"skipped": True`,
        `"reason"` and `"ratio": None`.

    Example:

    >>> results = run_speed_bench(out="bench_speed", quick=True)
    >>> results["supcon_vs_matmul"]["ratio"]
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
    if torch_compile is None:
        torch_compile = not quick
    backend = keras.backend.backend()
    context = {
        "backend": backend,
        "n": n,
        "dim": dim,
        "repeats": repeats,
        "quick": bool(quick),
        "machine": machine_description(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    few = max(3, repeats // 3) if not quick else repeats
    steps = {"supcon_vs_matmul": 1 + len(sizes)}
    progress = keras.utils.Progbar(sum(steps.get(c, 1) for c in cases), verbose=verbose)

    results = {}
    for case in cases:
        if case == "supcon_vs_matmul":
            entry = speed_cases.supcon_vs_matmul(n, dim, repeats, backend, torch_compile)
            progress.add(1)
            entry["sweep"] = []
            for size in sizes:
                entry["sweep"].append(speed_cases.sweep_point(size, dim, few, backend))
                progress.add(1)
        elif case == "heads4_vs_4x_one_head":
            entry = speed_cases.heads_vs_one_head(n, dim, repeats, backend, heads=4)
            progress.add(1)
        elif case == "fit_step_vs_ce":
            size = {"features": QUICK["features"], "width": QUICK["width"]} if quick else {}
            entry = speed_cases.fit_step_vs_ce(n, dim, few, **size)
            progress.add(1)
        else:
            entry = speed_cases.vs_pml_supcon(n, dim, repeats, backend)
            progress.add(1)
        results[case] = _finish(case, entry, context)
    if out is not None:
        write_speed_results(results, out)
    return results


def _finish(case, entry, context):
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
    return {
        "ratio": ratio,
        "target": target,
        "better": better,
        "meets_target": met,
        **entry,
        **context,
    }
