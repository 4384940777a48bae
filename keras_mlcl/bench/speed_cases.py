"""The speed bench's cases: each times a measured function against its baseline.

Every case returns an entry with the `ratio` of the two medians, both medians in ms, what was
measured and the compilation mode; `keras_mlcl.bench.speed` adds the target and the verdict.

The backend-specific parts (the compiled steps, the in-process peak memory, the peer library)
come from `keras_mlcl.bench.backend`. Peak memory is read two ways: in-process
(`peak_memory_mb`: XLA's buffer assignment on JAX, the profiler's allocations on torch) and
as the peak resident set of a fresh process that runs one side only (`side_peak_rss_mb`),
which every backend supports.
"""

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_mlcl.bench.backend import default_mode
from keras_mlcl.bench.backend import gradient_runner
from keras_mlcl.bench.backend import matmul_runner
from keras_mlcl.bench.backend import optional_modes
from keras_mlcl.bench.backend import peak_memory_mb
from keras_mlcl.bench.backend import supcon_peer
from keras_mlcl.bench.timing import time_interleaved
from keras_mlcl.evaluation import knn_accuracy
from keras_mlcl.evaluation.multilabel_metrics import check_train_test
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SupCon
from keras_mlcl.models import ContrastiveModel
from keras_mlcl.ops import supcon_from_labels
from keras_mlcl.utils.types import Tensor

TEMPERATURE = 0.1
NUM_CLASSES = 100
# The fit-step case: an MLP encoder large enough that the encoder dominates.
ENCODER_FEATURES = 1024
ENCODER_WIDTH = 2048


