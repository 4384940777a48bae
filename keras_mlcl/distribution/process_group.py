"""Multi-process data parallelism for the PyTorch backend.

Keras' torch backend has no `keras.distribution` support and no
multi-process trainer. These helpers make plain `model.fit` work when one
process per replica runs it under `torch.distributed` (gloo on CPU, nccl
on GPU): each process feeds its own shard of every batch, the contrastive
loss gathers embeddings and labels across processes (see
`gather_across_replicas`), and gradients are averaged before Keras'
optimizer applies them, so every process keeps the same weights.
"""

from typing import Any

from keras_mlcl import backend


def broadcast_variables(model: Any, source: int = 0) -> None:
    """Copies all of `model`'s variables from process `source` to the others.

    Call it once after building the model (and the optimizer, if it has
    state), so every process starts from the same weights.

    Args:
        model: a built Keras model (or layer).
        source: the rank whose values are kept. Defaults to 0.

    Example (not run as a test: it needs one process per replica; see docs/scaling.md):

    >>> torch.distributed.init_process_group("gloo")  # doctest: +SKIP
    >>> model(x[:1])  # build  # doctest: +SKIP
    >>> broadcast_variables(model)  # doctest: +SKIP
    """
    if isinstance(source, bool) or not isinstance(source, int) or source < 0:
        raise ValueError(f"`source` should be a process rank >= 0. Received: `source`={source!r}")
    size = backend.process_group_size()
    if source >= size:
        raise ValueError(
            f"`source` should be a rank of the process group (0 to {size - 1}). "
            f"Received: `source`={source}"
        )
    backend.broadcast(model.variables, source=source)


def average_gradients_across_processes(model: Any) -> list[Any]:
    """Averages every trainable variable's gradient over the process group.

    Registers a hook on each trainable variable that all-reduces its
    gradient as soon as backpropagation has accumulated it, and divides
    by the number of processes: what `DistributedDataParallel` does,
    without wrapping the Keras model, so `model.fit` keeps working.

    Args:
        model: a built Keras model; its trainable variables get the hooks.

    Returns:
        The list of hook handles; call `handle.remove()` on each to stop.

    Example (not run as a test: it needs one process per replica; see docs/scaling.md):

    >>> handles = average_gradients_across_processes(model)  # doctest: +SKIP
    >>> model.fit(x_shard, y_shard, batch_size=local_batch_size)  # doctest: +SKIP
    """
    if not getattr(model, "built", True):
        raise ValueError(
            "`model` should be built (call it on a batch) before adding gradient hooks."
        )
    return backend.average_gradients(model.trainable_variables)
