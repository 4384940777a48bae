"""The speed bench's backend module (`keras_mlcl.bench.backend`), on the active backend."""

import keras
import numpy as np
from keras import ops

from keras_mlcl.bench import backend
from keras_mlcl.bench.timing import time_interleaved


def test_gradient_and_matmul_runners_compute_the_gradient() -> None:
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


def test_library_details_name_the_backend_library() -> None:
    details = backend.library_details()
    library = keras.backend.backend()
    assert details[library] == __import__(library).__version__
    assert ("torch_threads" in details) == (library == "torch")


def test_modes_and_peer_of_the_backend() -> None:
    on_torch = keras.backend.backend() == "torch"
    assert backend.optional_modes() == (["torch.compile"] if on_torch else [])
    peer, description = backend.supcon_peer(0.1)
    assert isinstance(description, str) and description
    if not on_torch:
        assert peer is None and "torch backend" in description
    elif peer is not None:
        assert "SupConLoss(temperature=0.1)" in description
