"""The speed bench's PyTorch-specific code (see `keras_mlcl.bench.backend`).

Steps run eagerly or under `torch.compile`; the peak memory comes from the
torch profiler, imported here and not by the runtime.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import torch
from torch.profiler import ProfilerActivity
from torch.profiler import profile

from keras_mlcl.bench.timing import Run
from keras_mlcl.bench.timing import Runner


def default_mode() -> str:
    """`"eager"`: Keras' own execution on torch."""
    return "eager"


def optional_modes() -> list[str]:
    """`["torch.compile"]`, timed beside eager when asked."""
    return ["torch.compile"]


def _runner(
    forward: Callable[..., Any],
    inputs: Sequence[Any],
    backward: Callable[[torch.Tensor], None],
) -> Run:
    """`run()`: `forward` on a fresh leaf copy of `inputs[0]`, `backward`, the gradient."""
    first, rest = torch.as_tensor(inputs[0]), [torch.as_tensor(a) for a in inputs[1:]]

    def run() -> tuple[torch.Tensor, torch.Tensor | None]:
        leaf = first.detach().requires_grad_(True)
        value = forward(leaf, *rest)
        backward(value)
        return value.detach(), leaf.grad

    return run


def gradient_runner(
    fn: Callable[..., Any], x: np.ndarray, args: Sequence[np.ndarray], mode: str
) -> Runner:
    """`fn(x, *args)` (a scalar) and its gradient in `x`, eager or `torch.compile`."""
    forward = torch.compile(fn) if mode == "torch.compile" else fn
    return _runner(forward, [x, *args], lambda value: value.backward()), None, None


def matmul_runner(z: np.ndarray, cotangent: np.ndarray, mode: str) -> Runner:
    """The bare `s = z @ z.T` and its gradient for `cotangent`, eager or `torch.compile`."""

    def product(t: torch.Tensor) -> torch.Tensor:
        return keras.ops.matmul(t, keras.ops.transpose(t))

    forward = torch.compile(product) if mode == "torch.compile" else product
    c = torch.as_tensor(cotangent)
    return _runner(forward, [z], lambda s: s.backward(c)), None, None


def peak_memory_mb(run: Run, step: Any, step_args: Any) -> tuple[str, float | None]:
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


def library_details() -> dict[str, Any]:
    """torch's version and its intra-op thread count."""
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def supcon_peer(temperature: float) -> tuple[Callable | None, str]:
    """pytorch-metric-learning's `SupConLoss`, if it is installed.

    Args:
        temperature: the SupCon temperature.

    Returns:
        `(loss_fn, description)`, `loss_fn(z, labels)` a scalar; or `(None, reason)`
        when pytorch-metric-learning is not installed.
    """
    try:
        import pytorch_metric_learning
        from pytorch_metric_learning.losses import SupConLoss
    except ImportError:
        return None, "pytorch-metric-learning is not installed"
    peer = SupConLoss(temperature=temperature)
    description = (
        f"pytorch-metric-learning {pytorch_metric_learning.__version__} "
        f"SupConLoss(temperature={temperature}) fwd+bwd"
    )
    return lambda z, labels: peer(z, labels), description
