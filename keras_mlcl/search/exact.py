"""Exact top-k search by inner product, in `keras.ops`, blocked over queries and references."""

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from keras import ops

from keras_mlcl.backend import compile_function
from keras_mlcl.backend import top_k_lower_index_first
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_positive_int

# Queries per block (fewer queries: the next power of two).
QUERY_BLOCK = 1024
# The most references per block; the blocks are made even (`reference_block`).
REFERENCE_BLOCK = 8192
# Block sizes are multiples of this (fewer programs to compile).
BLOCK_MULTIPLE = 512


def check_rows(name: str, x: ArrayLike) -> np.ndarray:
    """`x` as a finite `(N, D)` float32 NumPy array, or raises."""
    try:
        array = np.asarray(x, dtype="float32")
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 2 or array.shape[1] == 0:
        shape = None if array is None else array.shape
        raise ValueError(f"`{name}` should be a 2-D array of real numbers. Received shape {shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` should hold finite numbers. Received NaN or infinite values")
    return array


def unit_rows(x: np.ndarray) -> np.ndarray:
    """The rows of `x` scaled to unit L2 norm (zero rows stay zero), in `x`'s dtype.

    Example:

    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_search(
    queries: ArrayLike, references: ArrayLike, k: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """`(queries, references, k)` checked: finite float32 rows of one width, `1 <= k <= N`."""
    queries = check_rows("queries", queries)
    references = check_rows("references", references)
    if queries.shape[1] != references.shape[1]:
        raise ValueError(
            "`queries` and `references` should have the same width. Received: "
            f"{queries.shape} and {references.shape}"
        )
    k = check_positive_int("k", k)
    size = references.shape[0]
    if k > size:
        raise ValueError(f"`k` should be at most the {size} references. Received: `k`={k}")
    return queries, references, k


def reference_block(size: int, most: int) -> int:
    """References per block: `size` split into the fewest blocks of at most `most` rows,
    made even and rounded up to a multiple of `BLOCK_MULTIPLE` (or to a power of two below
    it), so the padding of the last block stays small (50,000 rows: 7 blocks of 7,168).

    Example:

    >>> reference_block(50_000, 8192), reference_block(100, 8192), reference_block(3, 2)
    (7168, 128, 2)
    """
    blocks = -(-size // most)
    even = -(-size // blocks)
    if even >= BLOCK_MULTIPLE:
        return min(most, -(-even // BLOCK_MULTIPLE) * BLOCK_MULTIPLE)
    return min(most, _power_of_two_at_least(even))


def _power_of_two_at_least(n: int) -> int:
    """The smallest power of two >= `n` (and >= 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


@functools.cache
def _merge_step(block_k: int, k: int) -> Callable[..., tuple[Tensor, Tensor]]:
    """The compiled step that merges one block of references into the running top-`k`."""

    def merge(
        queries: Tensor,
        block: Tensor,
        values: Tensor,
        rows: Tensor,
        offset: Tensor,
        valid: Tensor,
    ) -> tuple[Tensor, Tensor]:
        scores = ops.matmul(queries, ops.transpose(block))
        columns = ops.arange(ops.shape(block)[0], dtype="int32")
        scores = ops.where(ops.expand_dims(columns < valid, 0), scores, float("-inf"))
        block_values, block_columns = top_k_lower_index_first(scores, block_k)
        # The running rows all come before the block's: among equal scores, the
        # position in `merged` follows the row.
        merged_values = ops.concatenate([values, block_values], axis=1)
        block_rows = ops.cast(block_columns, "int32") + offset
        merged_rows = ops.concatenate([rows, block_rows], axis=1)
        values, positions = top_k_lower_index_first(merged_values, k)
        return values, ops.take_along_axis(merged_rows, ops.cast(positions, "int32"), axis=1)

    return compile_function(merge)


def _padded(x: np.ndarray, rows: int) -> np.ndarray:
    """`x` with copies of its first row appended up to `rows` rows (a copy of a real row, not
    zeros: a zero query would score every reference alike, all ties, which cost a repair on
    torch)."""
    if x.shape[0] == rows:
        return x
    padded = np.repeat(x[:1], rows, axis=0)
    padded[: x.shape[0]] = x
    return padded


def exact_top_k(
    queries: ArrayLike, references: ArrayLike, k: int, block_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` references of largest inner product with each query, exactly.

    For query `q_i` and references `r_j`, the scores are `s_ij = q_i . r_j`;
    each query's `k` largest, by decreasing score, with equal scores in the
    order of their row `j`. Pass unit rows for cosine similarity.

    The scores are computed with `keras.ops` on the active backend, one block
    of queries against one block of references at a time (a running top-`k`
    merged with each block's top-`k`), so memory stays bounded by the two
    blocks. The step is compiled once per block shape (the last blocks are
    padded); later calls with the same sizes reuse it.

    Args:
        queries: `(M, D)` floats.
        references: `(N, D)` floats, `N >= k`.
        k: positive int, neighbours per query.
        block_size: positive int, the most references per block. Defaults
            to None (`REFERENCE_BLOCK`); the blocks are made even
            (`reference_block`).

    Returns:
        A tuple `(rows, scores)`: `(M, k)` int64 row numbers into
        `references` and `(M, k)` float32 scores, nearest first.

    Example:

    >>> references = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> rows, scores = exact_top_k(np.array([[1.0, 0.2]]), references, k=2)
    >>> rows.tolist(), np.round(scores, 2).tolist()
    ([[0, 2]], [[1.0, 1.0]])
    """
    queries, references, k = check_search(queries, references, k)
    size = references.shape[0]
    block = REFERENCE_BLOCK if block_size is None else check_positive_int("block_size", block_size)
    block = reference_block(size, block)
    query_block = min(QUERY_BLOCK, _power_of_two_at_least(queries.shape[0]))
    num_blocks = -(-size // block)
    stored = ops.convert_to_tensor(_padded(references, num_blocks * block))
    blocks = [stored[b * block : (b + 1) * block] for b in range(num_blocks)]
    bounds = [
        (
            ops.convert_to_tensor(b * block, "int32"),
            ops.convert_to_tensor(min(block, size - b * block), "int32"),
        )
        for b in range(num_blocks)
    ]
    step = _merge_step(min(k, block), k)
    rows = np.zeros((queries.shape[0], k), dtype="int64")
    scores = np.zeros((queries.shape[0], k), dtype="float32")
    for start in range(0, queries.shape[0], query_block):
        chunk = queries[start : start + query_block]
        query_tensor = ops.convert_to_tensor(_padded(chunk, query_block))
        state: tuple[Any, Any] = (
            ops.full((query_block, k), float("-inf"), dtype="float32"),
            ops.zeros((query_block, k), dtype="int32"),
        )
        for references_block, (offset, valid) in zip(blocks, bounds, strict=True):
            state = step(query_tensor, references_block, *state, offset, valid)
        scores[start : start + len(chunk)] = ops.convert_to_numpy(state[0])[: len(chunk)]
        rows[start : start + len(chunk)] = ops.convert_to_numpy(state[1])[: len(chunk)]
    return rows, scores
