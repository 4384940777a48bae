"""keras-mlcl's JAX-specific code (see `keras_mlcl.backend`).

Data parallelism runs under `keras.distribution` (`DataParallel`,
`ModelParallel`): the step is one program over *global* arrays sharded
across devices, and XLA inserts the collectives. The loss already sees the
global batch, so there is nothing to gather and one replica to count.
"""

import contextlib

import jax
import keras

from keras_mlcl.backend.single_process import average_gradients  # noqa: F401
from keras_mlcl.backend.single_process import broadcast  # noqa: F401
from keras_mlcl.backend.single_process import export_saved_model  # noqa: F401
from keras_mlcl.backend.single_process import process_group_size  # noqa: F401


def concrete_numpy(x):
    """`x` as a NumPy array unless it is a JAX tracer or symbolic, else `None`."""
    if isinstance(x, (jax.core.Tracer, keras.KerasTensor)):
        return None
    return keras.ops.convert_to_numpy(x)


def as_tensor(x):
    """`keras.ops.convert_to_tensor` (it already reads variables on JAX)."""
    return keras.ops.convert_to_tensor(x)


def replica_count():
    """1: arrays are global under `keras.distribution`."""
    return 1


def loss_scale():
    """1: JAX computes one global loss."""
    return 1.0


def variable_scope(model):
    """A no-op: JAX variables follow the active `keras.distribution`."""
    return contextlib.nullcontext()


def all_gather(x):
    """`x` itself: it already holds the global batch."""
    return x


def replica_offset(local_size):
    """0: the one "replica" holds the whole batch."""
    return 0


def default_mode():
    return "jax.jit"


def gradient_runner(fn, x, args, mode):
    """`fn(x, *args)` (a scalar) and its gradient in `x`, under `jax.jit`."""
    step = jax.jit(jax.value_and_grad(fn))
    x, args = jax.numpy.asarray(x), [jax.numpy.asarray(a) for a in args]
    return lambda: jax.block_until_ready(step(x, *args)), step, (x, *args)


def matmul_runner(z, cotangent, mode):
    """The bare `s = z @ z.T` and its gradient for `cotangent`, under `jax.jit`."""

    def vjp(z, c):
        s, pullback = jax.vjp(lambda t: keras.ops.matmul(t, keras.ops.transpose(t)), z)
        return s, pullback(c)[0]

    step = jax.jit(vjp)
    z, c = jax.numpy.asarray(z), jax.numpy.asarray(cotangent)
    return lambda: jax.block_until_ready(step(z, c)), step, (z, c)


def peak_memory_mb(run, step, step_args):
    """XLA's buffer assignment for the compiled `step`: arguments, outputs, temporaries."""
    stats = step.lower(*step_args).compile().memory_analysis()
    if stats is None:
        return "not measured (XLA gave no memory analysis)", None
    total = stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
    return "XLA buffer assignment (arguments + outputs + temporaries)", total / 2**20


def library_details():
    return {"jax": jax.__version__}


def fast_supcon_rows():
    """None: the `keras.ops` kernel is the SupCon kernel here (XLA / Grappler fuse its passes)."""
    return None


def fori_loop(lower, upper, body_fun, init_val):
    """`keras.ops.fori_loop`: its iterations already run one after another here."""
    return keras.ops.fori_loop(lower, upper, body_fun, init_val)
