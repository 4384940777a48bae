"""The snippets of docs/scaling.md, run on CPU devices.

The data-parallel snippets need process-level settings (simulated XLA
devices, logical TF devices, a torch process group), so each runs in a
child process, only under its own backend. They assert, inside the
snippet, that the sharded `evaluate()` loss equals the single-device loss
to 1e-4 and that the trained weights agree to 1e-5.
"""

import keras
import numpy as np
import pytest

from tests.distribution import multi_replica_checks
from tests.distribution.snippets import run_script
from tests.distribution.snippets import snippet

BACKEND = keras.backend.backend()


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX snippet runs under the jax backend")
def test_jax_data_parallel_and_model_parallel_snippet(tmp_path):
    """A child process with 4 simulated XLA devices (the point), training twice."""
    process = run_script(
        snippet("jax") + multi_replica_checks.JAX,
        tmp_path,
        "jax",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
    )
    assert "4 devices" in process.stdout and "extra checks passed" in process.stdout


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="the TensorFlow snippet runs under the tensorflow backend"
)
def test_tensorflow_mirrored_strategy_snippet(tmp_path):
    """A child process with 4 logical TensorFlow devices (the point), training twice."""
    code = snippet("tensorflow") + multi_replica_checks.TENSORFLOW
    process = run_script(code, tmp_path, "tensorflow")
    assert "4 replicas" in process.stdout and "extra checks passed" in process.stdout


@pytest.mark.skipif(BACKEND != "torch", reason="the PyTorch snippet runs under the torch backend")
def test_torch_distributed_snippet(tmp_path):
    """Two torch.distributed processes (the point), each training, then the extra checks."""
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    code = snippet("torch")
    # The extra checks need the process group the snippet closes at its end.
    code = code.replace("dist.destroy_process_group()\n", "") + multi_replica_checks.TORCH
    process = run_script(code, tmp_path, "torch", launcher=launcher)
    assert "rank 0" in process.stdout and "rank 1" in process.stdout
    assert "2 processes" in process.stdout
    assert process.stdout.count("extra checks passed") == 2


def test_memory_bank_snippet():
    """Runs the guide's snippet; its own `assert filled == 128` is the check."""
    exec(compile(snippet("memory-bank"), "docs/scaling.md:memory-bank", "exec"), {})


@pytest.fixture
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def test_mixed_precision_snippet(restore_dtype_policy):
    """Runs the guide's snippet, which asserts a finite loss that falls; checked again here."""
    namespace = {}
    exec(compile(snippet("mixed-precision"), "docs/scaling.md:mixed-precision", "exec"), namespace)
    losses = namespace["history"].history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
