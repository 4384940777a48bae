"""Timing and peak memory of compiled functions, per backend.

Each runner returns a zero-argument callable that runs a forward pass and its gradient and
waits for the result, compiled the way the backend runs fastest: `jax.jit` on JAX,
`tf.function(jit_compile=True)` (XLA) on TensorFlow, eager or `torch.compile` on PyTorch.
All the speed bench's backend-specific code lives in this module.
"""

import time

import keras
import numpy as np
from keras import ops

WARMUP = 3


def gradient_runner(fn, x, args, mode):
    """`fn(x, *args)` (a scalar) and its gradient with respect to `x`."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(fn))
        x, args = jax.numpy.asarray(x), [jax.numpy.asarray(a) for a in args]
        return lambda: jax.block_until_ready(step(x, *args)), step, (x, *args)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(x, *args):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = fn(x, *args)
            return value, tape.gradient(value, x)

        x, args = tf.constant(x), [tf.constant(a) for a in args]
        return lambda: step(x, *args), step, (x, *args)
    import torch

    forward = torch.compile(fn) if mode == "torch.compile" else fn
    x, args = torch.as_tensor(x), [torch.as_tensor(a) for a in args]

    def run():
        leaf = x.detach().requires_grad_(True)
        value = forward(leaf, *args)
        value.backward()
        return value.detach(), leaf.grad

    return run, None, None


def matmul_runner(z, cotangent, mode):
    """The bare `s = z @ z.T` forward and its gradient for a fixed cotangent."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def vjp(z, c):
            s, pullback = jax.vjp(lambda t: ops.matmul(t, ops.transpose(t)), z)
            return s, pullback(c)[0]

        step = jax.jit(vjp)
        z, c = jax.numpy.asarray(z), jax.numpy.asarray(cotangent)
        return lambda: jax.block_until_ready(step(z, c)), step, (z, c)
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(z, c):
            with tf.GradientTape() as tape:
                tape.watch(z)
                s = ops.matmul(z, ops.transpose(z))
            return s, tape.gradient(s, z, output_gradients=c)

        z, c = tf.constant(z), tf.constant(cotangent)
        return lambda: step(z, c), step, (z, c)
    import torch

    def product(t):
        return ops.matmul(t, ops.transpose(t))

    forward = torch.compile(product) if mode == "torch.compile" else product
    z, c = torch.as_tensor(z), torch.as_tensor(cotangent)

    def run():
        leaf = z.detach().requires_grad_(True)
        s = forward(leaf)
        s.backward(c)
        return s.detach(), leaf.grad

    return run, None, None


def backend_details(backend):
    """The backend library's version under its name, and `torch_threads` on torch."""
    if backend not in ("tensorflow", "jax", "torch"):
        return {}
    library = __import__(backend)
    details = {backend: library.__version__}
    if backend == "torch":
        details["torch_threads"] = library.get_num_threads()
    return details


def default_mode(backend):
    return {"jax": "jax.jit", "tensorflow": "tf.function(jit_compile=True)"}.get(backend, "eager")


def time_interleaved(functions, repeats, warmup=WARMUP):
    """Median seconds of each zero-argument function, timed round by round."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def peak_memory_mb(run, step, args):
    """`(method, MB)`: the peak memory of one call, as well as the backend can tell."""
    backend = keras.backend.backend()
    if backend == "jax" and step is not None:
        stats = step.lower(*args).compile().memory_analysis()
        if stats is not None:
            total = (
                stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
            )
            return "XLA buffer assignment (arguments + outputs + temporaries)", total / 2**20
    if backend == "torch":
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile

        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            run()
        # Allocations count at the start of the op that made them (its own,
        # children excluded), frees as "[memory]" events when they happen.
        events = sorted(
            (e for e in profiler.events() if e.self_cpu_memory_usage != 0),
            key=lambda e: e.time_range.start,
        )
        current = peak = 0
        for event in events:
            current += event.self_cpu_memory_usage
            peak = max(peak, current)
        return "torch profiler, bytes allocated during the call", peak / 2**20
    # TensorFlow keeps no CPU allocator statistics, and the process's resident
    # set does not grow once its allocator holds the buffers: no honest number.
    return "not measured on this backend (no CPU allocator statistics)", None
