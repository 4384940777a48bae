"""The speed bench's backend-specific code, chosen once when it is imported.

Timing a compiled forward-and-gradient step, reading its peak memory and
naming the library's version differ on every backend and serve the
benchmarks only, so they live here, beside them, and not in the runtime's
`keras_mlcl.backend`. `tensorflow.py`, `jax.py` and `torch.py` each
implement them for their backend only (what JAX and TensorFlow share is in
`xla.py`); this package imports the one named by `keras.backend.backend()`
(once, at import) and binds its functions here. The bench's other modules
call these names and never branch on the backend.

- `default_mode()`: the compilation mode the runners use by default.
- `optional_modes()`: the other modes `supcon_vs_matmul` may also time
  (`torch.compile` on torch).
- `gradient_runner(fn, x, args, mode)` and `matmul_runner(z, cotangent, mode)`:
  `(run, step, step_args)`, `run` a zero-argument callable that computes a
  forward pass and its gradient and waits for the result
  (`keras_mlcl.bench.timing.Runner`).
- `peak_memory_mb(run, step, step_args)`: `(method, MB or None)`.
- `library_details()`: the backend library's version (and torch's threads).
- `supcon_peer(temperature)`: `(loss function or None, description)`, a
  peer library's SupCon loss to time ours against (pytorch-metric-learning
  on torch), or None and the reason there is none.
"""

import importlib

from keras_mlcl import backend as runtime

# The runtime's choice (it refuses a backend keras-mlcl does not run on).
name = runtime.name
active = importlib.import_module(f"keras_mlcl.bench.backend.{name}")

default_mode = active.default_mode
optional_modes = active.optional_modes
gradient_runner = active.gradient_runner
matmul_runner = active.matmul_runner
peak_memory_mb = active.peak_memory_mb
library_details = active.library_details
supcon_peer = active.supcon_peer

__all__ = [
    "default_mode",
    "gradient_runner",
    "library_details",
    "matmul_runner",
    "optional_modes",
    "peak_memory_mb",
    "supcon_peer",
]
