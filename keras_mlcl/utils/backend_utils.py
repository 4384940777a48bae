"""The one place where keras-mlcl looks at the active backend directly.

Keras offers no common way to ask whether a tensor holds concrete values or
is being traced (`tf.function`, `jax.jit`, `torch.compile`). Data checks that
need values (for example "no embedding has zero norm") run only when the
values are concrete; traced code skips them instead of failing to compile.
"""

import keras


def concrete_numpy(x):
    """Returns `x` as a NumPy array if its values are known, else `None`.

    Args:
        x: a tensor of the active backend.

    Returns:
        A NumPy array, or `None` while `x` is symbolic or traced.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "torch":
        import torch

        if torch.compiler.is_compiling():
            return None
    if isinstance(x, keras.KerasTensor):
        return None
    return keras.ops.convert_to_numpy(x)
