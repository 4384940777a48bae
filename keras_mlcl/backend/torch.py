"""keras-mlcl's PyTorch-specific code (see `keras_mlcl.backend`).

Data parallelism runs one process per replica under `torch.distributed`:
Keras has no multi-process trainer, so each process runs its own step on
its local batch and gradients are averaged over processes
(DistributedDataParallel, or
`keras_mlcl.distribution.average_gradients_across_processes`).
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

import keras
import torch
import torch.distributed as dist
from torch.profiler import ProfilerActivity
from torch.profiler import profile


def concrete_numpy(x):
    """`x` as a NumPy array unless `torch.compile` is tracing or it is symbolic."""
    if torch.compiler.is_compiling() or isinstance(x, keras.KerasTensor):
        return None
    return keras.ops.convert_to_numpy(x)


def as_tensor(x):
    """`keras.ops.convert_to_tensor` (it already reads variables on PyTorch)."""
    return keras.ops.convert_to_tensor(x)


def _world_size():
    """The size of the default process group (1 if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def replica_count():
    """The world size of the default process group, 1 without one."""
    return _world_size()


def loss_scale():
    """1: process groups average the gradients."""
    return 1.0


def variable_scope(model):
    """A no-op: each process holds its own copy of the variables."""
    return contextlib.nullcontext()


def all_gather(x):
    """`x` concatenated along axis 0 over the processes, in rank order.

    Processes may hold different numbers of rows. Differentiable: the
    gradient of a process's rows is the sum over processes.
    """
    if _world_size() == 1:
        return x
    x = torch.as_tensor(x)
    is_bool = x.dtype == torch.bool
    if is_bool:  # gloo has no boolean collectives
        x = x.to(torch.uint8)
    sizes = _sizes(int(x.shape[0]))
    if x.requires_grad:
        gathered = _AllGather.apply(x, sizes, dist.get_rank())
    else:
        gathered = _gather_padded(x, sizes)
    return gathered.to(torch.bool) if is_bool else gathered


def replica_offset(local_size):
    """The rows of the processes of lower rank (an int)."""
    if _world_size() == 1:
        return 0
    return sum(_sizes(int(local_size))[: dist.get_rank()])


def _sizes(local_size):
    """Every process's `local_size`, in rank order."""
    size = torch.tensor([local_size], dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _gather_padded(x, sizes):
    """`all_gather` of `x` padded to the longest process's rows, then trimmed."""
    longest = max(sizes)
    padded = x.contiguous()
    if x.shape[0] < longest:
        padding = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
        padded = torch.cat([padded, padding])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _AllGather(torch.autograd.Function):
    """All-gather whose backward sums the gradients over processes."""

    @staticmethod
    def forward(ctx, x, sizes, rank):
        ctx.sizes, ctx.rank = sizes, rank
        return _gather_padded(x, sizes)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def process_group_size():
    """The `torch.distributed` world size; raises `ValueError` without a group."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "No torch.distributed process group: call "
            "`torch.distributed.init_process_group(...)` first."
        )
    return dist.get_world_size()


def average_gradients(variables):
    """Hooks that average each variable's gradient over processes.

    Returns:
        The hook handles (call `.remove()` on each to undo).
    """
    world_size = process_group_size()

    def average(parameter):
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world_size)

    return [v.value.register_post_accumulate_grad_hook(average) for v in variables]


def broadcast(variables, source=0):
    """Copies every variable's value from process `source` to the others."""
    process_group_size()
    with torch.no_grad():
        for variable in variables:
            value = variable.value.detach().clone().contiguous()
            dist.broadcast(value, src=source)
            variable.assign(value)


def export_saved_model(model, filepath, input_signature, modules=(), verbose=False):
    """A TF SavedModel written by a TensorFlow-backend child process.

    Keras' own export from torch goes through `torch.export` and `torch_xla`
    (not installable here) and fails on dict outputs. The model is saved as
    `.keras`, then `python -m keras_mlcl.models.export` loads and exports it
    under the TensorFlow backend, after importing `modules` (which register
    custom objects). The weights are the same; the SavedModel's graph is
    TensorFlow's trace of the same `keras.ops` code.
    """
    specs = [{"shape": list(s.shape), "dtype": s.dtype} for s in input_signature]
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "model.keras")
        model.save(source)
        command = [
            sys.executable,
            "-m",
            "keras_mlcl.models.export",
            source,
            os.fspath(filepath),
            "--signature",
            json.dumps(specs),
            "--modules",
            *modules,
        ]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            "Exporting from the torch backend through a TensorFlow process failed:\n"
            + result.stderr[-4000:]
        )
    if verbose:
        print(result.stdout)


def default_mode():
    return "eager"


def _runner(forward, inputs, backward):
    """`run()`: `forward` on a fresh leaf copy of `inputs[0]`, `backward`, the gradient."""
    first, rest = torch.as_tensor(inputs[0]), [torch.as_tensor(a) for a in inputs[1:]]

    def run():
        leaf = first.detach().requires_grad_(True)
        value = forward(leaf, *rest)
        backward(value)
        return value.detach(), leaf.grad

    return run


def gradient_runner(fn, x, args, mode):
    """`fn(x, *args)` (a scalar) and its gradient in `x`, eager or `torch.compile`."""
    forward = torch.compile(fn) if mode == "torch.compile" else fn
    return _runner(forward, [x, *args], lambda value: value.backward()), None, None


def matmul_runner(z, cotangent, mode):
    """The bare `s = z @ z.T` and its gradient for `cotangent`, eager or `torch.compile`."""

    def product(t):
        return keras.ops.matmul(t, keras.ops.transpose(t))

    forward = torch.compile(product) if mode == "torch.compile" else product
    c = torch.as_tensor(cotangent)
    return _runner(forward, [z], lambda s: s.backward(c)), None, None


def peak_memory_mb(run, step, step_args):
    """The torch profiler's peak of the bytes allocated during one `run()`."""
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


def library_details():
    """torch's version and its intra-op thread count."""
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def fast_supcon_rows():
    """The native SupCon kernel: a `torch.autograd.Function` with in-place row passes.

    Returns:
        `keras_mlcl.backend.torch_supcon.supcon_rows`, the contract of
        `keras_mlcl.ops.blockwise.supcon_rows`.
    """
    from keras_mlcl.backend.torch_supcon import supcon_rows

    return supcon_rows


def fori_loop(lower, upper, body_fun, init_val):
    """`keras.ops.fori_loop`: its iterations already run one after another here."""
    return keras.ops.fori_loop(lower, upper, body_fun, init_val)
