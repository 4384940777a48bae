"""A NumPy top-k by inner product, the reference of the search tests."""

import numpy as np


def numpy_top_k(queries, references, k):
    """Rows and scores of the `k` largest inner products, ties to the lower row (float64)."""
    scores = np.asarray(queries, "float64") @ np.asarray(references, "float64").T
    rows = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def tied_data(seed, num_queries, num_references, dim):
    """Small-integer queries and references with many duplicate rows.

    Every inner product is an exact small integer in float32, whatever the order of the
    sums, so equal scores are exactly equal on every backend and in NumPy.
    """
    rng = np.random.default_rng(seed)
    distinct = rng.integers(-2, 3, size=(num_references // 4 + 1, dim))
    references = distinct[rng.integers(0, len(distinct), size=num_references)]
    queries = rng.integers(-2, 3, size=(num_queries, dim))
    return queries.astype("float32"), references.astype("float32")
