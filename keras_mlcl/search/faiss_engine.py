"""Exact top-k search by inner product with faiss' flat index (`IndexFlatIP`)."""

from types import ModuleType

import numpy as np

from keras_mlcl.search.exact import check_search
from keras_mlcl.utils.types import ArrayLike


def import_faiss() -> ModuleType:
    """The `faiss` module, or an `ImportError` saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "The faiss search engine needs faiss: pip install 'keras-mlcl[faiss]'"
        ) from error
    return faiss


def faiss_top_k(queries: ArrayLike, references: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`keras_mlcl.search.exact_top_k`, computed by faiss' `IndexFlatIP`.

    faiss orders equal scores in no set way, so the search asks for more
    neighbours until the `k`-th score's ties are all in, then sorts them by
    row: the rows are those of `exact_top_k` (scores may differ in the last
    bits, faiss sums in another order).

    Args:
        queries: `(M, D)` floats.
        references: `(N, D)` floats, `N >= k`.
        k: positive int, neighbours per query.

    Returns:
        A tuple `(rows, scores)`: `(M, k)` int64 row numbers into
        `references` and `(M, k)` float32 scores, nearest first.

    Example:

    >>> references = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> rows, scores = faiss_top_k(np.array([[1.0, 0.2]]), references, k=2)
    >>> rows.tolist()
    [[0, 2]]
    """
    faiss = import_faiss()
    queries, references, k = check_search(queries, references, k)
    size = references.shape[0]
    index = faiss.IndexFlatIP(references.shape[1])
    index.add(np.ascontiguousarray(references))
    queries = np.ascontiguousarray(queries)
    depth = min(k + 1, size)
    while True:
        scores, rows = index.search(queries, depth)
        # Done when no row's last score ties its k-th (or every reference is in).
        if depth == size or not np.any(scores[:, -1] == scores[:, k - 1]):
            break
        depth = min(2 * depth, size)
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    rows = np.take_along_axis(rows, order, axis=1).astype("int64")
    return rows, np.take_along_axis(scores, order, axis=1).astype("float32")