def _inputs(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings `(n, dim)` and class ids `(n,)` (two views per sample)."""
    rng = np.random.default_rng(seed)
    z = _unit(rng.normal(size=(n, dim)))
    half = rng.integers(0, NUM_CLASSES, size=(n + 1) // 2)
    labels = np.concatenate([half, half])[:n].astype("int32")
    return z, labels


def _cotangent(n: int, seed: int = 0) -> np.ndarray:
    """A fixed `(n, n)` float32 cotangent for the bare matmul's backward pass."""
    return np.random.default_rng(seed + 1).standard_normal((n, n), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of `x` scaled to unit norm, as float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


def _supcon_loss_fn() -> Callable[[Tensor, Tensor], Tensor]:
    """`SupCon(temperature=TEMPERATURE)` as `fn(z, labels)`, the form the runners take."""
    loss = SupCon(temperature=TEMPERATURE)
    return lambda z, labels: loss(labels, z)


def _ratio_entry(
    measured: float,
    baseline: float,
    measured_name: str,
    baseline_name: str,
    mode: str,
    inverse: bool = False,
) -> dict[str, Any]:
    """A case's entry from two medians (seconds): the ratio (`baseline / measured` when
    `inverse`), both in ms, what they timed and the compilation mode."""
    ratio = baseline / measured if inverse else measured / baseline
    return {
        "ratio": float(ratio),
        "measured_ms": measured * 1e3,
        "baseline_ms": baseline * 1e3,
        "measured": measured_name,
        "baseline": baseline_name,
        "mode": mode,
    }


def supcon_vs_matmul(n: int, dim: int, repeats: int, torch_compile: bool) -> dict[str, Any]:
    """SupCon fwd+bwd against the bare `z @ z.T` fwd+bwd; with `torch_compile`, on torch,
    also under `torch.compile` (the backend's `optional_modes`), and the faster mode counts."""
    z, labels = _inputs(n, dim)
    cotangent = _cotangent(n)
    modes = [default_mode(), *(optional_modes() if torch_compile else [])]
    by_mode = {}
    for mode in modes:
        loss_run, _, _ = gradient_runner(_supcon_loss_fn(), z, [labels], mode)
        matmul_run, _, _ = matmul_runner(z, cotangent, mode)
        medians = time_interleaved({"loss": loss_run, "matmul": matmul_run}, repeats)
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


def sweep_repeats(size: int, repeats: int) -> int:
    """Timed rounds at batch size `size`: `repeats` up to N = 2048, fewer above (at least 2)."""
    return max(2, min(repeats, round(repeats * 2048 / size)))


def sweep_point(size: int, dim: int, repeats: int, fresh_processes: bool = True) -> dict[str, Any]:
    """SupCon and the bare matmul at batch size `size`: medians, ratio and peak memory.

    The peak memory is given in-process (`*_peak_mb`, see `peak_memory_mb`) and, with
    `fresh_processes`, as the peak resident set of a fresh process per side
    (`rss_mb`, see `side_peak_rss_mb`).
    """
    z, labels = _inputs(size, dim, seed=size)
    mode = default_mode()
    loss_run, loss_step, loss_args = gradient_runner(_supcon_loss_fn(), z, [labels], mode)
    matmul_run, matmul_step, matmul_args = matmul_runner(z, _cotangent(size, seed=size), mode)
    medians = time_interleaved(
        {"loss": loss_run, "matmul": matmul_run},
        sweep_repeats(size, repeats),
        warmup=2 if size <= 4096 else 1,
    )
    method, loss_peak = peak_memory_mb(loss_run, loss_step, loss_args)
    _, matmul_peak = peak_memory_mb(matmul_run, matmul_step, matmul_args)
    del loss_run, loss_step, loss_args, matmul_run, matmul_step, matmul_args
    point: dict[str, Any] = {
        "n": size,
        "repeats": sweep_repeats(size, repeats),
        "loss_ms": medians["loss"] * 1e3,
        "matmul_ms": medians["matmul"] * 1e3,
        "ratio": medians["loss"] / medians["matmul"],
        "loss_peak_mb": loss_peak,
        "matmul_peak_mb": matmul_peak,
        "memory_method": method,
        "mode": mode,
    }
    if fresh_processes:
        point.update(_fresh_process_memory(size, dim))
    return point


def supcon_large_vs_matmul(
    n: int, dim: int, repeats: int, memory: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SupCon fwd+bwd against the bare matmul fwd+bwd at a large `n`: time and extra memory.

    The time ratio is taken in this process (interleaved medians); the memory in fresh
    processes, one per side, see `side_peak_rss_mb`, unless `memory` holds them already (the
    sweep's point at the same `n` and inputs). The loss's extra memory is its peak resident
    set minus the baseline's.
    """
    z, labels = _inputs(n, dim, seed=n)
    mode = default_mode()
    loss_run, _, _ = gradient_runner(_supcon_loss_fn(), z, [labels], mode)
    matmul_run, _, _ = matmul_runner(z, _cotangent(n, seed=n), mode)
    medians = time_interleaved({"loss": loss_run, "matmul": matmul_run}, repeats, warmup=1)
    del loss_run, matmul_run
    entry = _ratio_entry(
        medians["loss"],
        medians["matmul"],
        f"SupCon(temperature={TEMPERATURE}) fwd+bwd, {NUM_CLASSES} classes",
        "z @ z.T fwd+bwd",
        mode,
    )
    entry.update(n=n, repeats=repeats, **(memory or _fresh_process_memory(n, dim)))
    return entry


def replica_vs_global(
    n: int, dim: int, repeats: int, replicas: int = 4, larger_n: int | None = None
) -> dict[str, Any]:
    """One replica's loss (its `n / replicas` anchors against all `n` candidates) over the
    single-device loss of all `n` anchors, both fwd+bwd with respect to the embeddings.

    The single-device loss gets the batch as one tensor in both roles, as the loss classes
    pass it (torch's kernel then takes one matmul for its gradient, see
    `keras_mlcl.backend.torch_supcon`); a replica's anchors are never its candidates.

    With `larger_n`, the same ratio at that batch size is added under `"larger"`.
    """
    entry = _replica_ratio(n, dim, repeats, replicas)
    entry["n"] = n
    entry["replicas"] = replicas
    if larger_n is not None:
        larger = _replica_ratio(larger_n, dim, max(3, repeats // 3), replicas)
        entry["larger"] = {"n": larger_n, **larger}
    return entry


def _replica_ratio(n: int, dim: int, repeats: int, replicas: int) -> dict[str, Any]:
    """The ratio of `replica_vs_global` at one batch size `n`."""
    if n % replicas:
        raise ValueError(f"`n` should be a multiple of `replicas` ({replicas}). Received: `n`={n}")
    z, labels = _inputs(n, dim)
    local = n // replicas

    def replica_loss(z: Tensor, labels: Tensor) -> Tensor:
        loss, valid = supcon_from_labels(
            z[:local], z, labels[:local], labels, TEMPERATURE, anchor_offset=0
        )
        return _mean_over_valid(loss, valid)

    def global_loss(z: Tensor, labels: Tensor) -> Tensor:
        loss, valid = supcon_from_labels(z, z, labels, labels, TEMPERATURE)
        return _mean_over_valid(loss, valid)

    mode = default_mode()
    replica_run, _, _ = gradient_runner(replica_loss, z, [labels], mode)
    global_run, _, _ = gradient_runner(global_loss, z, [labels], mode)
    medians = time_interleaved({"replica": replica_run, "global": global_run}, repeats)
    return _ratio_entry(
        medians["replica"],
        medians["global"],
        f"one replica's loss: {local} anchors x {n} gathered candidates, fwd+bwd",
        f"single-device loss: {n} anchors x {n} candidates, fwd+bwd",
        mode,
    )


def _mean_over_valid(loss: Tensor, valid: Tensor) -> Tensor:
    """The mean of `loss` over the anchors that are `valid`."""
    valid = ops.cast(valid, loss.dtype)
    return ops.sum(loss * valid) / ops.maximum(ops.sum(valid), 1.0)


MEMORY_SIDES = ("baseline", "matmul", "loss")


def _fresh_process_memory(n: int, dim: int) -> dict[str, Any]:
    """The peak resident set of each side in its own fresh process, and the differences."""
    peaks = {side: side_peak_rss_mb(side, n, dim) for side in MEMORY_SIDES}
    return {
        "rss_mb": peaks,
        "loss_extra_mb": peaks["loss"] - peaks["baseline"],
        "matmul_extra_mb": peaks["matmul"] - peaks["baseline"],
        "loss_minus_matmul_mb": peaks["loss"] - peaks["matmul"],
    }


def side_peak_rss_mb(side: str, n: int, dim: int) -> float:
    """The peak resident set (MB) of a fresh Python process that runs one side, on this backend.

    Every side's process imports Keras and keras-mlcl, makes the same inputs (`z` `(n, dim)`
    and the labels) and runs, compiled the same way as the timings, a fwd+bwd of
    `sum(z * z)` (so the runtime, its thread pools and the compiler are loaded); then:

    - `"baseline"`: nothing more;
    - `"matmul"`: twice the bare `z @ z.T` fwd+bwd (it also holds its `(n, n)` cotangent);
    - `"loss"`: twice the `SupCon` fwd+bwd.

    Args:
        side: one of `MEMORY_SIDES`.
        n: batch size.
        dim: embedding size.

    Returns:
        The child's peak resident set size in MB (`VmHWM` on Linux).
    """
    if side not in MEMORY_SIDES:
        raise ValueError(f"`side` should be one of {MEMORY_SIDES}. Received: `side`={side!r}")
    code = (
        "from keras_mlcl.bench.speed_cases import run_memory_side; "
        f"run_memory_side({side!r}, {int(n)}, {int(dim)})"
    )
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"The {side!r} memory process (n={n}, dim={dim}) failed with exit code "
            f"{result.returncode}:\n{result.stderr[-3000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def run_memory_side(side: str, n: int, dim: int) -> None:
    """The body of `side_peak_rss_mb`'s child process: runs `side` and prints its peak RSS."""
    mode = default_mode()
    z, labels = _inputs(n, dim, seed=n)
    warm_run, _, _ = gradient_runner(lambda x, y: ops.sum(x * x), z, [labels], mode)
    warm_run()
    if side == "matmul":
        run, _, _ = matmul_runner(z, _cotangent(n, seed=n), mode)
    elif side == "loss":
        run, _, _ = gradient_runner(_supcon_loss_fn(), z, [labels], mode)
    else:
        run = warm_run
    run()
    run()
    print(json.dumps({"side": side, "n": n, "dim": dim, "peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's peak resident set in MB.

    On Linux, `VmHWM` of `/proc/self/status`: `getrusage`'s `ru_maxrss` is carried over
    `execve` from the forked parent, so a child of a large process would report the parent's
    size. Elsewhere, `ru_maxrss` (bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def heads_vs_one_head(n: int, dim: int, repeats: int, heads: int = 4) -> dict[str, Any]:
    """A `heads`-head `MultiLevelSupCon` against `heads` times a one-head one."""
    z, labels = _inputs(n, dim)
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

    def many_fn(stacked: Tensor, level_ids: Tensor) -> Tensor:
        y_pred = {name: stacked[h] for h, name in enumerate(names)}
        y_true = {name: level_ids[h] for h, name in enumerate(names)}
        return many(y_true, y_pred)

    def one_fn(embeddings: Tensor, ids: Tensor) -> Tensor:
        return one({names[0]: ids}, {names[0]: embeddings})

    mode = default_mode()
    many_run, _, _ = gradient_runner(many_fn, zs, [levels.astype("int32")], mode)
    one_run, _, _ = gradient_runner(one_fn, z, [labels], mode)
    medians = time_interleaved({"many": many_run, "one": one_run}, repeats)
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


def fit_step_vs_ce(
    n: int, dim: int, repeats: int, features: int = ENCODER_FEATURES, width: int = ENCODER_WIDTH
) -> dict[str, Any]:
    """One `train_on_batch` of each model; both encoders see `n` rows a step.

    The encoders are MLPs `features`-`width`-`width`-`dim`.
    """
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, features)).astype("float32")
    fine = rng.integers(0, NUM_CLASSES, size=n).astype("int32")
    coarse = (fine // 10).astype("int32")
    half = n // 2

    def encoder() -> keras.Sequential:
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
    medians = time_interleaved(
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


def vs_pml_supcon(n: int, dim: int, repeats: int) -> dict[str, Any]:
    """The speed-up of our SupCon over pytorch-metric-learning's (torch only, eager).

    Skipped, with the reason, where the backend has no such peer (`supcon_peer`).
    """
    peer, description = supcon_peer(TEMPERATURE)
    if peer is None:
        return {"ratio": None, "skipped": True, "reason": description}
    z, labels = _inputs(n, dim)
    ours_run, _, _ = gradient_runner(_supcon_loss_fn(), z, [labels], "eager")
    peer_run, _, _ = gradient_runner(peer, z, [labels], "eager")
    medians = time_interleaved({"ours": ours_run, "peer": peer_run}, repeats)
    return _ratio_entry(
        medians["ours"],
        medians["peer"],
        f"keras_mlcl SupCon(temperature={TEMPERATURE}) fwd+bwd",
        description,
        "eager",
        inverse=True,
    )


def vs_sklearn_knn(queries: int, references: int, dim: int, k: int, repeats: int) -> dict[str, Any]:
    """The speed-up of `knn_accuracy` (cosine, `exact_top_k`) over scikit-learn's brute force.

    The baseline is the previous implementation of `knn_accuracy`: the same input checks
    (`check_train_test`), then `KNeighborsClassifier(algorithm="brute", metric="cosine")` fit
    and predict. Both classify `queries` rows against `references`
    labelled rows (`NUM_CLASSES` classes, clustered) with `k` neighbours; the accuracies are
    recorded beside the times.
    """
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(3)
    centers = rng.normal(size=(NUM_CLASSES, dim))
    train_y = rng.integers(0, NUM_CLASSES, size=references)
    test_y = rng.integers(0, NUM_CLASSES, size=queries)
    train_x = (centers[train_y] + 2 * rng.normal(size=(references, dim))).astype("float32")
    test_x = (centers[test_y] + 2 * rng.normal(size=(queries, dim))).astype("float32")
    accuracies: dict[str, float] = {}

    def ours() -> None:
        accuracies["ours"] = knn_accuracy(train_x, train_y, test_x, test_y, k=k)

    def scikit_learn() -> None:
        x, y, x_test, y_test, _ = check_train_test(train_x, train_y, test_x, test_y)
        classifier = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
        predictions = classifier.fit(x, y).predict(x_test)
        accuracies["sklearn"] = float(np.mean(predictions == y_test))

    medians = time_interleaved({"ours": ours, "sklearn": scikit_learn}, repeats, warmup=1)
    entry = _ratio_entry(
        medians["ours"],
        medians["sklearn"],
        f"keras_mlcl knn_accuracy (cosine, exact_top_k), k={k}",
        f"scikit-learn KNeighborsClassifier(algorithm='brute', metric='cosine'), k={k}",
        "exact_top_k",
        inverse=True,
    )
    entry.update(
        n=queries, references=references, dim=dim, k=k, repeats=repeats, accuracy=accuracies
    )
    return entry
