"""Each example runs end to end at its `--smoke` size.

The examples are scripts above the library: in a `make test` run each runs on one backend, by
turns (see tests/conftest.py); the library they call is tested on every backend.
"""

import ast
import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.spread_over_backends

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "examples", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cifar100_hierarchical_smoke(monkeypatch, tmp_path):
    """tfds mock images carry random labels: nothing to learn, so the run end to end (tfds,
    image views, the ResNet encoder, the probe) and the scores' range are the check."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    probe = load("cifar100_hierarchical").main(["--smoke"])
    assert set(probe) == {"coarse", "fine"}
    assert all(0.0 <= value <= 1.0 for value in probe.values())


def test_clinc150_text_smoke_offline(no_data_dir, monkeypatch, tmp_path):
    """The text example end to end (tokenizer, transformer encoder, probe) on shipped files."""
    # As in a fresh clone: no data folder, run from elsewhere; the shipped smoke files are used.
    monkeypatch.chdir(tmp_path)
    probe = load("clinc150_text").main(["--smoke"])
    assert set(probe) == {"domain", "intent"}
    # 4 synthetic domains whose utterances carry the domain's name: well above chance (0.25).
    assert probe["domain"] > 0.5
    assert not os.listdir(tmp_path)


def test_multilabel_mulan_smoke_offline(no_data_dir, monkeypatch, tmp_path):
    """Four methods trained and probed end to end on the shipped synthetic MULAN files."""
    monkeypatch.chdir(tmp_path)
    scores = load("multilabel_mulan").main(["--smoke"])
    assert set(scores) == {"simdis", "supcon-any", "jaccard", "bce"}
    # Each synthetic label raises its own feature: every method beats predicting every label
    # (macro-F1 0.545 on these test rows; 0.67 to 0.75 measured after the smoke epoch).
    assert all(0.6 < value <= 1.0 for value in scores.values()), scores
    assert not os.listdir(tmp_path)


def test_clinc150_text_smoke_real(shared_data):
    """The text example end to end on the real CLINC150 files, one epoch."""
    if not os.path.isdir(os.path.join(shared_data, "clinc150")):
        pytest.skip(f"CLINC150 is not in {shared_data}")
    probe = load("clinc150_text").main(["--smoke", "--data-dir", shared_data])
    assert set(probe) == {"domain", "intent"}
    assert probe["domain"] > 0.25  # 10 domains (chance 0.1); 0.40 measured after one epoch


def test_multilabel_mulan_smoke_real(shared_data):
    """Four methods trained and probed end to end on the real MULAN emotions, one epoch."""
    if not os.path.isdir(os.path.join(shared_data, "mulan", "emotions")):
        pytest.skip(f"MULAN emotions is not in {shared_data}")
    scores = load("multilabel_mulan").main(["--smoke", "--data-dir", shared_data])
    assert set(scores) == {"simdis", "supcon-any", "jaccard", "bce"}
    # Predicting every label gives macro-F1 0.49 on emotions' test rows; 0.63 to 0.65 measured.
    assert all(0.55 < value <= 1.0 for value in scores.values()), scores


def test_fashion_table_writes_the_bundled_subset_as_csv(tmp_path):
    """The README's "Your own data" tables: the bundled images as rows with string labels;
    written again into the same folder, nothing is replaced."""
    import numpy as np
    import pandas as pd

    from keras_mlcl.data import load_dataset

    example = load("fashion_table")
    train, test = example.main([str(tmp_path)])
    data = load_dataset("fashion_mnist")
    head = pd.read_csv(test, nrows=3)
    assert list(head.columns[:4]) == ["item", "category", "product", "p0"]
    assert head.shape[1] == 3 + 28 * 28
    fine = np.asarray(data.class_names["fine"])[data.test_labels["fine"][:3]]
    assert head["product"].tolist() == fine.tolist()
    np.testing.assert_array_equal(head.iloc[:, 3:].to_numpy(), data.x_test[:3].reshape(3, -1))
    assert sum(1 for _ in open(train)) == len(data.x) + 1
    with pytest.raises(FileExistsError):
        example.main([str(tmp_path)])


@pytest.mark.parametrize(
    "name, module, extra",
    [
        ("fashion_table", "pandas", "tables"),
        ("clinc150_text", "keras_hub", "hub"),
        ("cifar100_hierarchical", "tensorflow_datasets", "data,tensorflow"),
    ],
)
def test_a_missing_extra_is_named_in_one_line(name, module, extra, monkeypatch, tmp_path):
    """Without its optional package an example stops at once, saying which extra to install."""
    example = load(name)
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` raises ImportError
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        example.main([str(tmp_path / "tables")] if name == "fashion_table" else ["--smoke"])
    message = str(stop.value.code)
    assert message.startswith("this example needs the `") and "\n" not in message
    assert message.endswith(f"pip install '.[{extra}]'")
    assert not os.listdir(tmp_path)


def test_an_example_starts_without_tensorflow_logging():
    """Started as a script under TensorFlow, an example writes nothing to stderr: TensorFlow's
    C++ start-up lines are muted as the command mutes them. A child process importing
    TensorFlow and the library: about 10 s."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    script = os.path.join(ROOT, "examples", "multilabel_mulan.py")
    child = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, env=env, timeout=300
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("usage: ")
    assert child.stderr == ""


@pytest.mark.parametrize(
    "name", ["cifar100_hierarchical", "clinc150_text", "fashion_table", "multilabel_mulan"]
)
def test_each_example_imports_tensorflow_quietly_first(name):
    """As in the script above, every example mutes TensorFlow before anything imports it."""
    with open(os.path.join(ROOT, "examples", f"{name}.py"), encoding="utf-8") as f:
        body = ast.parse(f.read()).body
    calls = [
        index
        for index, node in enumerate(body)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "import_tensorflow_quietly"
    ]
    imports = [
        index
        for index, node in enumerate(body)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(
            module.split(".")[0] in {"keras", "keras_mlcl", "numpy", "tensorflow"}
            for module in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
        )
    ]
    assert calls and imports and calls[0] < min(imports)
