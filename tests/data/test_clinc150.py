import json
import os

import numpy as np
import pytest

from keras_mlcl.data import load_clinc150
from keras_mlcl.data import load_dataset

pytestmark = pytest.mark.backend_independent


@pytest.fixture
def clinc150(shared_data):
    """The real CLINC150 folder; skips when it is absent."""
    folder = os.path.join(shared_data, "clinc150")
    if not os.path.isfile(os.path.join(folder, "data_full.json")):
        pytest.skip(f"CLINC150 is not in {shared_data}")
    return folder


def test_real_clinc150_counts_and_hierarchy(clinc150):
    data = load_clinc150(clinc150)
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
    with open(os.path.join(clinc150, "data_full.json"), encoding="utf-8") as file:
        raw = json.load(file)
    with open(os.path.join(clinc150, "domains.json"), encoding="utf-8") as file:
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


def test_real_clinc150_with_out_of_scope(clinc150):
    data = load_clinc150(os.path.join(clinc150, "data_full.json"), include_oos=True)
    assert (len(data.x), len(data.x_val), len(data.x_test)) == (15100, 3100, 5500)
    assert data.class_names["intent"][-1] == "oos" and data.class_names["domain"][-1] == "oos"
    assert np.sum(data.test_labels["intent"] == 150) == 1000
    assert np.all(data.test_labels["domain"][data.test_labels["intent"] == 150] == 10)


def test_load_dataset_clinc150(clinc150):
    data = load_dataset("clinc150", data_dir=os.path.dirname(clinc150))
    assert len(data.x) == 15000 and data.num_classes("intent") == 150
    # The same through KERAS_MLCL_DATA (set by the fixture), without `data_dir`.
    assert load_dataset("clinc150").x.tolist() == data.x.tolist()


def test_clinc150_without_a_data_folder_is_a_one_line_error(no_data_dir):
    message = (
        "dataset 'clinc150' needs its files: pass --data-dir DIR (`data_dir` in Python) "
        "or set KERAS_MLCL_DATA=DIR (looked for DIR/clinc150)"
    )
    for load in (load_clinc150, lambda: load_dataset("clinc150")):
        with pytest.raises(FileNotFoundError) as error:
            load()
        assert str(error.value) == message


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
