"""`exact_top_k` against a NumPy top-k, on the active backend."""

import numpy as np
import pytest

from keras_mlcl.search import exact_top_k
from tests.search.reference import numpy_top_k
from tests.search.reference import tied_data


@pytest.mark.parametrize("block_size", [None, 7, 64])
def test_random_data_matches_numpy(block_size):
    rng = np.random.default_rng(0)
    queries, references = rng.normal(size=(37, 12)), rng.normal(size=(150, 12))
    rows, scores = exact_top_k(queries, references, k=9, block_size=block_size)
    expected_rows, expected_scores = numpy_top_k(queries, references, 9)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_size, k", [(None, 1), (None, 17), (5, 3), (5, 12), (16, 40)])
def test_ties_go_to_the_lower_row(block_size, k):
    """Duplicate rows tie exactly: the lower row first, across blocks too."""
    queries, references = tied_data(1, 29, 90, 4)
    rows, scores = exact_top_k(queries, references, k=k, block_size=block_size)
    expected_rows, expected_scores = numpy_top_k(queries, references, k)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(scores, expected_scores)


def test_query_blocks_and_k_equal_to_the_size(monkeypatch):
    from keras_mlcl.search import exact

    monkeypatch.setattr(exact, "QUERY_BLOCK", 4)
    queries, references = tied_data(2, 11, 6, 3)
    rows, _ = exact_top_k(queries, references, k=6, block_size=4)
    np.testing.assert_array_equal(rows, numpy_top_k(queries, references, 6)[0])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"k": 0}, "`k` should be a positive integer"),
        ({"k": 4}, "`k` should be at most the 3 references"),
        ({"block_size": 0}, "`block_size` should be a positive integer"),
        ({"queries": np.ones((2, 5))}, "same width"),
        ({"references": np.ones(3)}, "`references` should be a 2-D array"),
        ({"queries": np.array([[np.nan, 0.0]])}, "`queries` should hold finite numbers"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    values = {"queries": np.ones((2, 2)), "references": np.eye(3, 2), "k": 2, **arguments}
    with pytest.raises(ValueError, match=message):
        exact_top_k(**values)
