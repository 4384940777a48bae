"""`EmbeddingIndex`: search against NumPy, ids and labels, save and load, a model's embeddings."""

import json
import os

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import EmbeddingIndex
from tests.search.reference import numpy_top_k
from tests.search.reference import tied_data


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def filled_index(engine="exact"):
    """An index of 60 tied rows added in two calls, with string ids and two label levels."""
    _, references = tied_data(4, 1, 60, 4)
    references[np.all(references == 0, axis=1)] = 1.0
    index = EmbeddingIndex(engine=engine)
    for start in (0, 25):
        rows = slice(start, 25 if start == 0 else 60)
        count = rows.stop - rows.start
        index.add(
            references[rows],
            ids=[f"item-{i}" for i in range(rows.start, rows.stop)],
            labels={"coarse": np.arange(count) % 3, "fine": np.array(["a", "b"] * 40)[:count]},
        )
    return index, references


def test_search_matches_numpy_on_unit_rows_with_ties():
    index, references = filled_index()
    queries, _ = tied_data(5, 13, 1, 4)
    queries[np.all(queries == 0, axis=1)] = 1.0
    ids, scores = index.search(queries, k=8)
    expected_rows, expected_scores = numpy_top_k(unit(queries), unit(references), 8)
    np.testing.assert_array_equal(ids, np.array([f"item-{i}" for i in range(60)])[expected_rows])
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    rows, _ = index.search_rows(queries, k=8)
    np.testing.assert_array_equal(rows, expected_rows)
    assert len(index) == 60 and index.embeddings.shape == (60, 4)
    np.testing.assert_allclose(index.embeddings, unit(references), atol=1e-7)
    np.testing.assert_array_equal(index.labels["coarse"], np.r_[np.arange(25), np.arange(35)] % 3)


def test_random_rows_match_numpy_and_default_ids_continue():
    rng = np.random.default_rng(6)
    references, queries = rng.normal(size=(40, 5)), rng.normal(size=(9, 5))
    index = EmbeddingIndex().add(references[:15]).add(references[15:])
    np.testing.assert_array_equal(index.ids, np.arange(40))
    ids, scores = index.search(queries, k=40)
    expected_rows, expected_scores = numpy_top_k(unit(queries), unit(references), 40)
    np.testing.assert_array_equal(ids, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


@pytest.mark.backend_independent
def test_faiss_engine_equals_exact():
    pytest.importorskip("faiss")
    exact, _ = filled_index()
    by_faiss, _ = filled_index("faiss")
    queries, _ = tied_data(7, 10, 1, 4)
    for k in (1, 9, 60):
        np.testing.assert_array_equal(by_faiss.search(queries, k)[0], exact.search(queries, k)[0])


def test_save_and_load_round_trip(tmp_path):
    index, _ = filled_index()
    folder = index.save(tmp_path / "index")
    with open(os.path.join(folder, "index.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["size"] == 60 and metadata["dim"] == 4
    assert metadata["levels"] == ["coarse", "fine"] and metadata["engine"] == "exact"
    loaded = EmbeddingIndex.load(folder)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    assert list(loaded.labels) == ["coarse", "fine"]
    for level in ("coarse", "fine"):
        np.testing.assert_array_equal(loaded.labels[level], index.labels[level])
    queries, _ = tied_data(8, 6, 1, 4)
    for got, expected in zip(loaded.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, expected)
    # Saved again over itself only with `overwrite=True`; the new copy is the one kept.
    with pytest.raises(ValueError, match="overwrite=True"):
        index.save(folder)
    index.add(np.ones((1, 4)), ids=["extra"], labels={"coarse": [1], "fine": ["a"]})
    index.save(folder, overwrite=True)
    assert len(EmbeddingIndex.load(folder)) == 61
    assert sorted(os.listdir(tmp_path)) == ["index"]


@pytest.mark.backend_independent
def test_folders_that_are_not_indexes_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="not an index saved by keras-mlcl"):
        EmbeddingIndex().add(np.eye(2)).save(tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(ValueError, match="should be an index saved by `EmbeddingIndex.save`"):
        EmbeddingIndex.load(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    EmbeddingIndex().add(np.eye(2)).save(empty)
    assert sorted(os.listdir(empty)) == ["index.json", "index.npz"]


@pytest.mark.backend_independent
def test_bad_input_raises():
    index = EmbeddingIndex().add(np.eye(3), ids=[3, 4, 5], labels={"coarse": [0, 1, 1]})
    with pytest.raises(ValueError, match=r"`ids` should be unique. Received duplicates \[4\]"):
        index.add(np.eye(3)[:2], ids=[4, 9], labels={"coarse": [0, 0]})
    with pytest.raises(ValueError, match="`ids` should be unique"):
        EmbeddingIndex().add(np.eye(2), ids=["a", "a"])
    with pytest.raises(ValueError, match="`labels` should have the levels already stored"):
        index.add(np.eye(3)[:1], ids=[10])
    with pytest.raises(ValueError, match="`k` should be at most the index's size 3"):
        index.search(np.eye(3), k=4)
    with pytest.raises(ValueError, match="width 3"):
        index.search(np.eye(2), k=1)
    with pytest.raises(ValueError, match="`engine` should be one of"):
        EmbeddingIndex(engine="annoy")
    assert len(index) == 3


@pytest.fixture(scope="module")
def model():
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5)])
    return ContrastiveModel(encoder, heads={"coarse": 3, "fine": 4})


@pytest.mark.parametrize("head", [None, "fine"])
def test_model_embeddings_match_numpy(model, head):
    rng = np.random.default_rng(9)
    # As many queries as stored rows: one compiled prediction per model function.
    x, queries = rng.normal(size=(24, 6)).astype("float32"), rng.normal(size=(24, 6))
    index = EmbeddingIndex(model, head=head).add(x)
    if head is None:
        stored, embedded = model.embed(x), model.embed(queries.astype("float32"))
    else:
        stored = model.predict(x, verbose=0)[head]
        embedded = model.predict(queries.astype("float32"), verbose=0)[head]
    np.testing.assert_allclose(index.embeddings, unit(stored), atol=1e-6)
    ids, scores = index.search(queries.astype("float32"), k=6)
    expected_rows, expected_scores = numpy_top_k(unit(embedded), unit(stored), 6)
    np.testing.assert_array_equal(ids, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_unknown_head_lists_the_heads(model):
    with pytest.raises(ValueError, match=r"one of the model's heads \['coarse', 'fine'\]"):
        EmbeddingIndex(model, head="middle")
