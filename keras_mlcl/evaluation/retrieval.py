"""Retrieval metrics of frozen embeddings: Recall@k and mAP@R per label level."""

import numpy as np

from keras_mlcl.evaluation.multilabel_metrics import check_embeddings
from keras_mlcl.evaluation.multilabel_metrics import check_level_dicts
from keras_mlcl.search.exact import exact_top_k
from keras_mlcl.search.exact import unit_rows
from keras_mlcl.utils.labels import as_class_ids
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_positive_int

# Queries searched at once: this many elements over the number of references.
BLOCK_ELEMENTS = 1 << 22


def _class_ids(name: str, labels: ArrayLike, num_rows: int) -> np.ndarray:
    """`labels` as `(num_rows,)` int class ids, or raises."""
    class_ids = as_class_ids(labels)
    if class_ids is None:
        array = np.asarray(labels)
        raise ValueError(
            f"`{name}` should be `(N,)` int class ids (one level). Received shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    if class_ids.shape[0] != num_rows:
        raise ValueError(
            f"`{name}` has {class_ids.shape[0]} rows but its embeddings have {num_rows}."
        )
    return class_ids


def retrieval_metrics(
    query_embeddings: ArrayLike,
    query_labels: ArrayLike,
    reference_embeddings: ArrayLike | None = None,
    reference_labels: ArrayLike | None = None,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, float]:
    """Recall@k and mAP@R of one label level, by cosine similarity.

    For each query, the references are ranked by cosine similarity (equal
    similarities: the lower reference row first), found by
    `keras_mlcl.search.exact_top_k` on the active backend. With `r_i` the
    number of references of the query's class and `rel_i(j)` 1 when the
    reference at rank `j` has it:

    ```
    recall@k = mean_i [sum_{j <= k} rel_i(j) > 0]
    mAP@R = mean_i (1 / r_i) sum_{j <= r_i} rel_i(j) * precision_i@j
    precision_i@j = (1 / j) sum_{j' <= j} rel_i(j')
    ```

    (mAP@R as in Musgrave et al., "A Metric Learning Reality Check", 2020.)
    Without references, each query is searched among the other queries
    (leave-one-out: a sample is never its own neighbour). Unlabelled rows
    (class id < 0) are neither queries nor references, and queries whose
    class has no reference are left out (nothing can be retrieved for them).
    The work is done in blocks of queries, so memory stays bounded.

    Args:
        query_embeddings: `(M, D)` embeddings.
        query_labels: `(M,)` int class ids.
        reference_embeddings: `(N, D)` embeddings searched, or None (the
            default) for leave-one-out on the queries.
        reference_labels: `(N,)` int class ids; given with (and only with)
            `reference_embeddings`.
        ks: positive ints (or one int), the `k` of each Recall@k. Defaults
            to `(1, 5)`.

    Returns:
        A dict `{"recall@<k>": float for k in ks, "map@r": float}`.

    Example:

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.9]])
    >>> retrieval_metrics(x, np.array([0, 0, 1, 1]), ks=(1,))
    {'recall@1': 1.0, 'map@r': 1.0}
    """
    ks = tuple(check_positive_int("ks", k) for k in ((ks,) if isinstance(ks, int) else ks))
    if not ks:
        raise ValueError("`ks` should hold at least one positive int. Received: `ks`=()")
    queries = check_embeddings("query_embeddings", query_embeddings)
    query_y = _class_ids("query_labels", query_labels, queries.shape[0])
    leave_one_out = reference_embeddings is None
    if leave_one_out != (reference_labels is None):
        raise ValueError(
            "`reference_embeddings` and `reference_labels` go together: pass both or "
            "neither (neither: leave-one-out on the queries)."
        )
    if reference_embeddings is None or reference_labels is None:  # leave-one-out
        references, reference_y = queries, query_y
    else:
        references = check_embeddings("reference_embeddings", reference_embeddings)
        reference_y = _class_ids("reference_labels", reference_labels, references.shape[0])
        if references.shape[1] != queries.shape[1]:
            raise ValueError(
                "`query_embeddings` and `reference_embeddings` should have the same width. "
                f"Received: {queries.shape} and {references.shape}"
            )
    labelled = reference_y >= 0
    references, reference_y = unit_rows(references[labelled]), reference_y[labelled]
    query_rows = np.flatnonzero(query_y >= 0)
    # In leave-one-out, query row q is reference row `self_index[q]`.
    self_index = np.cumsum(labelled) - 1
    classes, counts = np.unique(reference_y, return_counts=True)
    position = np.clip(np.searchsorted(classes, query_y[query_rows]), 0, len(classes) - 1)
    relevant = np.where(classes[position] == query_y[query_rows], counts[position], 0)
    relevant = relevant - int(leave_one_out)
    query_rows, relevant = query_rows[relevant > 0], relevant[relevant > 0]
    if query_rows.size == 0:
        raise ValueError(
            "No labelled query has a reference of its class: retrieval metrics are "
            "undefined. Check that the queries' and references' classes overlap."
        )
    queries = unit_rows(queries)
    searchable = references.shape[0] - int(leave_one_out)
    depth = min(max(max(ks), int(relevant.max())), searchable)
    hits = {k: 0 for k in ks}
    precision_sum = 0.0
    block = max(1, BLOCK_ELEMENTS // references.shape[0])
    for start in range(0, query_rows.size, block):
        rows = query_rows[start : start + block]
        r = relevant[start : start + block]
        ranked = exact_top_k(queries[rows], references, depth + int(leave_one_out))[0]
        if leave_one_out:
            # Drop the query's own row, or the last one when it is not among them.
            own = ranked == self_index[rows][:, None]
            own[:, -1] |= ~np.any(own, axis=1)
            ranked = ranked[~own].reshape(rows.size, depth)
        match = reference_y[ranked] == query_y[rows][:, None]
        for k in ks:
            hits[k] += int(np.sum(np.any(match[:, :k], axis=1)))
        ranks = np.arange(1, depth + 1)
        within_r = ranks[None, :] <= r[:, None]
        precision = np.cumsum(match, axis=1) / ranks
        precision_sum += float(np.sum(np.sum(precision * (match & within_r), axis=1) / r))
    metrics = {f"recall@{k}": hits[k] / query_rows.size for k in ks}
    metrics["map@r"] = precision_sum / query_rows.size
    return metrics


def retrieval_metrics_per_level(
    query_embeddings: ArrayLike,
    query_labels: LevelLabels,
    reference_embeddings: ArrayLike | None = None,
    reference_labels: LevelLabels | None = None,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, dict[str, float]]:
    """`retrieval_metrics` for each class-id level of `{level: labels}` dicts.

    Multi-hot levels (`(N, K)` labels) have no single class to retrieve and
    are left out of the result.

    Args:
        query_embeddings: `(M, D)` embeddings.
        query_labels: dict `{level: labels}`.
        reference_embeddings: `(N, D)` embeddings searched, or None (the
            default) for leave-one-out on the queries.
        reference_labels: dict with the same levels, or None with
            `reference_embeddings=None`.
        ks: positive ints, the `k` of each Recall@k. Defaults to `(1, 5)`.

    Returns:
        A dict `{level: {"recall@<k>": float, ..., "map@r": float}}`, in the
        order of `query_labels`.

    Example:

    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.9]])
    >>> labels = {"coarse": np.array([0, 0, 0, 0]), "fine": np.array([0, 0, 1, 1])}
    >>> retrieval_metrics_per_level(x, labels, ks=(1,))["fine"]
    {'recall@1': 1.0, 'map@r': 1.0}
    """
    if reference_labels is None:
        levels = check_level_dicts("query_labels", query_labels, "query_labels", query_labels)
    else:
        levels = check_level_dicts(
            "query_labels", query_labels, "reference_labels", reference_labels
        )
    return {
        level: retrieval_metrics(
            query_embeddings,
            query_labels[level],
            reference_embeddings,
            None if reference_labels is None else reference_labels[level],
            ks=ks,
        )
        for level in levels
        if np.ndim(query_labels[level]) == 1 or np.shape(query_labels[level])[1] == 1
    }
