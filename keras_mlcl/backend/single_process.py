"""What the backends without `torch.distributed` share (TensorFlow, JAX).

Their process-group helpers raise (data parallelism there runs under
`tf.distribute` or `keras.distribution`), and Keras exports their
SavedModels in this process (from JAX, a SavedModel with search endpoints
goes through a TensorFlow child process: `keras_mlcl.models.export`).
"""

import os
from collections.abc import Sequence
from typing import Any

import keras


def _needs_torch() -> ValueError:
    return ValueError(
        "Process-group helpers need the torch backend (KERAS_BACKEND=torch); on JAX use "
        "keras.distribution.DataParallel, on TensorFlow a tf.distribute strategy. "
        f"Received backend {keras.backend.backend()!r}."
    )


def process_group_size() -> int:
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def average_gradients(variables: Sequence[keras.Variable]) -> list[Any]:
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def broadcast(variables: Sequence[keras.Variable], source: int = 0) -> None:
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike,
    input_signature: Sequence[Any],
    modules: Sequence[str] = (),
    verbose: bool = False,
) -> None:
    """`keras.Model.export(format="tf_saved_model")`, in this process (jax2tf on JAX)."""
    keras.Model.export(
        model,
        filepath,
        format="tf_saved_model",
        input_signature=input_signature,
        verbose=verbose,
    )
