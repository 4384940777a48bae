"""keras-mlcl's JAX-specific code (see `keras_mlcl.backend`).

Data parallelism runs under `keras.distribution` (`DataParallel`,
`ModelParallel`): the step is one program over *global* arrays sharded
across devices, and XLA inserts the collectives. The loss already sees the
global batch, so there is nothing to gather and one replica to count.
"""

import contextlib
import os
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import jax
import keras
import numpy as np

from keras_mlcl.backend import single_process
from keras_mlcl.backend.single_process import average_gradients  # noqa: F401
from keras_mlcl.backend.single_process import broadcast  # noqa: F401
from keras_mlcl.backend.single_process import process_group_size  # noqa: F401
from keras_mlcl.utils.types import Tensor


def concrete_numpy(x: Any) -> np.ndarray | None:
    """`x` as a NumPy array unless it is a JAX tracer or symbolic, else `None`."""
    if isinstance(x, (jax.core.Tracer, keras.KerasTensor)):
        return None
    return keras.ops.convert_to_numpy(x)


def as_tensor(x: Any) -> Tensor:
    """`keras.ops.convert_to_tensor` (it already reads variables on JAX)."""
    return keras.ops.convert_to_tensor(x)


def replica_count() -> int:
    """1: arrays are global under `keras.distribution`."""
    return 1


def loss_scale() -> float:
    """1: JAX computes one global loss."""
    return 1.0


def variable_scope(model: keras.Model) -> AbstractContextManager:
    """A no-op: JAX variables follow the active `keras.distribution`."""
    return contextlib.nullcontext()


def all_gather(x: Tensor) -> Tensor:
    """`x` itself: it already holds the global batch."""
    return x


def replica_offset(local_size: int | Tensor) -> int:
    """0: the one "replica" holds the whole batch."""
    return 0


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike,
    input_signature: Sequence[Any],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    search_k: int = 10,
) -> None:
    """Keras' export in this process (jax2tf); with `search_indexes`, in a TensorFlow process.

    The search endpoints are TensorFlow graph code, so with them the model
    is exported by a TensorFlow-backend child process from a `.keras` copy
    (`keras_mlcl.models.export.export_in_tensorflow_process`).
    """
    if search_indexes is None:
        single_process.export_saved_model(model, filepath, input_signature, modules, verbose)
        return
    from keras_mlcl.models.export import export_in_tensorflow_process

    export_in_tensorflow_process(
        model, filepath, input_signature, modules, verbose, search_indexes, search_k
    )


def fast_supcon_rows() -> None:
    """None: the `keras.ops` kernel is the SupCon kernel here (XLA fuses its passes)."""
    return None


def fori_loop(
    lower: int | Tensor, upper: int | Tensor, body_fun: Callable[[Any, Any], Any], init_val: Any
) -> Any:
    """`keras.ops.fori_loop`: its iterations already run one after another here."""
    return keras.ops.fori_loop(lower, upper, body_fun, init_val)


def compile_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """`jax.jit(function)`: one program per input shapes and dtypes, kept for later calls."""
    return jax.jit(function)


def top_k_lower_index_first(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """`keras.ops.top_k`: `jax.lax.top_k` already puts the lower index first among equals."""
    return keras.ops.top_k(x, k)


def compiled_by_xla() -> bool:
    """True: JAX compiles every traced function with XLA."""
    return True


def fuse_elementwise(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` itself: XLA already fuses the blockwise kernel's passes here."""
    return function
