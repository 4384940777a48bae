"""keras-mlcl's TensorFlow-specific code (see `keras_mlcl.backend`).

Data parallelism runs under a `tf.distribute` strategy: the step runs once
per replica on its local batch (a replica context), the replicas'
gradients are *summed*, so Keras scales each replica's loss by
`1 / num_replicas_in_sync`.
"""

import contextlib
import functools
import os
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from keras_mlcl.backend import single_process
from keras_mlcl.backend.single_process import average_gradients  # noqa: F401
from keras_mlcl.backend.single_process import broadcast  # noqa: F401
from keras_mlcl.backend.single_process import process_group_size  # noqa: F401
from keras_mlcl.utils.types import Tensor


def concrete_numpy(x: Any) -> np.ndarray | None:
    """`x` as a NumPy array when executing eagerly, else `None`."""
    if not tf.executing_eagerly() or not hasattr(x, "numpy"):
        return None
    if isinstance(x, keras.KerasTensor):
        return None
    return keras.ops.convert_to_numpy(x)


def as_tensor(x: Any) -> Tensor:
    """`keras.ops.convert_to_tensor`, reading a `tf.Variable`/`keras.Variable`.

    `keras.ops.convert_to_tensor` returns such a variable unchanged; it lacks
    attributes some `keras.ops` use (`ndim`) and, read inside a
    `keras.ops.custom_gradient` function, makes TensorFlow ask for variable
    gradients. Its value (a read that gradient tapes still record) is
    returned instead.
    """
    if isinstance(x, (tf.Variable, keras.Variable)):
        return tf.convert_to_tensor(x)
    return keras.ops.convert_to_tensor(x)


def _replica_context() -> tf.distribute.ReplicaContext | None:
    """The replica context of a multi-replica strategy, else `None`."""
    if tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def replica_count() -> int:
    """`num_replicas_in_sync` inside a multi-replica context, else 1."""
    context = _replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def loss_scale() -> float:
    """`1 / num_replicas_in_sync`: strategies sum the replicas' gradients."""
    return 1.0 / replica_count()


def variable_scope(model: keras.Model) -> AbstractContextManager:
    """The model's strategy scope, so new variables are mirrored like its own."""
    if hasattr(model, "distribute_strategy"):
        return model.distribute_strategy.scope()
    return contextlib.nullcontext()


def all_gather(x: Tensor) -> Tensor:
    """`x` concatenated along axis 0 over the strategy's replicas.

    The gradient of a replica's rows is the sum over replicas. `x` goes
    through `tf.identity` first: MultiWorkerMirroredStrategy's gather of a
    tensor that is a distributed dataset's element (placed on the input
    device) fails with "destinations can not be empty".
    """
    context = _replica_context()
    if context is None:
        return x
    gathered = context.all_gather(tf.identity(x), axis=0)
    # The gather forgets the static feature shape that later code reads.
    gathered.set_shape([None, *x.shape[1:]])
    return gathered


def replica_offset(local_size: int | Tensor) -> int | Tensor:
    """The rows of the replicas before this one (a scalar tensor)."""
    context = _replica_context()
    if context is None:
        return 0
    sizes = context.all_gather(tf.reshape(tf.cast(local_size, "int32"), (1,)), axis=0)
    return tf.reduce_sum(sizes[: context.replica_id_in_sync_group])


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike,
    input_signature: Sequence[Any],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    search_k: int = 10,
) -> None:
    """Keras' export in this process; with `search_indexes`, the search endpoints too.

    See `keras_mlcl.models.export.write_with_search`.
    """
    if search_indexes is None:
        single_process.export_saved_model(model, filepath, input_signature, modules, verbose)
        return
    from keras_mlcl.models.export import write_with_search

    write_with_search(model, filepath, input_signature, search_indexes, search_k, verbose)


def fast_supcon_rows() -> None:
    """None: the `keras.ops` kernel is the SupCon kernel here (XLA fuses its passes, also in a
    graph without XLA: `fuse_elementwise`)."""
    return None


def fori_loop(
    lower: int | Tensor, upper: int | Tensor, body_fun: Callable[[Any, Any], Any], init_val: Any
) -> Any:
    """`keras.ops.fori_loop` with one iteration at a time (`parallel_iterations=1`).

    Outside XLA, `tf.while_loop` starts up to 10 iterations at once; the
    blockwise kernel's iterations are independent blocks, so that would hold
    10 blocks in memory instead of one.
    """
    return tf.while_loop(
        lambda i, _: i < upper,
        lambda i, value: (i + 1, body_fun(i, value)),
        (lower, init_val),
        parallel_iterations=1,
    )[1]


def compile_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """`tf.function(function, jit_compile=True)`: XLA, one program per input shapes."""
    return tf.function(function, jit_compile=True)


def top_k_lower_index_first(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """`keras.ops.top_k`: `tf.math.top_k` already puts the lower index first among equals."""
    return keras.ops.top_k(x, k)


def compiled_by_xla() -> bool:
    """Whether the code being traced is compiled by XLA (`tf.function(jit_compile=True)`,
    directly or around the function being traced); False when executing eagerly."""
    if tf.executing_eagerly():
        return False
    # TensorFlow has no public call for it; tf.function marks the graphs it compiles.
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def fuse_elementwise(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as one XLA program when called in a graph that XLA does not compile, on a
    machine with CPUs only.

    Keras' TensorFlow train step on a CPU-only machine is a `tf.function` without XLA
    (`jit_compile="auto"`), where every element-wise op of the blockwise kernel reads and
    writes a whole block; XLA fuses them into a few passes. `function` runs as it is
    eagerly (no compilation per call), inside an XLA program (XLA compiles it with the
    rest), and where the machine has another device: there a graph is left without XLA on
    purpose (a distribution strategy, a device XLA does not support).
    """

    def call(*args: Any) -> Any:
        if tf.executing_eagerly() or compiled_by_xla() or not _cpu_only():
            return function(*args)
        return tf.function(function, jit_compile=True, autograph=False)(*args)

    return call


@functools.cache
def _cpu_only() -> bool:
    """Whether TensorFlow sees CPU devices only (read once: they are fixed at start-up)."""
    return all(device.device_type == "CPU" for device in tf.config.list_physical_devices())
