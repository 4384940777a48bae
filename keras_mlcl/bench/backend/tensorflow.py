"""The speed bench's TensorFlow-specific code (see `keras_mlcl.bench.backend`): XLA steps."""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_mlcl.bench.backend.xla import optional_modes  # noqa: F401
from keras_mlcl.bench.backend.xla import supcon_peer  # noqa: F401
from keras_mlcl.bench.timing import Run
from keras_mlcl.bench.timing import Runner


def default_mode() -> str:
    """`"tf.function(jit_compile=True)"`: every step is compiled by XLA."""
    return "tf.function(jit_compile=True)"


def gradient_runner(
    fn: Callable[..., Any], x: np.ndarray, args: Sequence[np.ndarray], mode: str
) -> Runner:
    """`fn(x, *args)` (a scalar) and its gradient in `x`, XLA-compiled."""

    @tf.function(jit_compile=True)
    def step(x: tf.Tensor, *args: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x, *args)
        return value, tape.gradient(value, x)

    x, args = tf.constant(x), [tf.constant(a) for a in args]
    return lambda: step(x, *args), step, (x, *args)


def matmul_runner(z: np.ndarray, cotangent: np.ndarray, mode: str) -> Runner:
    """The bare `s = z @ z.T` and its gradient for `cotangent`, XLA-compiled."""

    @tf.function(jit_compile=True)
    def step(z: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(z)
            s = keras.ops.matmul(z, keras.ops.transpose(z))
        return s, tape.gradient(s, z, output_gradients=c)

    z, c = tf.constant(z), tf.constant(cotangent)
    return lambda: step(z, c), step, (z, c)


def peak_memory_mb(run: Run, step: Any, step_args: Any) -> tuple[str, float | None]:
    """Not measured: TensorFlow keeps no CPU allocator statistics.

    The process's resident set does not grow either once TensorFlow's
    allocator holds the buffers, so there is no honest number.
    """
    return "not measured on this backend (no CPU allocator statistics)", None


def library_details() -> dict[str, Any]:
    """TensorFlow's version."""
    return {"tensorflow": tf.__version__}
