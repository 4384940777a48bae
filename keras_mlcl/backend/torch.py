"""keras-mlcl's PyTorch-specific code (see `keras_mlcl.backend`).

Data parallelism runs one process per replica under `torch.distributed`:
Keras has no multi-process trainer, so each process runs its own step on
its local batch and gradients are averaged over processes
(DistributedDataParallel, or
`keras_mlcl.distribution.average_gradients_across_processes`).
"""

import contextlib
import os
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import keras
import numpy as np
import torch
import torch.distributed as dist

from keras_mlcl.utils.types import Tensor


def concrete_numpy(x: Any) -> np.ndarray | None:
    """`x` as a NumPy array unless `torch.compile` is tracing or it is symbolic."""
    if torch.compiler.is_compiling() or isinstance(x, keras.KerasTensor):
        return None
    return keras.ops.convert_to_numpy(x)


def as_tensor(x: Any) -> Tensor:
    """`keras.ops.convert_to_tensor` (it already reads variables on PyTorch)."""
    return keras.ops.convert_to_tensor(x)


def _world_size() -> int:
    """The size of the default process group (1 if none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def replica_count() -> int:
    """The world size of the default process group, 1 without one."""
    return _world_size()


def loss_scale() -> float:
    """1: process groups average the gradients."""
    return 1.0


def variable_scope(model: keras.Model) -> AbstractContextManager:
    """A no-op: each process holds its own copy of the variables."""
    return contextlib.nullcontext()


def all_gather(x: Tensor) -> Tensor:
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


def replica_offset(local_size: int | Tensor) -> int:
    """The rows of the processes of lower rank (an int)."""
    if _world_size() == 1:
        return 0
    return sum(_sizes(int(local_size))[: dist.get_rank()])


def _sizes(local_size: int) -> list[int]:
    """Every process's `local_size`, in rank order."""
    size = torch.tensor([local_size], dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _gather_padded(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
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
    def forward(ctx: Any, x: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        return _gather_padded(x, sizes)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def process_group_size() -> int:
    """The `torch.distributed` world size; raises `ValueError` without a group."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "No torch.distributed process group: call "
            "`torch.distributed.init_process_group(...)` first."
        )
    return dist.get_world_size()


def average_gradients(variables: Sequence[keras.Variable]) -> list[Any]:
    """Hooks that average each variable's gradient over processes.

    Returns:
        The hook handles (call `.remove()` on each to undo).
    """
    world_size = process_group_size()

    def average(parameter: torch.Tensor) -> None:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world_size)

    return [v.value.register_post_accumulate_grad_hook(average) for v in variables]


def broadcast(variables: Sequence[keras.Variable], source: int = 0) -> None:
    """Copies every variable's value from process `source` to the others."""
    process_group_size()
    with torch.no_grad():
        for variable in variables:
            value = variable.value.detach().clone().contiguous()
            dist.broadcast(value, src=source)
            variable.assign(value)


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike,
    input_signature: Sequence[Any],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    search_k: int = 10,
) -> None:
    """A TF SavedModel written by a TensorFlow-backend child process.

    Keras' own export from torch goes through `torch.export` and `torch_xla`
    (not installable here) and fails on dict outputs. The model is saved as
    `.keras`, then `python -m keras_mlcl.models.export` loads and exports it
    under the TensorFlow backend, after importing `modules` (which register
    custom objects), with the search endpoints of `search_indexes`
    (`keras_mlcl.models.export.export_in_tensorflow_process`).
    """
    from keras_mlcl.models.export import export_in_tensorflow_process

    export_in_tensorflow_process(
        model, filepath, input_signature, modules, verbose, search_indexes, search_k
    )


def fast_supcon_rows() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The native SupCon kernel: a `torch.autograd.Function` with in-place row passes.

    It runs eagerly under `torch.compile` (`torch.compiler.disable`): traced, its in-place
    passes on reused buffers become copies, and the loss was about 1.5 times slower. The
    graph breaks there, so `torch.compile(..., fullgraph=True)` refuses a loss.

    Returns:
        `keras_mlcl.backend.torch_supcon.supcon_rows`, the contract of
        `keras_mlcl.ops.blockwise.supcon_rows`.
    """
    from keras_mlcl.backend.torch_supcon import supcon_rows

    return torch.compiler.disable(supcon_rows)


def fori_loop(
    lower: int | Tensor, upper: int | Tensor, body_fun: Callable[[Any, Any], Any], init_val: Any
) -> Any:
    """`keras.ops.fori_loop`: its iterations already run one after another here."""
    return keras.ops.fori_loop(lower, upper, body_fun, init_val)


def compile_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` itself: eager PyTorch runs each op's kernel directly."""
    return function


def top_k_lower_index_first(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The `k` largest values of each row of `x` and their indices, the lower index first
    among equal values (`torch.topk` promises no order among them).

    Args:
        x: a `(M, N)` float tensor without NaN.
        k: an int in [1, N].

    Returns:
        `(values, indices)`, each `(M, k)`, by decreasing value.
    """
    values, indices = torch.topk(x, min(k + 1, x.shape[-1]), dim=-1)
    indices = indices[:, :k]
    if values.shape[-1] > k:
        tied = torch.nonzero(values[:, k] == values[:, k - 1]).squeeze(1)
        if tied.numel():
            # In these rows equal values straddle the k-th place: keep the lowest indices
            # among them (the other rows, most or all, are left as they are).
            rows, threshold = x[tied], values[tied, k - 1 : k]
            ties = rows == threshold
            needed = k - torch.sum(rows > threshold, dim=-1, keepdim=True)
            keep = (rows > threshold) | (ties & (torch.cumsum(ties, dim=-1) <= needed))
            positions = torch.arange(x.shape[-1], device=x.device).expand_as(rows)
            fixed = torch.topk(torch.where(keep, -positions, -x.shape[-1]), k, dim=-1).indices
            indices = indices.index_copy(0, tied, fixed)
    indices = torch.sort(indices, dim=-1).values
    values, order = torch.sort(torch.gather(x, -1, indices), dim=-1, descending=True, stable=True)
    return values, torch.gather(indices, -1, order)


def compiled_by_xla() -> bool:
    """False: torch runs eagerly (or compiled by `torch.compile`, not XLA)."""
    return False


def fuse_elementwise(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` itself: torch runs its own native kernel (`fast_supcon_rows`)."""
    return function
