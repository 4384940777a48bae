"""A text run's SavedModel serves raw strings, from every backend.

Trains a tiny text model with `train_and_evaluate` (the command's path) on
the active backend, then loads the SavedModel in a fresh TensorFlow process
and calls `serve` on raw strings: the outputs match the model's own outputs
on the preprocessed token ids.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras_hub")
pytest.importorskip("tensorflow_text")

from keras_mlcl.data import LabeledDataset  # noqa: E402
from keras_mlcl.experiments import train_and_evaluate  # noqa: E402
from keras_mlcl.experiments.encoders import Preprocessing  # noqa: E402
from keras_mlcl.experiments.runner import load_model_file  # noqa: E402

SERVE = """
import sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops the SavedModel holds
loaded = tf.saved_model.load(sys.argv[1])
texts = [line for line in open(sys.argv[2], encoding="utf-8").read().split("\\n") if line]
served = loaded.serve(tf.constant(texts))
ids = np.load(sys.argv[3])
by_ids = loaded.serve_token_ids(tf.constant(ids))
check = np.load(sys.argv[1] + "/serving_check.npz")
recorded = loaded.serve(tf.constant(check["inputs"]))
np.savez(sys.argv[4], **{k: v.numpy() for k, v in served.items()},
         **{"ids_" + k: v.numpy() for k, v in by_ids.items()},
         **{"check_" + k: v.numpy() - check[k] for k, v in recorded.items()})
"""

TOPICS = [
    ["book a table for two", "reserve a table tonight", "dinner booking for four"],
    ["what is my balance", "how much money do i have", "show my account balance"],
    ["play some jazz", "put on relaxing music", "start my workout playlist"],
]


def text_dataset():
    texts, fine = [], []
    for label, sentences in enumerate(TOPICS):
        for suffix in ("", " please", " now", " today"):
            for sentence in sentences:
                texts.append(sentence + suffix)
                fine.append(label)
    fine = np.array(fine, "int32")
    return LabeledDataset(
        x=np.array(texts, dtype=object),
        labels={"coarse": fine // 2, "fine": fine},
        name="tiny_text",
    )


def test_text_run_saved_model_serves_raw_strings(tmp_path):
    """Trains, exports (a TensorFlow child process off TensorFlow) and serves in a fresh
    TensorFlow process: the point is a SavedModel that needs nothing of this process."""
    out = os.path.join(tmp_path, "run")
    results = train_and_evaluate(
        text_dataset(), method="mlcl", epochs=1, batch_size=12, out=out, plot="none", verbose=0
    )
    assert results["export"] == {"saved_model": "saved_model"}

    model = load_model_file(os.path.join(out, "model.keras"))
    preprocessing = Preprocessing.from_record(results["preprocessing"], out)
    texts = ["book a table for two please", "play some jazz", "an unseen sentence, with commas!"]
    ids = preprocessing(np.array(texts, dtype=object))
    expected = model.predict(ids, verbose=0)

    texts_path = os.path.join(tmp_path, "texts.txt")
    with open(texts_path, "w", encoding="utf-8") as f:
        f.write("\n".join(texts))
    ids_path = os.path.join(tmp_path, "ids.npy")
    np.save(ids_path, ids)
    served_path = os.path.join(tmp_path, "served.npz")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    saved_model = os.path.join(out, "saved_model")
    result = subprocess.run(
        [sys.executable, "-c", SERVE, saved_model, texts_path, ids_path, served_path],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.load(served_path)
    assert set(expected) == {"embedding", "coarse", "fine"}
    for key, value in expected.items():
        np.testing.assert_allclose(served[key], value, atol=1e-5)
        np.testing.assert_allclose(served["ids_" + key], value, atol=1e-5)

    # serving_check.npz records raw strings and the outputs they gave.
    check = np.load(os.path.join(saved_model, "serving_check.npz"))
    assert check["inputs"].dtype.kind == "U" and len(check["inputs"]) == 8
    for key in expected:
        assert np.abs(served["check_" + key]).max() < 1e-5
