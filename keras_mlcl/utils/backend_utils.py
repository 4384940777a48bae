"""The one place where keras-mlcl looks at the active backend directly.

Keras offers no common way to ask whether a tensor holds concrete values or
is being traced (`tf.function`, `jax.jit`, `torch.compile`). Data checks that
need values (for example "no embedding has zero norm") run only when the
values are concrete; traced code skips them instead of failing to compile.

Nor does `keras.ops.convert_to_tensor` read variables on TensorFlow, where a
`tf.Variable` or `keras.Variable` counts as a tensor and comes back as it is.
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


def as_tensor(x):
    """`keras.ops.convert_to_tensor`, with variables read into plain tensors.

    On TensorFlow, `keras.ops.convert_to_tensor` returns a `tf.Variable` or a
    `keras.Variable` unchanged. Such a variable lacks attributes some
    `keras.ops` use (`ndim`) and, read inside a `keras.ops.custom_gradient`
    function, makes TensorFlow ask for variable gradients. Its value (a read
    that gradient tapes still record) is returned instead. On JAX and
    PyTorch, `keras.ops.convert_to_tensor` already returns the value.

    Args:
        x: a tensor, variable, NumPy array or nested Python sequence.

    Returns:
        A tensor of the active backend.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(x, (tf.Variable, keras.Variable)):
            return tf.convert_to_tensor(x)
    return keras.ops.convert_to_tensor(x)
