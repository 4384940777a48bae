"""GPU check: SupCon fwd+bwd against the bare matmul and pytorch-metric-learning, with peak memory.

For each backend among JAX and PyTorch that can be imported, in a child process of its own
(Keras reads `KERAS_BACKEND` once), this script times on the default device:

- `SupCon(temperature=0.1)` forward + gradient with respect to the embeddings, and the bare
  `s = z @ z.T` forward + gradient (for a fixed random cotangent), at N = 4096 ... 65536,
  D = 128, 100 classes, two views per class draw; medians of a few rounds after warm-up;
- on torch, when `pytorch_metric_learning` can be imported, its `SupConLoss(temperature=0.1)`
  forward + backward on the same embeddings and labels, timed and measured the same way
  (the speed-up is its time over ours); otherwise it is recorded as skipped;
- the extra peak device memory of each call beyond its inputs: on torch
  `torch.cuda.max_memory_allocated()` after a reset, minus what was allocated before the
  call; on JAX XLA's buffer assignment of the compiled step (temporaries + outputs); also
  as a fraction of one N x N float32 buffer;
- two epochs of `ContrastiveModel.fit` (an MLP encoder, heads coarse + fine, the default
  multi-level loss) on random data: the first (with compilation) and the second.

It prints a Markdown table and, when `OUT` is set (or `--out` given), writes
`gpu_check.json` and `gpu_check.md` (the table) into that folder, each through a temporary
file renamed into place; an `--out` that is an existing file is refused. A size that fails
(out of memory, say: pytorch-metric-learning holds several N x N matrices) is recorded with
its error and the script goes on; so is a `fit` that fails.

Usage:

    python scripts/gpu_check.py                       # every importable backend
    python scripts/gpu_check.py --backends torch --sizes 4096,16384
    python scripts/gpu_check.py --cpu-smoke           # tiny sizes on the CPU: checks the
                                                      # script, not the speed

It needs Keras and keras-mlcl installed. On a machine with CUDA JAX and torch but no Keras,
carry wheels made here for its Python (3.12 on the project's GPU machines, which already hold
numpy, scikit-learn, tqdm, matplotlib, h5py, rich, absl-py, ml-dtypes and packaging):

    pip wheel --no-deps -w .whl . liac-arff           # keras-mlcl and its pure-Python need
    pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex optree \\
        pytorch-metric-learning==2.9.0
    # there:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site python3 scripts/gpu_check.py --out "$OUT"
"""

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

BACKENDS = ("jax", "torch")
GPU_SIZES = (4096, 8192, 16384, 32768, 65536)
SMOKE_SIZES = (64, 128)
DIM = 128
NUM_CLASSES = 100
TEMPERATURE = 0.1
SIDES = ("loss", "matmul", "peer")

Step = tuple[Callable[[], None], Callable[[], float | None]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--sizes", default=None, help="comma-separated batch sizes N")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per size")
    parser.add_argument(
        "--out", default=os.environ.get("OUT"), help="folder for gpu_check.json and .md"
    )
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny sizes on the CPU, to test the script"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sizes is None:
        sizes = SMOKE_SIZES if args.cpu_smoke else GPU_SIZES
    else:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    repeats = args.repeats or (2 if args.cpu_smoke else 10)
    if args.child:
        print(json.dumps(run_backend(args.child, sizes, repeats, args.cpu_smoke)))
        return 0
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"`--backends` should be among {BACKENDS}. Received unknown {unknown}")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"`--out` should be a folder. Received the existing file {args.out!r}")
    results: dict[str, Any] = {}
    for backend in backends:
        if importlib.util.find_spec(backend) is None:
            results[backend] = {"skipped": f"{backend} is not installed"}
            continue
        results[backend] = _run_child(backend, sizes, repeats, args.cpu_smoke)
    table = markdown(results)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        _write_into_place(args.out, "gpu_check.json", json.dumps(results, indent=2) + "\n")
        _write_into_place(args.out, "gpu_check.md", table + "\n")
    failed = [b for b, r in results.items() if "error" in r]
    return 1 if failed else 0


def _write_into_place(folder: str, name: str, text: str) -> None:
    """Writes `text` to a new temporary file in `folder`, then renames it to `name`."""
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(temporary, "x", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, os.path.join(folder, name))


