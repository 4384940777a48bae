"""Two local JAX processes train as one: the multi-host route of docs/scaling.md.

Two child processes (2 simulated CPU devices each) join with
`keras.distribution.initialize` on 127.0.0.1 and run `DataParallel` over
the 4 devices. Their `evaluate` loss must equal the single-process loss of
the same global batch, and the weights after `fit` the single-process ones.
"""

import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.distribution import jax_multiprocess_worker as worker

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROCESSES = 2
INPUT_KINDS = ("tfdata", "numpy")
TIMEOUT = 180

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="keras.distribution multi-process runs only on the jax backend",
)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(folder):
    """Starts the worker processes, waits for them, and fails with their output if one fails.

    Returns:
        `{input_kind: [result of process 0, result of process 1]}`.
    """
    env = dict(os.environ)
    env.update(
        {
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": REPO + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    coordinator = f"127.0.0.1:{free_port()}"
    logs, processes = [], []
    for process_id in range(PROCESSES):
        log = open(folder / f"log_{process_id}.txt", "w+", encoding="utf-8")
        command = [
            sys.executable,
            worker.__file__,
            f"--coordinator={coordinator}",
            f"--num-processes={PROCESSES}",
            f"--process-id={process_id}",
            f"--inputs={','.join(INPUT_KINDS)}",
            f"--folder={folder}",
        ]
        logs.append(log)
        processes.append(
            subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    try:
        codes = [process.wait(timeout=TIMEOUT) for process in processes]
    except subprocess.TimeoutExpired:
        codes = ["timed out"] * PROCESSES
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    if codes != [0] * PROCESSES:
        report = "\n".join(
            f"--- process {i} (exit {code})\n{out[-4000:]}"
            for i, (code, out) in enumerate(zip(codes, outputs, strict=True))
        )
        pytest.fail(f"a worker process failed\n{report}")
    return {
        kind: [dict(np.load(folder / f"process_{i}_{kind}.npz")) for i in range(PROCESSES)]
        for kind in INPUT_KINDS
    }


@pytest.fixture(scope="module")
def single_process():
    """The reference: the same model, data and steps in this process, on one device."""
    model = worker.make_model()
    initial = model.get_weights()
    x, y = worker.data()
    evaluated, fitted = worker.evaluate_and_fit(model, x, y, worker.GLOBAL_BATCH)
    # A loss computed per process on its local rows only would be this one instead.
    local = worker.make_model()
    local.set_weights(initial)
    local_batch = worker.GLOBAL_BATCH // PROCESSES
    per_process = local.evaluate(x, y, batch_size=local_batch, verbose=0, return_dict=True)
    return {
        "initial": initial,
        "evaluate_loss": evaluated,
        "fit_loss": fitted,
        "weights": model.get_weights(),
        "local_batch_loss": float(per_process["loss"]),
    }


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, single_process):
    """Both input kinds, run once by one pair of worker processes."""
    folder = tmp_path_factory.mktemp("jax_multiprocess")
    np.savez(
        folder / "initial.npz",
        **{f"w{i}": w for i, w in enumerate(single_process["initial"])},
    )
    return run_processes(folder)


def test_the_reference_differs_from_a_per_process_loss(single_process):
    # Were each process to contrast only its own rows, its loss would be this far off.
    assert abs(single_process["local_batch_loss"] - single_process["evaluate_loss"]) > 0.1


@pytest.mark.parametrize("input_kind", INPUT_KINDS)
def test_two_processes_equal_one_process(two_processes, single_process, input_kind):
    reference = single_process["weights"]
    for process_id, result in enumerate(two_processes[input_kind]):
        assert int(result["devices"]) == 4 and int(result["local_devices"]) == 2
        np.testing.assert_allclose(
            result["evaluate_loss"], single_process["evaluate_loss"], rtol=1e-6
        )
        np.testing.assert_allclose(result["fit_loss"], single_process["fit_loss"], rtol=1e-6)
        trained = [result[f"w{i}"] for i in range(len(reference))]
        moved = max(
            np.abs(t - w).max() for t, w in zip(trained, single_process["initial"], strict=True)
        )
        assert moved > 1e-3, f"process {process_id}: fit did not change the weights"
        for got, expected in zip(trained, reference, strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-6)
