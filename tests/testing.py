"""Backend-neutral helpers for the tests (tests may touch backends directly)."""

import os

import keras
import numpy as np


def to_numpy(x):
    """Any backend tensor (or nested dict of them) as NumPy."""
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return np.asarray(keras.ops.convert_to_numpy(x))


def assert_allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(to_numpy(actual), np.asarray(expected), atol=atol, rtol=rtol)


def value_and_grad(fn, x):
    """`fn(x)` (a scalar) and its gradient with respect to `x`, both as NumPy.

    `x` is a NumPy array; the gradient is taken by the active backend.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            value = fn(xt)
        grad = tape.gradient(value, xt)
        return to_numpy(value), to_numpy(grad)
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(lambda t: fn(t))(keras.ops.convert_to_tensor(x))
        return to_numpy(value), to_numpy(grad)
    import torch

    xt = torch.tensor(x, requires_grad=True)
    value = fn(xt)
    value.backward()
    return to_numpy(value.detach()), to_numpy(xt.grad)


def unit_rows(rng, n, d, dtype="float32"):
    z = rng.normal(size=(n, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(dtype)


def file_tree(root):
    """`{relative path: bytes}` of every file below `root`: to assert nothing was touched."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found
