"""`faiss_top_k` gives the rows of `exact_top_k`, ties included."""

import sys

import numpy as np
import pytest

from keras_mlcl.search import faiss_top_k
from tests.search.reference import numpy_top_k
from tests.search.reference import tied_data

pytestmark = pytest.mark.backend_independent
pytest.importorskip("faiss")


def test_random_data_matches_numpy():
    rng = np.random.default_rng(0)
    queries, references = rng.normal(size=(30, 8)), rng.normal(size=(200, 8))
    rows, scores = faiss_top_k(queries, references, k=7)
    expected_rows, expected_scores = numpy_top_k(queries, references, 7)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 5, 30, 60])
def test_ties_go_to_the_lower_row(k):
    queries, references = tied_data(3, 25, 60, 3)
    rows, scores = faiss_top_k(queries, references, k=k)
    expected_rows, expected_scores = numpy_top_k(queries, references, k)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(scores, expected_scores)


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-mlcl\[faiss\]'"):
        faiss_top_k(np.eye(2), np.eye(2), k=1)


def test_k_above_the_size_raises():
    with pytest.raises(ValueError, match="`k` should be at most the 2 references"):
        faiss_top_k(np.eye(2), np.eye(2), k=3)
