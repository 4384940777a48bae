"""Gathering a data-parallel batch so a contrastive loss sees every replica.

A contrastive loss is not a mean of independent per-sample terms: every
anchor is contrasted against every other sample of the batch. Under data
parallelism each replica holds a slice of the global batch, so a loss
computed on the slice alone is a different (smaller-batch) loss. The
functions here gather embeddings, labels and sample weights across
replicas; `keras_mlcl` losses call them, so the loss of a sharded batch
equals the single-device loss of the same global batch.
"""

from contextlib import AbstractContextManager
from typing import Any

import keras
from keras import ops

from keras_mlcl import backend
from keras_mlcl.utils.types import Tensor


def replica_count() -> int:
    """The number of data-parallel replicas whose batches form the global batch.

    `num_replicas_in_sync` inside a TensorFlow replica context, the world
    size of an initialised `torch.distributed` process group, else 1 (also
    under `keras.distribution` on JAX, where arrays are already global).

    Returns:
        A positive int.

    Example:

    >>> keras_mlcl.distribution.replica_count()  # one process, one device
    1
    """
    return backend.replica_count()


def gather_across_replicas(values: Any) -> Any:
    """Concatenates every tensor of `values` along axis 0 across replicas.

    On one replica (and on JAX, whose arrays are global) `values` is
    returned unchanged. The gather is differentiable: the gradient that
    reaches a replica's rows is the sum over replicas, so a global loss
    computed identically by every replica trains like the single-device
    loss (with the loss scaled by `loss_scale_for_replicas`).

    Args:
        values: a tensor, or a nested structure (dict, list, tuple) of
            tensors with the batch on axis 0; `None` entries stay `None`.

    Returns:
        The same structure with the global batch, replicas in order.

    Example (one replica: the batch comes back unchanged):

    >>> z = keras.ops.ones((4, 8))
    >>> labels = keras.ops.convert_to_tensor([0, 0, 1, 1])
    >>> z, labels = gather_across_replicas((z, labels))
    >>> tuple(keras.ops.shape(z)), keras.ops.convert_to_numpy(labels).tolist()
    ((4, 8), [0, 0, 1, 1])
    """
    if replica_count() == 1:
        return values

    def gather(x: Tensor | None) -> Tensor | None:
        return None if x is None else backend.all_gather(ops.convert_to_tensor(x))

    return keras.tree.map_structure(gather, values, none_is_leaf=True)


def loss_scale_for_replicas() -> float:
    """The factor for a replica's copy of a loss computed on the global batch.

    `1 / num_replicas_in_sync` on TensorFlow (its strategies *sum* the
    replicas' gradients, and Keras' trainer un-scales the logged loss by
    the same factor); 1 on PyTorch (process groups average gradients) and
    on JAX.

    Returns:
        A Python float.
    """
    return backend.loss_scale()


def replica_offset(local_size: int | Tensor) -> int | Tensor:
    """The index of this replica's first row in a gathered batch.

    Args:
        local_size: the number of rows this replica contributes.

    Returns:
        The rows of the replicas before this one: 0 on one replica, a
        scalar tensor or int otherwise.
    """
    if replica_count() == 1:
        return 0
    return backend.replica_offset(local_size)


def local_rows(values: Tensor, local_size: int | Tensor) -> Tensor:
    """This replica's rows of a gathered `(N_global, ...)` tensor.

    Args:
        values: a tensor gathered by `gather_across_replicas`.
        local_size: the number of rows this replica contributed.

    Returns:
        `values[offset : offset + local_size]`, `offset` being the rows of
        the replicas before this one (`values` itself on one replica).
    """
    if replica_count() == 1:
        return values
    offset = replica_offset(local_size)
    indices = ops.arange(local_size, dtype="int32") + ops.cast(offset, "int32")
    return ops.take(values, indices, axis=0)


def variable_scope(model: Any) -> AbstractContextManager[Any]:
    """The context in which to create variables that `model`'s replicas share.

    Under a TensorFlow strategy, its scope (the new variables are mirrored
    like the model's); on JAX and PyTorch a no-op (JAX variables follow
    the active `keras.distribution`).

    Args:
        model: the (built) model whose replicas share the new variables.

    Returns:
        A context manager.

    Example: a step counter that a model's replicas share.

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> with variable_scope(model):
    ...     steps = keras.Variable(0, trainable=False, name="steps")
    >>> int(keras.ops.convert_to_numpy(steps))
    0
    """
    return backend.variable_scope(model)
