"""Each example runs end to end at its `--smoke` size."""

import importlib.util
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


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


def test_clinc150_text_smoke_offline(no_data_dir, monkeypatch, tmp_path):
    # As in a fresh clone: no data folder, run from elsewhere; the shipped smoke files are used.
    monkeypatch.chdir(tmp_path)
    probe = load("clinc150_text").main(["--smoke"])
    assert set(probe) == {"domain", "intent"}
    # 4 synthetic domains whose utterances carry the domain's name: well above chance (0.25).
    assert probe["domain"] > 0.5
    assert not os.listdir(tmp_path)


def test_clinc150_text_smoke_real(shared_data):
    if not os.path.isdir(os.path.join(shared_data, "clinc150")):
        pytest.skip(f"CLINC150 is not in {shared_data}")
    probe = load("clinc150_text").main(["--smoke", "--data-dir", shared_data])
    assert set(probe) == {"domain", "intent"}
    assert probe["domain"] > 0.1  # 10 domains: above chance after one epoch and a probe


def test_multilabel_mulan_smoke_offline(no_data_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    scores = load("multilabel_mulan").main(["--smoke"])
    assert set(scores) == {"simdis", "supcon-any", "jaccard", "bce"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert not os.listdir(tmp_path)


def test_multilabel_mulan_smoke_real(shared_data):
    if not os.path.isdir(os.path.join(shared_data, "mulan", "emotions")):
        pytest.skip(f"MULAN emotions is not in {shared_data}")
    scores = load("multilabel_mulan").main(["--smoke", "--data-dir", shared_data])
    assert set(scores) == {"simdis", "supcon-any", "jaccard", "bce"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
