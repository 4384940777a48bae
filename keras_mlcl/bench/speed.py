"""Speed benchmark: the SupCon kernel and the training step against their baselines.

Every case is a ratio of two timings taken in the same process, interleaved
round by round (so both sides see the same machine load), after warm-up, as
medians (SPEC §5):

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
`fit_step_vs_ce` uses each model's own `compile()` defaults. The timing code
is backend-specific and lives here only.
"""

import datetime
import json
import os
import platform
import time

import keras
import numpy as np
from keras import ops

from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SupCon
from keras_mlcl.models import ContrastiveModel

TARGETS = {
    "supcon_vs_matmul": 1.3,
    "heads4_vs_4x_one_head": 1.2,
    "fit_step_vs_ce": 1.15,
    "vs_pml_supcon": 2.5,
}
CASES = tuple(TARGETS)
DEFAULT_SIZES = (256, 512, 1024, 2048, 4096)
DEFAULT_REPEATS = 30
TEMPERATURE = 0.1
NUM_CLASSES = 100
WARMUP = 3
# The fit-step case: an MLP encoder large enough that the encoder dominates.
ENCODER_FEATURES = 1024
ENCODER_WIDTH = 2048
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
        "machine": machine_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    few = max(3, repeats // 3) if not quick else repeats
    steps = {"supcon_vs_matmul": 1 + len(sizes)}
    progress = keras.utils.Progbar(sum(steps.get(c, 1) for c in cases), verbose=verbose)

    results = {}
    for case in cases:
        if case == "supcon_vs_matmul":
            entry = _supcon_vs_matmul(n, dim, repeats, backend, torch_compile)
            progress.add(1)
            entry["sweep"] = []
            for size in sizes:
                entry["sweep"].append(_sweep_point(size, dim, few, backend))
                progress.add(1)
        elif case == "heads4_vs_4x_one_head":
            entry = _heads_vs_one_head(n, dim, repeats, backend, heads=4)
            progress.add(1)
        elif case == "fit_step_vs_ce":
            entry = _fit_step_vs_ce(n, dim, few, quick)
            progress.add(1)
        else:
            entry = _vs_pml_supcon(n, dim, repeats, backend)
            progress.add(1)
        results[case] = _finish(case, entry, context)
    if out is not None:
        write_results(results, out)
    return results


def machine_info():
    """The machine a run measured: CPU count, platform, library versions."""
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "keras": keras.__version__,
    }
    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module is not None:
        info[backend] = __import__(module).__version__
    if backend == "torch":
        import torch

        info["torch_threads"] = torch.get_num_threads()
    threads = {
        key: os.environ[key]
        for key in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "XLA_FLAGS")
        if key in os.environ
    }
    if threads:
        info["thread_settings"] = threads
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def write_results(results, out):
    """Writes `results` as `out/speed.json` and a Markdown table `out/speed.md`."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "speed.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, "speed.md"), "w", encoding="utf-8") as f:
        f.write(markdown_table(results))


def markdown_table(results):
    """The results as Markdown: one row per case, then the `N` sweep."""
    first = next(iter(results.values()), {})
    machine = first.get("machine", {})
    lines = [
        f"Backend `{first.get('backend')}`, N = {first.get('n')}, D = {first.get('dim')}, "
        f"{first.get('repeats')} timed rounds (medians), {first.get('date')}; machine: "
        f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}, "
        f"load average {machine.get('load_average')}.",
        "",
        "| case | ratio | target | met | measured (ms, median) | baseline (ms, median) | mode |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, entry in results.items():
        if entry.get("skipped"):
            lines.append(
                f"| `{case}` | skipped | {_target_text(entry)} | - | - | - | {entry['reason']} |"
            )
            continue
        met = "yes" if entry["meets_target"] else "no"
        lines.append(
            f"| `{case}` | {entry['ratio']:.2f} | {_target_text(entry)} | {met} | "
            f"{entry['measured_ms']:.2f} ({entry['measured']}) | "
            f"{entry['baseline_ms']:.2f} ({entry['baseline']}) | {entry.get('mode', '')} |"
        )
    for case, entry in results.items():
        for name, other in entry.get("other_modes", {}).items():
            lines.append(
                f"\n`{case}` with `{name}`: ratio {other['ratio']:.2f} "
                f"({other['measured_ms']:.2f} ms / {other['baseline_ms']:.2f} ms)."
            )
    sweep = results.get("supcon_vs_matmul", {}).get("sweep")
    if sweep:
        lines += [
            "",
            "SupCon fwd+bwd against the bare matmul fwd+bwd over the batch size "
            f"(peak memory: {sweep[0]['memory_method']}):",
            "",
            "| N | SupCon (ms) | matmul (ms) | ratio | SupCon peak (MB) | matmul peak (MB) |",
            "|---|---|---|---|---|---|",
        ]
        for point in sweep:
            lines.append(
                f"| {point['n']} | {point['loss_ms']:.2f} | {point['matmul_ms']:.2f} | "
                f"{point['ratio']:.2f} | {_mb(point['loss_peak_mb'])} | "
                f"{_mb(point['matmul_peak_mb'])} |"
            )
    return "\n".join(lines) + "\n"


def _target_text(entry):
    sign = ">=" if entry["better"] == "higher" else "<="
    return f"{sign} {entry['target']}"


def _mb(value):
    return "n/a" if value is None else f"{value:.1f}"


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


# ----------------------------------------------------------------------------
# Inputs


def _inputs(n, dim, seed=0):
    """Unit embeddings `(n, dim)`, class ids `(n,)` (two views per sample) and a cotangent."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, dim)).astype("float32")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    half = rng.integers(0, NUM_CLASSES, size=(n + 1) // 2)
    labels = np.concatenate([half, half])[:n].astype("int32")
    cotangent = rng.normal(size=(n, n)).astype("float32")
    return z, labels, cotangent


