import json
import os

import numpy as np
import pytest

from keras_mlcl.data import load_clinc150
from keras_mlcl.data import load_dataset

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
CLINC150 = os.path.join(SHARED_DATA, "clinc150")

needs_clinc150 = pytest.mark.skipif(
    not os.path.isfile(os.path.join(CLINC150, "data_full.json")),
    reason="CLINC150 is not in ../shared/data",
)


@needs_clinc150
def test_real_clinc150_counts_and_hierarchy():
    data = load_clinc150(CLINC150)
    assert data.name == "clinc150" and data.levels == ["domain", "intent"]
    assert data.x.shape == (15000,) and data.x_val.shape == (3000,) and data.x_test.shape == (4500,)
    assert isinstance(data.x[0], str) and len(data.x[0]) > 0
    assert len(data.class_names["domain"]) == 10 and len(data.class_names["intent"]) == 150
    assert "oos" not in data.class_names["intent"]
    # CLINC150 is balanced: 100 / 20 / 30 utterances per intent, 15 intents per domain.
    np.testing.assert_array_equal(np.bincount(data.labels["intent"], minlength=150), [100] * 150)
    np.testing.assert_array_equal(np.bincount(data.val_labels["intent"], minlength=150), [20] * 150)
    np.testing.assert_array_equal(
        np.bincount(data.test_labels["intent"], minlength=150), [30] * 150
    )
    np.testing.assert_array_equal(np.bincount(data.labels["domain"]), [1500] * 10)
    # Every label agrees with the raw files.
    with open(os.path.join(CLINC150, "data_full.json"), encoding="utf-8") as file:
        raw = json.load(file)
    with open(os.path.join(CLINC150, "domains.json"), encoding="utf-8") as file:
        domains = json.load(file)
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    for split, x, labels in [
        ("train", data.x, data.labels),
        ("val", data.x_val, data.val_labels),
        ("test", data.x_test, data.test_labels),
    ]:
        assert x.tolist() == [text for text, _ in raw[split]]
        intents = [data.class_names["intent"][i] for i in labels["intent"]]
        assert intents == [intent for _, intent in raw[split]]
        assert [data.class_names["domain"][i] for i in labels["domain"]] == [
            domain_of[intent] for intent in intents
        ]


@needs_clinc150
def test_real_clinc150_with_out_of_scope():
    data = load_clinc150(os.path.join(CLINC150, "data_full.json"), include_oos=True)
    assert (len(data.x), len(data.x_val), len(data.x_test)) == (15100, 3100, 5500)
    assert data.class_names["intent"][-1] == "oos" and data.class_names["domain"][-1] == "oos"
    assert np.sum(data.test_labels["intent"] == 150) == 1000
    assert np.all(data.test_labels["domain"][data.test_labels["intent"] == 150] == 10)


@needs_clinc150
def test_load_dataset_clinc150():
    data = load_dataset("clinc150", data_dir=SHARED_DATA)
    assert len(data.x) == 15000 and data.num_classes("intent") == 150


def test_tiny_clinc150_layout(tmp_path):
    raw = {
        "train": [["play a song", "play_music"], ["what time is it", "time"], ["hi", "greeting"]],
        "val": [["music please", "play_music"]],
        "test": [["the time?", "time"]],
        "oos_train": [["fly to mars", "oos"]],
        "oos_val": [],
        "oos_test": [],
    }
    domains = {"utility": ["time"], "small_talk": ["play_music", "greeting"]}
    (tmp_path / "data_full.json").write_text(json.dumps(raw))
    (tmp_path / "domains.json").write_text(json.dumps(domains))
    data = load_clinc150(tmp_path)
    # Domains sorted; intents numbered domain by domain, sorted within a domain.
    assert data.class_names == {
        "domain": ["small_talk", "utility"],
        "intent": ["greeting", "play_music", "time"],
    }
    np.testing.assert_array_equal(data.labels["intent"], [1, 2, 0])
    np.testing.assert_array_equal(data.labels["domain"], [0, 1, 0])
    assert data.x.tolist() == ["play a song", "what time is it", "hi"]
    with_oos = load_clinc150(tmp_path, include_oos=True)
    np.testing.assert_array_equal(with_oos.labels["intent"], [1, 2, 0, 3])
    np.testing.assert_array_equal(with_oos.labels["domain"], [0, 1, 0, 2])
    with pytest.raises(FileNotFoundError, match="CLINC150"):
        load_clinc150(tmp_path / "missing")
