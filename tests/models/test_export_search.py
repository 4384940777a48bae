"""The SavedModel's search endpoints: exact top-k of stored rows, served in a fresh process.

A tiny model is exported with an index for the encoder (`search`) and one for a
head (`search_<head>`) from the active backend (through a TensorFlow child
process off TensorFlow); a fresh TensorFlow process loads the SavedModel alone
and searches. The results match a NumPy top-k of the normalised `predict`
outputs against the normalised stored rows, a duplicate stored row included
(ties go to the lower row).
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl.models.export import check_search_indexes
from tests.models import problems

SEARCH = """
import sys
import numpy as np
import tensorflow as tf
if sys.argv[4] == "text":
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel holds)
    inputs = tf.constant([line for line in open(sys.argv[2], encoding="utf-8").read().split("\\n")])
else:
    inputs = tf.constant(np.load(sys.argv[2]))
loaded = tf.saved_model.load(sys.argv[1])
served = {"serve." + key: value for key, value in loaded.serve(inputs).items()}
for endpoint in sys.argv[5:]:
    served.update({f"{endpoint}.{k}": v for k, v in getattr(loaded, endpoint)(inputs).items()})
as_numpy = {k: v.numpy() for k, v in served.items()}
np.savez(sys.argv[3], **{k: v.astype("S") if v.dtype == object else v for k, v in as_numpy.items()})
"""
NAMES = np.array(["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "sloe", "yuzu", "nut"])


def serve_in_fresh_process(tmp_path, saved_model, inputs, endpoints, kind="vectors"):
    """Runs `SEARCH` in a TensorFlow process; returns `{endpoint.key: array}`."""
    if kind == "text":
        inputs_path = os.path.join(tmp_path, "texts.txt")
        with open(inputs_path, "w", encoding="utf-8") as f:
            f.write("\n".join(inputs))
    else:
        inputs_path = os.path.join(tmp_path, "inputs.npy")
        np.save(inputs_path, inputs)
    served_path = os.path.join(tmp_path, "served.npz")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", SEARCH, saved_model, inputs_path, served_path, kind]
    result = subprocess.run(command + endpoints, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(served_path))


def cosines(queries, stored):
    """Cosine similarities `(B, N)` in float64."""
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    stored = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    return (queries[:, None, :].astype("float64") * stored[None, :, :]).sum(-1)


def stored_rows(outputs, seed):
    """Ten stored rows: scaled copies of nine outputs, the last a duplicate of row 3."""
    rng = np.random.default_rng(seed)
    rows = outputs[:9] * rng.uniform(0.5, 3.0, size=(9, 1))
    return np.concatenate([rows, rows[3:4]]).astype("float32")


def check_search(served, endpoint, outputs, stored, ids, k):
    """The served top-`k` against NumPy's: the same scores, the rows that have them, their ids.

    Rows are compared through their scores so that two rows within float32 rounding of each
    other may come in either order; the exact tie of a duplicate row is checked by the tests.
    """
    scores = cosines(outputs, stored)
    expected = -np.sort(-scores, axis=1)[:, :k]
    rows, served_scores = served[f"{endpoint}.rows"], served[f"{endpoint}.scores"]
    assert rows.dtype == np.int64 and served_scores.dtype == np.float32
    assert rows.shape == served_scores.shape == (len(outputs), k)
    np.testing.assert_allclose(served_scores, expected, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(scores, rows, axis=1), expected, atol=1e-5)
    assert all(len(set(row)) == k for row in rows.tolist())
    expected_ids = rows if ids is None else ids[rows]
    if expected_ids.dtype.kind == "U":
        expected_ids = np.char.encode(expected_ids, "utf-8")
    np.testing.assert_array_equal(served[f"{endpoint}.ids"], expected_ids)


@pytest.mark.spread_over_backends
def test_search_endpoints_match_numpy_top_k(tmp_path):
    """Exports (a TensorFlow child process off TensorFlow) and searches in a fresh TensorFlow
    process: the point is a SavedModel that searches on its own."""
    model = problems.model()
    x = problems.clustered(n=16)[0]
    outputs = model.predict(x, verbose=0)
    stored = {name: stored_rows(outputs[name], seed) for seed, name in enumerate(outputs)}
    ids = {"embedding": NAMES, "coarse": np.arange(10) * 7 - 20, "fine": None}
    saved_model = os.path.join(tmp_path, "saved_model")
    model.export(
        saved_model,
        verbose=False,
        search_indexes={name: (stored[name], ids[name]) for name in ids},
        search_k=4,
    )
    endpoints = ["search", "search_coarse", "search_fine"]
    served = serve_in_fresh_process(tmp_path, saved_model, x, endpoints)

    for key, value in outputs.items():  # `serve` is unchanged
        np.testing.assert_allclose(served[f"serve.{key}"], value, atol=1e-5)
    for endpoint, name in zip(endpoints, ids, strict=True):
        check_search(served, endpoint, outputs[name], stored[name], ids[name], 4)
        # Input 3 finds stored row 3 and its duplicate, row 9, first: the lower row leads.
        np.testing.assert_array_equal(served[f"{endpoint}.rows"][3, :2], [3, 9])
        np.testing.assert_allclose(served[f"{endpoint}.scores"][3, :2], [1.0, 1.0], atol=1e-5)
    assert served["search.ids"][3, :2].tolist() == [b"fig", b"nut"]


@pytest.mark.spread_over_backends
def test_text_search_takes_raw_strings(tmp_path):
    """Builds a tiny text model and its vocabulary, exports and searches from raw strings in a
    fresh TensorFlow process (two processes off TensorFlow)."""
    pytest.importorskip("keras_hub")
    pytest.importorskip("tensorflow_text")
    from keras_mlcl.encoders import text_encoder
    from keras_mlcl.models.text_export import export_text_saved_model

    keras.utils.set_random_seed(0)
    texts = [f"{w} {v} {u}" for w in NAMES[:4] for v in ("is", "was") for u in ("ripe", "sour")]
    preprocessor, encoder = text_encoder(
        texts,
        sequence_length=8,
        vocabulary_size=60,
        num_layers=1,
        hidden_dim=8,
        intermediate_dim=16,
        dropout=0.0,
    )
    model = ContrastiveModel(encoder, heads={"topic": 4})
    queries = texts[:6] + ["an unseen sentence, with commas!"]
    outputs = model.predict(preprocessor(queries), verbose=0)
    stored = stored_rows(model.predict(preprocessor(texts), verbose=0)["topic"], 2)
    saved_model = os.path.join(tmp_path, "saved_model")
    export_text_saved_model(
        model, preprocessor, saved_model, search_indexes={"topic": (stored, NAMES)}, search_k=20
    )
    served = serve_in_fresh_process(tmp_path, saved_model, queries, ["search_topic"], "text")
    check_search(served, "search_topic", outputs["topic"], stored, NAMES, 10)  # k = min(20, 10)


@pytest.mark.parametrize(
    "indexes, message",
    [
        ({"coarse_logits": (np.ones((2, 8)), None)}, "keys should be among ['embedding', 'coarse'"),
        ({"fine": (np.ones(8), None)}, "embeddings should be a non-empty float array (N, D)"),
        ({"fine": (np.zeros((2, 8)), None)}, "embeddings should be finite, non-zero rows"),
        ({"fine": (np.ones((2, 8)), [1, 2, 3])}, "ids should be None or an array (2,)"),
        ({"fine": (np.ones((2, 8)), [0.5, 1.5])}, "ids should be None or an array (2,)"),
        ({"fine": np.ones((2, 8))}, "should be a pair (embeddings, ids)"),
        ({"embedding": (np.ones((2, 8)), None)}, "should have 16 columns, the width of"),
        ({"coarse": (np.ones((2, 16)), None)}, "should have 8 columns, the width of"),
    ],
)
def test_bad_search_indexes_raise_before_exporting(tmp_path, indexes, message):
    model = problems.model()
    target = tmp_path / "saved_model"
    with pytest.raises(ValueError) as raised:
        model.export(target, verbose=False, search_indexes=indexes)
    assert message in str(raised.value)
    assert not target.exists()


def test_bad_search_k_raises(tmp_path):
    model = problems.model()
    target = tmp_path / "saved_model"
    with pytest.raises(ValueError, match="`search_k` should be a positive integer"):
        model.export(target, search_indexes={"fine": (np.ones((2, 8)), None)}, search_k=0)
    assert not target.exists()


@pytest.mark.backend_independent
def test_indexes_are_unit_rows_and_ids_keep_their_kind():
    model = ContrastiveModel(problems.encoder(out=2), heads={"coarse": 2, "fine": 2})
    indexes = check_search_indexes(
        model,
        {
            "embedding": (np.array([[3.0, 4.0], [0.0, -2.0]]), np.array(["a", "b"], dtype=object)),
            "coarse": (np.array([[1, 1]]), np.array([7], dtype="int32")),
            "fine": (np.array([[0.5, 0.0]]), None),
        },
    )
    np.testing.assert_allclose(indexes["embedding"][0], [[0.6, 0.8], [0.0, -1.0]])
    assert indexes["embedding"][0].dtype == np.float32
    np.testing.assert_array_equal(indexes["embedding"][1], ["a", "b"])
    assert indexes["coarse"][1].dtype == np.int64 and indexes["coarse"][1].tolist() == [7]
    np.testing.assert_allclose(indexes["coarse"][0], [[0.5**0.5, 0.5**0.5]], rtol=1e-6)
    assert indexes["fine"][1].tolist() == [0]
