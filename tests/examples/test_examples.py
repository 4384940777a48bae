"""Each example runs end to end at its `--smoke` size."""

import importlib.util
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")


def load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, "examples", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cifar100_hierarchical_smoke(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    probe = load("cifar100_hierarchical").main(["--smoke"])
    assert set(probe) == {"coarse", "fine"}
    assert all(0.0 <= value <= 1.0 for value in probe.values())


def test_clinc150_text_smoke():
    folder = os.path.join(SHARED, "clinc150")
    if not os.path.isdir(folder):
        pytest.skip("../shared/data/clinc150 is not present")
    probe = load("clinc150_text").main(["--smoke", "--data-dir", folder])
    assert set(probe) == {"domain", "intent"}
    assert probe["domain"] > 0.1  # 10 domains: above chance after one epoch and a probe


def test_multilabel_mulan_smoke():
    folder = os.path.join(SHARED, "mulan")
    if not os.path.isdir(folder):
        pytest.skip("../shared/data/mulan is not present")
    scores = load("multilabel_mulan").main(["--smoke", "--data-dir", folder])
    assert set(scores) == {"simdis", "supcon-any", "jaccard", "bce"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
