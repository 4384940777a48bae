"""Without TensorFlow a SavedModel export says what to install, and a train run still completes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_mlcl.models.export import EXPORT_NEEDS_TENSORFLOW
from keras_mlcl.models.export import MissingTensorFlowError
from keras_mlcl.models.export import export_saved_model

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs the `keras-mlcl` console script's entry point in a process whose path finder does not see
# TensorFlow, as in a `pip install 'keras-mlcl[jax]'` environment: `import tensorflow` fails and
# `find_spec("tensorflow")` is None. (A `None` entry in `sys.modules` would not do: Keras takes
# "tensorflow" in `sys.modules` to mean that TensorFlow is imported.)
COMMAND_WITHOUT_TENSORFLOW = """
import importlib.machinery
import sys

class PathFinderWithoutTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [
    PathFinderWithoutTensorFlow if f is importlib.machinery.PathFinder else f
    for f in sys.meta_path
]
import keras_mlcl_launcher
sys.argv = ["keras-mlcl"] + sys.argv[1:]
keras_mlcl_launcher.main()
"""


def test_export_without_tensorflow_raises_one_line(monkeypatch, tmp_path):
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    target = tmp_path / "saved_model"
    with pytest.raises(MissingTensorFlowError) as raised:
        export_saved_model(model, target, [keras.InputSpec(shape=(None, 3), dtype="float32")])
    assert str(raised.value) == (
        "exporting a SavedModel needs TensorFlow: pip install 'keras-mlcl[export]' or tensorflow"
    )
    assert isinstance(raised.value, ImportError)
    assert not target.exists()


@pytest.mark.backend_independent
@pytest.mark.parametrize("backend", ["jax", "torch"])  # TensorFlow's backend needs TensorFlow
def test_train_command_without_tensorflow_completes(tmp_path, backend):
    """A process per backend (the point: an environment where TensorFlow cannot be imported)."""
    rng = np.random.default_rng(0)
    fine = np.arange(120) % 4
    x = (rng.normal(size=(120, 8)) + 3.0 * fine[:, None]).astype("float32")
    data = tmp_path / "small.npz"
    np.savez(data, x=x, y_coarse=fine // 2, y_fine=fine)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": REPOSITORY, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", COMMAND_WITHOUT_TENSORFLOW, "train", "--data", str(data)]
        + ["--epochs", "1", "--out", str(out), "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]  # --quiet: the skip is only recorded
    assert (out / "model.keras").is_file()
    assert not (out / "saved_model").exists()
    with open(out / "results.json") as f:
        results = json.load(f)
    assert results["export"] == {"saved_model": None, "skipped": EXPORT_NEEDS_TENSORFLOW}
    assert results["backend"] == backend
