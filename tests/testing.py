"""Backend-neutral helpers for the tests (tests may touch backends directly)."""

import os

import keras
import numpy as np


def run_backends():
    """The backends of this `make test` run, in order (`KERAS_MLCL_TEST_BACKENDS`), or `None`.

    `None` when the variable is unset or does not name the active backend: a plain `pytest`
    run, where every test runs under the active backend (see `tests/conftest.py`).
    """
    backends = os.environ.get("KERAS_MLCL_TEST_BACKENDS", "").split()
    return backends if keras.backend.backend() in backends else None


def runs_on_this_backend(key):
    """Whether the check numbered `key` (an int) runs here: on backend `key mod n` of the run.

    Spreads a test's examples over the backends of a `make test` run by a fixed rule; in a
    plain `pytest` run every example runs.
    """
    backends = run_backends()
    return backends is None or backends[key % len(backends)] == keras.backend.backend()


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