# ----------------------------------------------------------------------------
# Backend-specific runners: each returns a zero-argument callable that runs the
# forward pass and the gradient and waits for the result.


def _gradient_runner(fn, x, args, mode):
    """`fn(x, *args)` (a scalar) and its gradient with respect to `x`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(fn))
        x, args = jax.numpy.asarray(x), [jax.numpy.asarray(a) for a in args]
        return lambda: jax.block_until_ready(step(x, *args)), step, (x, *args)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(x, *args):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = fn(x, *args)
            return value, tape.gradient(value, x)

        x, args = tf.constant(x), [tf.constant(a) for a in args]
        return lambda: step(x, *args), step, (x, *args)
    import torch

    forward = torch.compile(fn) if mode == "torch.compile" else fn
    x, args = torch.as_tensor(x), [torch.as_tensor(a) for a in args]

    def run():
        leaf = x.detach().requires_grad_(True)
        value = forward(leaf, *args)
        value.backward()
        return value.detach(), leaf.grad

    return run, None, None


def _matmul_runner(z, cotangent, mode):
    """The bare `s = z @ z.T` forward and its gradient for a fixed cotangent."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def vjp(z, c):
            s, pullback = jax.vjp(lambda t: ops.matmul(t, ops.transpose(t)), z)
            return s, pullback(c)[0]

        step = jax.jit(vjp)
        z, c = jax.numpy.asarray(z), jax.numpy.asarray(cotangent)
        return lambda: jax.block_until_ready(step(z, c)), step, (z, c)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(z, c):
            with tf.GradientTape() as tape:
                tape.watch(z)
                s = ops.matmul(z, ops.transpose(z))
            return s, tape.gradient(s, z, output_gradients=c)

        z, c = tf.constant(z), tf.constant(cotangent)
        return lambda: step(z, c), step, (z, c)
    import torch

    def product(t):
        return ops.matmul(t, ops.transpose(t))

    forward = torch.compile(product) if mode == "torch.compile" else product
    z, c = torch.as_tensor(z), torch.as_tensor(cotangent)

    def run():
        leaf = z.detach().requires_grad_(True)
        s = forward(leaf)
        s.backward(c)
        return s.detach(), leaf.grad

    return run, None, None


def _default_mode(backend):
    return {"jax": "jax.jit", "tensorflow": "tf.function(jit_compile=True)"}.get(backend, "eager")


