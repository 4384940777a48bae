"""What the backends without `torch.distributed` share (TensorFlow, JAX).

Their process-group helpers raise (data parallelism there runs under
`tf.distribute` or `keras.distribution`), and Keras exports their
SavedModels in this process.
"""

import keras


def _needs_torch():
    return ValueError(
        "Process-group helpers need the torch backend (KERAS_BACKEND=torch); on JAX use "
        "keras.distribution.DataParallel, on TensorFlow a tf.distribute strategy. "
        f"Received backend {keras.backend.backend()!r}."
    )


def process_group_size():
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def average_gradients(variables):
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def broadcast(variables, source=0):
    """Raises: `torch.distributed` process groups need the torch backend."""
    raise _needs_torch()


def export_saved_model(model, filepath, input_signature, modules=(), verbose=False):
    """`keras.Model.export(format="tf_saved_model")`, in this process (jax2tf on JAX)."""
    keras.Model.export(
        model,
        filepath,
        format="tf_saved_model",
        input_signature=input_signature,
        verbose=verbose,
    )
