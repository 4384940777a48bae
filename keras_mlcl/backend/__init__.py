"""The backend-specific code of keras-mlcl, chosen once when it is imported.

Keras offers no common API for a few things keras-mlcl needs: whether a
tensor's values are known or traced, collectives across data-parallel
replicas, a SavedModel export from every backend, and a native SupCon kernel
where Keras' per-op dispatch is slow. `tensorflow.py`, `jax.py` and `torch.py`
each implement them for their backend only; this package imports the one
named by `keras.backend.backend()` (once, at import) and binds its functions
here. Every other module calls these names and never branches on the
backend. What only the benchmarks need (timed, compiled steps, the
profiler) is in `keras_mlcl.bench.backend`, chosen the same way.

Tensors:

- `concrete_numpy(x)`: `x` as a NumPy array if its values are known, else
  `None` (symbolic, or traced by `tf.function`, `jax.jit`, `torch.compile`).
- `as_tensor(x)`: `keras.ops.convert_to_tensor`, with variables read into
  plain tensors (TensorFlow returns variables unchanged).

Data parallelism (called by `keras_mlcl.distribution`):

- `replica_count()`: how many replicas' local batches form the global batch.
- `loss_scale()`: the factor a replica's copy of a global loss carries.
- `variable_scope(model)`: the context to create variables shared by
  `model`'s replicas in.
- `all_gather(x)`: `x` concatenated along axis 0 over replicas, in order
  (differentiable).
- `replica_offset(local_size)`: this replica's first row in a gathered batch.
- `process_group_size()`, `average_gradients(variables)`,
  `broadcast(variables, source)`: `torch.distributed` process-group helpers;
  they raise `ValueError` on the other backends.

Kernels:

- `fast_supcon_rows()`: a native SupCon kernel with the contract of
  `keras_mlcl.ops.blockwise.supcon_rows`, or None where the `keras.ops`
  kernel is the fastest (torch has one: Keras' per-op dispatch costs there).
- `fori_loop(lower, upper, body_fun, init_val)`: `keras.ops.fori_loop` whose
  iterations run one at a time (the blockwise kernel's memory bound).
- `compile_function(function)`: `function` compiled for repeated calls with
  the same shapes (`jax.jit`, `tf.function` with XLA; torch: eager).
- `compiled_by_xla()`: whether the code being traced is compiled by XLA (the
  blockwise kernel then keeps its blocks within the CPU's cache).
- `fuse_elementwise(function)`: `function` run as one fused program where the
  backend would run its element-wise ops one by one (a TensorFlow graph without
  XLA on a CPU-only machine: `tf.function` with XLA); `function` itself elsewhere.
- `top_k_lower_index_first(x, k)`: `keras.ops.top_k` over the last axis with
  the lower index first among equal values (`torch.topk` promises no order).

Export:

- `export_saved_model(model, filepath, input_signature, modules, verbose,
  search_indexes, search_k)`: writes a TF SavedModel, with a `search` endpoint
  per index given (in a TensorFlow child process from torch, and from JAX when
  there are search indexes).
"""

import importlib

import keras

BACKENDS = ("tensorflow", "jax", "torch")

name = keras.backend.backend()
if name not in BACKENDS:
    raise ImportError(
        f"keras-mlcl runs on the {', '.join(BACKENDS)} backends. Received: KERAS_BACKEND={name!r}"
    )
active = importlib.import_module(f"keras_mlcl.backend.{name}")

concrete_numpy = active.concrete_numpy
as_tensor = active.as_tensor
replica_count = active.replica_count
loss_scale = active.loss_scale
variable_scope = active.variable_scope
all_gather = active.all_gather
replica_offset = active.replica_offset
process_group_size = active.process_group_size
average_gradients = active.average_gradients
broadcast = active.broadcast
export_saved_model = active.export_saved_model
fast_supcon_rows = active.fast_supcon_rows
fori_loop = active.fori_loop
compile_function = active.compile_function
compiled_by_xla = active.compiled_by_xla
fuse_elementwise = active.fuse_elementwise
top_k_lower_index_first = active.top_k_lower_index_first

__all__ = [
    "all_gather",
    "as_tensor",
    "average_gradients",
    "broadcast",
    "compile_function",
    "compiled_by_xla",
    "concrete_numpy",
    "export_saved_model",
    "fast_supcon_rows",
    "fori_loop",
    "fuse_elementwise",
    "loss_scale",
    "process_group_size",
    "replica_count",
    "replica_offset",
    "top_k_lower_index_first",
    "variable_scope",
]