def _time_interleaved(functions, repeats, warmup=WARMUP):
    """Median seconds of each zero-argument function, timed round by round."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


# ----------------------------------------------------------------------------
# Cases


def _supcon_loss_fn():
    loss = SupCon(temperature=TEMPERATURE)
    return lambda z, labels: loss(labels, z)


def _ratio_entry(measured, baseline, measured_name, baseline_name, mode, inverse=False):
    ratio = baseline / measured if inverse else measured / baseline
    return {
        "ratio": float(ratio),
        "measured_ms": measured * 1e3,
        "baseline_ms": baseline * 1e3,
        "measured": measured_name,
        "baseline": baseline_name,
        "mode": mode,
    }


def _supcon_vs_matmul(n, dim, repeats, backend, torch_compile):
    z, labels, cotangent = _inputs(n, dim)
    modes = [_default_mode(backend)]
    if backend == "torch" and torch_compile:
        modes.append("torch.compile")
    by_mode = {}
    for mode in modes:
        loss_run, _, _ = _gradient_runner(_supcon_loss_fn(), z, [labels], mode)
        matmul_run, _, _ = _matmul_runner(z, cotangent, mode)
        medians = _time_interleaved({"loss": loss_run, "matmul": matmul_run}, repeats)
        by_mode[mode] = _ratio_entry(
            medians["loss"],
            medians["matmul"],
            f"SupCon(temperature={TEMPERATURE}) fwd+bwd",
            "z @ z.T fwd+bwd",
            mode,
        )
    best = min(by_mode, key=lambda m: by_mode[m]["ratio"])
    entry = dict(by_mode[best])
    others = {m: e for m, e in by_mode.items() if m != best}
    if others:
        entry["other_modes"] = others
    return entry


def _sweep_point(size, dim, repeats, backend):
    z, labels, cotangent = _inputs(size, dim, seed=size)
    mode = _default_mode(backend)
    loss_run, loss_step, loss_args = _gradient_runner(_supcon_loss_fn(), z, [labels], mode)
    matmul_run, matmul_step, matmul_args = _matmul_runner(z, cotangent, mode)
    medians = _time_interleaved({"loss": loss_run, "matmul": matmul_run}, repeats, warmup=2)
    method, loss_peak = _peak_memory_mb(loss_run, loss_step, loss_args)
    _, matmul_peak = _peak_memory_mb(matmul_run, matmul_step, matmul_args)
    return {
        "n": size,
        "loss_ms": medians["loss"] * 1e3,
        "matmul_ms": medians["matmul"] * 1e3,
        "ratio": medians["loss"] / medians["matmul"],
        "loss_peak_mb": loss_peak,
        "matmul_peak_mb": matmul_peak,
        "memory_method": method,
        "mode": mode,
    }


def _heads_vs_one_head(n, dim, repeats, backend, heads=4):
    z, labels, _ = _inputs(n, dim)
    rng = np.random.default_rng(1)
    names = [f"head_{h}" for h in range(heads)]
    # Coarser levels for the other heads: class ids of the finest level, grouped.
    groups = [max(2, NUM_CLASSES // (4**h)) for h in range(heads)]
    levels = np.stack([labels % g for g in groups])
    temperatures = np.linspace(0.5, TEMPERATURE, heads)
    many = MultiLevelSupCon(
        heads={
            name: {"temperature": float(t), "positives": "equal"}
            for name, t in zip(names, temperatures, strict=True)
        }
    )
    one = MultiLevelSupCon(heads={names[0]: {"temperature": TEMPERATURE}})
    zs = np.stack([z] + [_unit(rng.normal(size=z.shape)) for _ in range(heads - 1)])

    def many_fn(stacked, level_ids):
        y_pred = {name: stacked[h] for h, name in enumerate(names)}
        y_true = {name: level_ids[h] for h, name in enumerate(names)}
        return many(y_true, y_pred)

    def one_fn(embeddings, ids):
        return one({names[0]: ids}, {names[0]: embeddings})

    mode = _default_mode(backend)
    many_run, _, _ = _gradient_runner(many_fn, zs, [levels.astype("int32")], mode)
    one_run, _, _ = _gradient_runner(one_fn, z, [labels], mode)
    medians = _time_interleaved({"many": many_run, "one": one_run}, repeats)
    entry = _ratio_entry(
        medians["many"],
        heads * medians["one"],
        f"MultiLevelSupCon, {heads} heads, fwd+bwd",
        f"{heads} x MultiLevelSupCon, 1 head, fwd+bwd",
        mode,
    )
    entry["one_head_ms"] = medians["one"] * 1e3
    entry["heads"] = heads
    return entry


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


def _fit_step_vs_ce(n, dim, repeats, quick):
    """One `train_on_batch` of each model; both encoders see `n` rows a step."""
    features = QUICK["features"] if quick else ENCODER_FEATURES
    width = QUICK["width"] if quick else ENCODER_WIDTH
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, features)).astype("float32")
    fine = rng.integers(0, NUM_CLASSES, size=n).astype("int32")
    coarse = (fine // 10).astype("int32")
    half = n // 2

    def encoder():
        return keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(width, activation="relu"),
                keras.layers.Dense(width, activation="relu"),
                keras.layers.Dense(dim),
            ]
        )

    classifier = keras.Sequential([encoder(), keras.layers.Dense(NUM_CLASSES)])
    classifier.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    contrastive = ContrastiveModel(
        encoder(), heads={"coarse": dim, "fine": dim}, views=2, name="contrastive"
    )
    contrastive.compile(optimizer="adam")
    y_contrastive = {"coarse": coarse[:half], "fine": fine[:half]}
    medians = _time_interleaved(
        {
            "contrastive": lambda: contrastive.train_on_batch(x[:half], y_contrastive),
            "ce": lambda: classifier.train_on_batch(x, fine),
        },
        repeats,
        warmup=2,
    )
    entry = _ratio_entry(
        medians["contrastive"],
        medians["ce"],
        f"ContrastiveModel step: {half} samples x 2 views, heads coarse+fine",
        f"CE classifier step: {n} samples",
        f"train_on_batch, jit_compile={contrastive.jit_compile}",
    )
    entry["encoder"] = f"MLP {features}-{width}-{width}-{dim}"
    return entry


def _vs_pml_supcon(n, dim, repeats, backend):
    if backend != "torch":
        return {
            "ratio": None,
            "skipped": True,
            "reason": f"pytorch-metric-learning needs the torch backend (active: {backend})",
        }
    try:
        import pytorch_metric_learning
        from pytorch_metric_learning.losses import SupConLoss
    except ImportError:
        return {
            "ratio": None,
            "skipped": True,
            "reason": "pytorch-metric-learning is not installed",
        }
    z, labels, _ = _inputs(n, dim)
    peer = SupConLoss(temperature=TEMPERATURE)
    ours_run, _, _ = _gradient_runner(_supcon_loss_fn(), z, [labels], "eager")
    peer_run, _, _ = _gradient_runner(lambda z, y: peer(z, y), z, [labels], "eager")
    medians = _time_interleaved({"ours": ours_run, "peer": peer_run}, repeats)
    entry = _ratio_entry(
        medians["ours"],
        medians["peer"],
        f"keras_mlcl SupCon(temperature={TEMPERATURE}) fwd+bwd",
        f"pytorch-metric-learning {pytorch_metric_learning.__version__} "
        f"SupConLoss(temperature={TEMPERATURE}) fwd+bwd",
        "eager",
        inverse=True,
    )
    return entry


# ----------------------------------------------------------------------------
# Peak memory


def _peak_memory_mb(run, step, args):
    """`(method, MB)`: the peak memory of one call, as well as the backend can tell."""
    backend = keras.backend.backend()
    if backend == "jax" and step is not None:
        stats = step.lower(*args).compile().memory_analysis()
        if stats is not None:
            total = (
                stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
            )
            return "XLA buffer assignment (arguments + outputs + temporaries)", total / 2**20
    if backend == "torch":
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            run()
        # Allocations count at the start of the op that made them (its own,
        # children excluded), frees as "[memory]" events when they happen.
        events = sorted(
            (e for e in profiler.events() if e.self_cpu_memory_usage != 0),
            key=lambda e: e.time_range.start,
        )
        current = peak = 0
        for event in events:
            current += event.self_cpu_memory_usage
            peak = max(peak, current)
        return "torch profiler, bytes allocated during the call", peak / 2**20
    # TensorFlow keeps no CPU allocator statistics, and the process's resident
    # set does not grow once its allocator holds the buffers: no honest number.
    return "not measured on this backend (no CPU allocator statistics)", None
