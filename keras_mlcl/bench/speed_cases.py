"""The speed bench's cases: each times a measured function against its baseline.

Every case returns an entry with the `ratio` of the two medians, both medians in ms, what was
measured and the compilation mode; `keras_mlcl.bench.speed` adds the target and the verdict.
"""

import keras
import numpy as np

from keras_mlcl.bench.timing import default_mode
from keras_mlcl.bench.timing import gradient_runner
from keras_mlcl.bench.timing import matmul_runner
from keras_mlcl.bench.timing import peak_memory_mb
from keras_mlcl.bench.timing import time_interleaved
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SupCon
from keras_mlcl.models import ContrastiveModel

TEMPERATURE = 0.1
NUM_CLASSES = 100
# The fit-step case: an MLP encoder large enough that the encoder dominates.
ENCODER_FEATURES = 1024
ENCODER_WIDTH = 2048


def _inputs(n, dim, seed=0):
    """Unit embeddings `(n, dim)`, class ids `(n,)` (two views per sample) and a cotangent."""
    rng = np.random.default_rng(seed)
    z = _unit(rng.normal(size=(n, dim)))
    half = rng.integers(0, NUM_CLASSES, size=(n + 1) // 2)
    labels = np.concatenate([half, half])[:n].astype("int32")
    cotangent = rng.normal(size=(n, n)).astype("float32")
    return z, labels, cotangent


def _unit(x):
    """Rows of `x` scaled to unit norm, as float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


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


def supcon_vs_matmul(n, dim, repeats, backend, torch_compile):
    """SupCon fwd+bwd against the bare `z @ z.T` fwd+bwd; on torch the faster mode counts."""
    z, labels, cotangent = _inputs(n, dim)
    modes = [default_mode(backend)]
    if backend == "torch" and torch_compile:
        modes.append("torch.compile")
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


def sweep_point(size, dim, repeats, backend):
    """SupCon and the bare matmul at batch size `size`: medians, ratio and peak memory."""
    z, labels, cotangent = _inputs(size, dim, seed=size)
    mode = default_mode(backend)
    loss_run, loss_step, loss_args = gradient_runner(_supcon_loss_fn(), z, [labels], mode)
    matmul_run, matmul_step, matmul_args = matmul_runner(z, cotangent, mode)
    medians = time_interleaved({"loss": loss_run, "matmul": matmul_run}, repeats, warmup=2)
    method, loss_peak = peak_memory_mb(loss_run, loss_step, loss_args)
    _, matmul_peak = peak_memory_mb(matmul_run, matmul_step, matmul_args)
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


def heads_vs_one_head(n, dim, repeats, backend, heads=4):
    """A `heads`-head `MultiLevelSupCon` against `heads` times a one-head one."""
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

    mode = default_mode(backend)
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


def fit_step_vs_ce(n, dim, repeats, features=ENCODER_FEATURES, width=ENCODER_WIDTH):
    """One `train_on_batch` of each model; both encoders see `n` rows a step.

    The encoders are MLPs `features`-`width`-`width`-`dim`.
    """
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


def vs_pml_supcon(n, dim, repeats, backend):
    """The speed-up of our SupCon over pytorch-metric-learning's (torch only, eager)."""
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
    ours_run, _, _ = gradient_runner(_supcon_loss_fn(), z, [labels], "eager")
    peer_run, _, _ = gradient_runner(lambda z, y: peer(z, y), z, [labels], "eager")
    medians = time_interleaved({"ours": ours_run, "peer": peer_run}, repeats)
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
