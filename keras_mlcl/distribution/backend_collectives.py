"""The one module of keras-mlcl with backend-specific collective operations.

Keras offers no common API to ask how many data-parallel replicas share a
step, nor to gather a tensor across them. Each backend runs data
parallelism differently:

- JAX (`keras.distribution.DataParallel` / `ModelParallel`): the step is
  one program over *global* arrays sharded across devices; XLA inserts the
  collectives. The loss already sees the global batch: nothing to gather.
- TensorFlow (`tf.distribute.MirroredStrategy` and friends): the step runs
  once per replica on its local batch (a replica context); gradients are
  summed over replicas, so Keras scales each replica's loss by
  `1 / num_replicas_in_sync`.
- PyTorch (`torch.distributed`, one process per replica): Keras has no
  multi-process trainer; each process runs its own step on its local batch
  and gradients are averaged over processes (DistributedDataParallel, or
  `keras_mlcl.distribution.average_gradients_across_processes`).

Everything else in keras-mlcl calls the backend-neutral functions of
`keras_mlcl.distribution.cross_replica`, which dispatch here.
"""

import contextlib

import keras


def _tf_replica_context():
    """The TF replica context of a multi-replica strategy, else `None`."""
    import tensorflow as tf

    if tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def _torch_world_size():
    """The size of the default `torch.distributed` process group (1 if none)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def replica_count():
    """How many replicas' local batches make the global batch (1 if none)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        context = _tf_replica_context()
        return 1 if context is None else int(context.num_replicas_in_sync)
    if backend == "torch":
        return _torch_world_size()
    return 1


def loss_scale():
    """The factor a replica's copy of a *global* loss is multiplied by.

    TensorFlow strategies sum the replicas' gradients, so each replica's
    loss carries `1 / num_replicas_in_sync` (Keras' own convention);
    PyTorch process groups average gradients and JAX sees one global loss,
    so both use 1.
    """
    if keras.backend.backend() == "tensorflow":
        return 1.0 / replica_count()
    return 1.0


def variable_scope(model):
    """The context to create new variables of `model` in.

    On TensorFlow, the model's `tf.distribute` strategy scope (so new
    state is mirrored like the model's); a no-op elsewhere.
    """
    if keras.backend.backend() == "tensorflow" and hasattr(model, "distribute_strategy"):
        return model.distribute_strategy.scope()
    return contextlib.nullcontext()


def all_gather(x):
    """Concatenates `x` along axis 0 over all replicas, in replica order.

    Differentiable: the gradient of a replica's slice is the *sum* over
    replicas of the gradients of that slice, so a loss that every replica
    computes on the gathered batch trains as the same loss on one device.
    Replicas may hold different numbers of rows.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        context = _tf_replica_context()
        if context is None:
            return x
        gathered = context.all_gather(x, axis=0)
        # The gather forgets the static feature shape that later code reads.
        gathered.set_shape([None, *x.shape[1:]])
        return gathered
    if backend == "torch" and _torch_world_size() > 1:
        return _torch_all_gather(x)
    return x


def replica_offset(local_size):
    """The index of this replica's first row in the gathered batch."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        context = _tf_replica_context()
        if context is None:
            return 0
        sizes = context.all_gather(tf.reshape(tf.cast(local_size, "int32"), (1,)), axis=0)
        return tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    if backend == "torch" and _torch_world_size() > 1:
        import torch.distributed as dist

        sizes = _torch_sizes(int(local_size))
        return sum(sizes[: dist.get_rank()])
    return 0


def _torch_sizes(local_size):
    import torch
    import torch.distributed as dist

    size = torch.tensor([local_size], dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _torch_gather_padded(x, sizes):
    """`all_gather` of `x` padded to the longest replica's rows, then trimmed."""
    import torch
    import torch.distributed as dist

    longest = max(sizes)
    padded = x.contiguous()
    if x.shape[0] < longest:
        padding = x.new_zeros((longest - x.shape[0],) + tuple(x.shape[1:]))
        padded = torch.cat([padded, padding])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


def _torch_all_gather(x):
    import torch
    import torch.distributed as dist

    x = torch.as_tensor(x)
    is_bool = x.dtype == torch.bool
    if is_bool:  # gloo has no boolean collectives
        x = x.to(torch.uint8)
    sizes = _torch_sizes(int(x.shape[0]))
    if x.requires_grad:
        gathered = _TorchAllGather.apply(x, sizes, dist.get_rank())
    else:
        gathered = _torch_gather_padded(x, sizes)
    return gathered.to(torch.bool) if is_bool else gathered


def _torch_all_gather_function():
    import torch
    import torch.distributed as dist

    class TorchAllGather(torch.autograd.Function):
        """All-gather whose backward sums the gradients over processes."""

        @staticmethod
        def forward(ctx, x, sizes, rank):
            ctx.sizes, ctx.rank = sizes, rank
            return _torch_gather_padded(x, sizes)

        @staticmethod
        def backward(ctx, grad):
            grad = grad.contiguous().clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
            start = sum(ctx.sizes[: ctx.rank])
            return grad[start : start + ctx.sizes[ctx.rank]], None, None

    return TorchAllGather


class _LazyFunction:
    """Builds the torch autograd function on first use (torch stays optional)."""

    function = None

    def apply(self, *args):
        if _LazyFunction.function is None:
            _LazyFunction.function = _torch_all_gather_function()
        return _LazyFunction.function.apply(*args)


_TorchAllGather = _LazyFunction()


def torch_process_group_size():
    """The `torch.distributed` world size, or raises if there is no group."""
    if keras.backend.backend() != "torch":
        raise ValueError(
            "Process-group helpers need the torch backend (KERAS_BACKEND=torch). "
            f"Received backend {keras.backend.backend()!r}; on JAX use "
            "keras.distribution.DataParallel, on TensorFlow tf.distribute."
        )
    size = _torch_world_size()
    if size == 1:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "No torch.distributed process group: call "
                "`torch.distributed.init_process_group(...)` first."
            )
    return size


def torch_average_gradients(variables):
    """Registers hooks that average each variable's gradient over processes.

    Returns:
        The hook handles (call `.remove()` on each to undo).
    """
    import torch.distributed as dist

    world_size = torch_process_group_size()

    def average(parameter):
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world_size)

    return [v.value.register_post_accumulate_grad_hook(average) for v in variables]


def torch_broadcast(variables, source=0):
    """Copies every variable's value from process `source` to all others."""
    import torch
    import torch.distributed as dist

    torch_process_group_size()
    with torch.no_grad():
        for variable in variables:
            value = variable.value.detach().clone().contiguous()
            dist.broadcast(value, src=source)
            variable.assign(value)
