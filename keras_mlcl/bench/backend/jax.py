"""The speed bench's JAX-specific code (see `keras_mlcl.bench.backend`): `jax.jit` steps."""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import jax
import keras
import numpy as np

from keras_mlcl.bench.backend.xla import optional_modes  # noqa: F401
from keras_mlcl.bench.backend.xla import supcon_peer  # noqa: F401
from keras_mlcl.bench.timing import Run
from keras_mlcl.bench.timing import Runner


def default_mode() -> str:
    """`"jax.jit"`: every step is compiled by XLA."""
    return "jax.jit"


def gradient_runner(
    fn: Callable[..., Any], x: np.ndarray, args: Sequence[np.ndarray], mode: str
) -> Runner:
    """`fn(x, *args)` (a scalar) and its gradient in `x`, under `jax.jit`."""
    step = jax.jit(jax.value_and_grad(fn))
    x, args = jax.numpy.asarray(x), [jax.numpy.asarray(a) for a in args]
    return lambda: jax.block_until_ready(step(x, *args)), step, (x, *args)


def matmul_runner(z: np.ndarray, cotangent: np.ndarray, mode: str) -> Runner:
    """The bare `s = z @ z.T` and its gradient for `cotangent`, under `jax.jit`."""

    def vjp(z: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        s, pullback = jax.vjp(lambda t: keras.ops.matmul(t, keras.ops.transpose(t)), z)
        return s, pullback(c)[0]

    step = jax.jit(vjp)
    z, c = jax.numpy.asarray(z), jax.numpy.asarray(cotangent)
    return lambda: jax.block_until_ready(step(z, c)), step, (z, c)


def peak_memory_mb(run: Run, step: Any, step_args: Any) -> tuple[str, float | None]:
    """XLA's buffer assignment for the compiled `step`: arguments, outputs, temporaries."""
    stats = step.lower(*step_args).compile().memory_analysis()
    if stats is None:
        return "not measured (XLA gave no memory analysis)", None
    total = stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
    return "XLA buffer assignment (arguments + outputs + temporaries)", total / 2**20


def library_details() -> dict[str, Any]:
    """JAX's version."""
    return {"jax": jax.__version__}