def _run_child(backend: str, sizes: tuple[int, ...], repeats: int, cpu_smoke: bool) -> Any:
    """Runs this script for one backend in a fresh process; returns its JSON or the error."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        backend,
        "--sizes",
        ",".join(str(s) for s in sizes),
        "--repeats",
        str(repeats),
    ]
    env = dict(os.environ, KERAS_BACKEND=backend)
    if cpu_smoke:
        command.append("--cpu-smoke")
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        return {"error": result.stderr[-3000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_backend(
    backend: str, sizes: tuple[int, ...], repeats: int, cpu_smoke: bool
) -> dict[str, Any]:
    """The child's work: the kernel timings at every size, then the `fit` epochs."""
    import keras
    import numpy as np

    if keras.backend.backend() != backend:
        raise ValueError(
            f"KERAS_BACKEND should be {backend!r}. Received: {keras.backend.backend()!r}"
        )
    tools = _backend_tools(backend)
    report: dict[str, Any] = {
        "device": tools["device"](),
        "keras": keras.__version__,
        "peer": tools["peer"],
        "sizes": [],
    }
    for n in sizes:
        rng = np.random.default_rng(n)
        z = rng.normal(size=(n, DIM)).astype("float32")
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        classes = rng.integers(0, NUM_CLASSES, size=(n + 1) // 2)
        labels = np.concatenate([classes, classes])[:n].astype("int32")
        row: dict[str, Any] = {"n": n}
        for side in SIDES:
            make_step = tools[f"{side}_step"]
            if make_step is None:
                continue
            try:
                seconds, extra = _time_and_memory(make_step(z, labels), repeats)
                row[f"{side}_ms"] = seconds * 1e3
                row[f"{side}_extra_mb"] = extra
            except Exception as error:  # out of memory, say: record it and go on
                row[f"{side}_error"] = f"{type(error).__name__}: {str(error)[:300]}"
            tools["release"]()
        buffer_mb = n * n * 4 / 2**20
        for side in SIDES:
            if row.get(f"{side}_extra_mb") is not None:
                row[f"{side}_extra_nn"] = row[f"{side}_extra_mb"] / buffer_mb
        if "loss_ms" in row and "matmul_ms" in row:
            row["ratio"] = row["loss_ms"] / row["matmul_ms"]
        if "loss_ms" in row and "peer_ms" in row:
            row["speedup_vs_peer"] = row["peer_ms"] / row["loss_ms"]
        report["sizes"].append(row)
    try:
        report["fit"] = fit_epochs(cpu_smoke)
    except Exception as error:  # keep the kernel figures: record it and go on
        report["fit"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    return report


def _time_and_memory(step: Step, repeats: int) -> tuple[float, float | None]:
    """Median seconds of `step` (after 2 warm-up calls) and its extra peak memory in MB."""
    run, memory = step
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], memory()


def _backend_tools(backend: str) -> dict[str, Any]:
    """Step makers (`None` where a side does not apply), device name, peer and memory release.

    Each `*_step(z, labels)` returns `(run, memory)`: `run()` one synchronised forward +
    backward, `memory()` its extra peak device memory in MB (or `None` where not known).
    """
    import keras
    from keras import ops

    from keras_mlcl.losses import SupCon

    loss = SupCon(temperature=TEMPERATURE)

    def matmul(t: Any) -> Any:
        return ops.matmul(t, ops.transpose(t))

    if backend == "jax":
        import jax

        def jax_loss_step(z: Any, labels: Any) -> Step:
            step = jax.jit(jax.value_and_grad(lambda t, y: loss(y, t)))
            args = (jax.numpy.asarray(z), jax.numpy.asarray(labels))
            return (lambda: jax.block_until_ready(step(*args))), _xla_memory(step, args)

        def jax_matmul_step(z: Any, labels: Any) -> Step:
            def vjp(t: Any, c: Any) -> Any:
                s, pullback = jax.vjp(matmul, t)
                return s, pullback(c)[0]

            step = jax.jit(vjp)
            n = z.shape[0]
            args = (jax.numpy.asarray(z), jax.random.normal(jax.random.key(0), (n, n)))
            return (lambda: jax.block_until_ready(step(*args))), _xla_memory(step, args)

        return {
            "device": lambda: str(jax.devices()[0]),
            "loss_step": jax_loss_step,
            "matmul_step": jax_matmul_step,
            "peer_step": None,
            "peer": {"skipped": "pytorch-metric-learning runs on torch only"},
            "release": lambda: None,
        }

    import torch

    from keras_mlcl.bench.backend.torch import supcon_peer

    cuda = torch.cuda.is_available()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def measured(forward_backward: Callable[[], None]) -> Step:
        def run() -> None:
            forward_backward()
            sync()

        def memory() -> float | None:
            if not cuda:
                return None
            sync()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            run()
            return (torch.cuda.max_memory_allocated() - before) / 2**20

        return run, memory

    def scalar_step(scalar_loss: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Step]:
        def make(z: Any, labels: Any) -> Step:
            z, labels = ops.convert_to_tensor(z), ops.convert_to_tensor(labels)

            def forward_backward() -> None:
                leaf = z.detach().requires_grad_(True)
                scalar_loss(leaf, labels).backward()

            return measured(forward_backward)

        return make

    def torch_matmul_step(z: Any, labels: Any) -> Step:
        z = ops.convert_to_tensor(z)
        cotangent = keras.random.normal((z.shape[0], z.shape[0]), seed=0)

        def forward_backward() -> None:
            leaf = z.detach().requires_grad_(True)
            matmul(leaf).backward(cotangent)

        return measured(forward_backward)

    def release() -> None:
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    peer, description = supcon_peer(TEMPERATURE)
    return {
        "device": lambda: torch.cuda.get_device_name(0) if cuda else "cpu",
        "loss_step": scalar_step(lambda t, y: loss(y, t)),
        "matmul_step": torch_matmul_step,
        "peer_step": None if peer is None else scalar_step(peer),
        "peer": {"skipped": description} if peer is None else {"description": description},
        "release": release,
    }


def _xla_memory(step: Any, args: tuple[Any, ...]) -> Callable[[], float | None]:
    def memory() -> float | None:
        stats = step.lower(*args).compile().memory_analysis()
        if stats is None:
            return None
        return float(stats.temp_size_in_bytes + stats.output_size_in_bytes) / 2**20

    return memory


def fit_epochs(cpu_smoke: bool) -> dict[str, Any]:
    """Seconds of the first (compiling) and second `ContrastiveModel.fit` epochs."""
    import keras
    import numpy as np

    from keras_mlcl.models import ContrastiveModel

    samples, features, batch = (256, 32, 64) if cpu_smoke else (65536, 256, 2048)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, features)).astype("float32")
    fine = rng.integers(0, NUM_CLASSES, size=samples).astype("int32")
    y = {"coarse": fine // 10, "fine": fine}
    encoder = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(DIM),
        ]
    )
    model = ContrastiveModel(encoder, heads={"coarse": DIM, "fine": DIM}, views=2)
    model.compile(optimizer="adam")

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    times = EpochTimes()
    history = model.fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[times])
    return {
        "samples": samples,
        "batch_size": batch,
        "views": 2,
        "encoder": f"MLP {features}-512-{DIM}, heads coarse + fine",
        "first_epoch_s": times.seconds[0],
        "second_epoch_s": times.seconds[1],
        "final_loss": float(history.history["loss"][-1]),
    }


