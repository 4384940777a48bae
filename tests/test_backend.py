"""The active backend module's functions, on the active backend."""

import keras
import numpy as np
from keras import ops

from keras_mlcl import backend
from keras_mlcl.bench.timing import time_interleaved


def test_concrete_numpy_and_as_tensor():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(backend.concrete_numpy(ops.convert_to_tensor(x)), x)
    assert backend.concrete_numpy(keras.KerasTensor((2, 3))) is None
    variable = keras.Variable(x)
    value = backend.as_tensor(variable)
    assert not isinstance(value, keras.Variable)
    np.testing.assert_array_equal(ops.convert_to_numpy(value), x)
    assert ops.ndim(value) == 2


def test_gradient_and_matmul_runners_compute_the_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype("float32")
    weights = rng.normal(size=(4, 3)).astype("float32")
    run, step, step_args = backend.gradient_runner(
        lambda x, w: ops.sum(w * x * x), x, [weights], backend.default_mode()
    )
    value, gradient = run()
    np.testing.assert_allclose(ops.convert_to_numpy(value), np.sum(weights * x * x), rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), 2 * weights * x, rtol=1e-5)

    cotangent = rng.normal(size=(4, 4)).astype("float32")
    run, step, step_args = backend.matmul_runner(x, cotangent, backend.default_mode())
    s, gradient = run()
    np.testing.assert_allclose(ops.convert_to_numpy(s), x @ x.T, rtol=1e-5, atol=1e-6)
    expected = (cotangent + cotangent.T) @ x
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), expected, rtol=1e-5, atol=1e-5)

    method, megabytes = backend.peak_memory_mb(run, step, step_args)
    assert isinstance(method, str) and method
    assert megabytes is None or megabytes >= 0
    medians = time_interleaved({"matmul": run}, repeats=3, warmup=1)
    assert set(medians) == {"matmul"} and medians["matmul"] > 0


def test_library_details_name_the_backend_library():
    details = backend.library_details()
    library = keras.backend.backend()
    assert details[library] == __import__(library).__version__
    assert ("torch_threads" in details) == (library == "torch")