COLUMNS = (
    ("SupCon (ms)", "loss_ms"),
    ("matmul (ms)", "matmul_ms"),
    ("ratio", "ratio"),
    ("SupCon extra (MB)", "loss_extra_mb"),
    ("SupCon extra (N² f32)", "loss_extra_nn"),
    ("matmul extra (MB)", "matmul_extra_mb"),
    ("PML (ms)", "peer_ms"),
    ("PML extra (MB)", "peer_extra_mb"),
    ("PML / SupCon", "speedup_vs_peer"),
)


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: one table row per backend and size, then notes.

    "N² f32" is the extra memory as a fraction of one N x N float32 buffer; "PML / SupCon"
    is pytorch-metric-learning's time over ours (the speed-up). A cell reads "error" where
    that side failed (the error is in the notes), "skipped" where the peer is not
    installed, "–" where it does not apply and "n/a" where the figure is not known.
    """
    lines = [
        "| backend | device | N | " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---|" * (3 + len(COLUMNS)),
    ]
    notes = []
    for backend, report in results.items():
        if "sizes" not in report:
            notes.append(f"- {backend}: {report.get('skipped') or report.get('error')}")
            continue
        peer = report["peer"]
        if "description" in peer:
            notes.append(f"- {backend} peer (PML): {peer['description']}")
            peer_blank = "n/a"
        else:
            notes.append(f"- {backend} peer (PML) skipped: {peer['skipped']}")
            peer_blank = "–" if backend != "torch" else "skipped"
        for row in report["sizes"]:
            cells = [_cell(row, key, peer_blank if "peer" in key else "n/a") for _, key in COLUMNS]
            lines.append(
                f"| {backend} | {report['device']} | {row['n']} | " + " | ".join(cells) + " |"
            )
            for side in SIDES:
                if f"{side}_error" in row:
                    notes.append(f"- {backend}, N = {row['n']}, {side}: {row[f'{side}_error']}")
        fit = report["fit"]
        if "error" in fit:
            notes.append(f"- {backend} `ContrastiveModel.fit` failed: {fit['error']}")
            continue
        notes.append(
            f"- {backend} `ContrastiveModel.fit`, {fit['samples']} samples, batch "
            f"{fit['batch_size']} x {fit['views']} views, {fit['encoder']}: first epoch "
            f"{fit['first_epoch_s']:.2f} s (with compilation), second {fit['second_epoch_s']:.2f} s"
        )
    return "\n".join(lines + [""] + notes)


def _cell(row: dict[str, Any], key: str, blank: str) -> str:
    """`row[key]` with two decimals; else "error" if a side it needs failed, else `blank`."""
    value = row.get(key)
    if value is not None:
        return f"{value:.2f}"
    needs = {"ratio": ("loss", "matmul"), "speedup_vs_peer": ("loss", "peer")}
    sides = needs.get(key, (key.split("_")[0],))
    return "error" if any(f"{side}_error" in row for side in sides) else blank


if __name__ == "__main__":
    sys.exit(main())
