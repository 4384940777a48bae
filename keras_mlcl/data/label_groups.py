"""Label groups of a multi-label task: which label columns share one contrastive head.

The multi-label form of MLCL (`mlcl-groups`) gives each group of labels its own projection head,
temperature and weight; two samples are positives for a group's head when they share a label of
that group. `label_groups` builds the groups on the host from the training rows, either from a
coarser multi-hot level (e.g. the ICD-9 3-digit categories of MULAN medical's codes) or by
clustering the labels' co-occurrence.
"""

import math
import numbers
from collections.abc import Sequence

import numpy as np

from keras_mlcl.utils.types import ArrayLike


def _labelled_rows(array: ArrayLike, name: str) -> np.ndarray:
    """Checks a multi-hot `(N, K)` array and returns its row mask: True where no value is < 0."""
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(
            f"`{name}` should be a 2-D multi-hot array (N, K) with K >= 1. "
            f"Received: `{name}`.shape={array.shape}"
        )
    labelled = np.asarray((array >= 0).all(axis=1))
    if not np.isin(array[labelled], (0, 1)).all():
        raise ValueError(
            f"`{name}` should hold 0/1 values (rows with a negative value are unlabelled). "
            f"Received values: {np.unique(array[labelled]).tolist()}"
        )
    return labelled


def _jaccard_distance(positives: np.ndarray) -> np.ndarray:
    """`1 - Jaccard` between the columns of a boolean `(N, K)` array; 1 when a column is empty."""
    counts = positives.astype("float64")
    both = counts.T @ counts
    per_column = np.diag(both)
    either = per_column[:, None] + per_column[None, :] - both
    jaccard = np.divide(both, either, out=np.zeros_like(both), where=either > 0)
    distance = 1.0 - jaccard
    np.fill_diagonal(distance, 0.0)
    return distance


def _groups_from_ids(group_ids: Sequence[int] | np.ndarray) -> list[list[int]]:
    """Lists of column indices per group id, each sorted, ordered by their smallest column."""
    groups: dict[int, list[int]] = {}
    for column, group_id in enumerate(group_ids):
        groups.setdefault(int(group_id), []).append(column)
    return sorted(groups.values(), key=lambda group: group[0])


def _coarse_groups(positives: np.ndarray, coarse_positives: np.ndarray) -> list[list[int]]:
    """Each fine column joins the coarse column that explains it (see `label_groups`)."""
    fine = positives.astype("int64")
    coarse = coarse_positives.astype("int64")
    both = fine.T @ coarse  # (K, C): rows holding fine column k and coarse column c
    counts = fine.sum(axis=0)
    contained = (both == counts[:, None]) & (counts[:, None] > 0)  # rows(k) within rows(c)
    # Per row and coarse column, how many fine columns contained in it the row holds; where that
    # is 1 and the row holds fine column k, k alone explains the coarse label there.
    holders = fine @ contained.astype("int64")
    alone = fine.T @ ((holders == 1) & (coarse == 1)).astype("int64")
    score = np.where(contained, alone * (len(fine) + 1) + both, -1)
    best = np.argmax(score, axis=1)  # the first maximum: ties go to the lowest coarse column
    fallback = ~contained.any(axis=1)
    best[fallback] = np.argmax(both[fallback], axis=1)
    # Columns that share no positive row with any coarse column get one extra group together.
    best[both.max(axis=1) == 0] = coarse.shape[1]
    return _groups_from_ids(best)


def _clustered_groups(positives: np.ndarray, num_groups: int) -> list[list[int]]:
    """Average-linkage agglomerative clustering of the columns on the Jaccard distance."""
    from sklearn.cluster import AgglomerativeClustering

    num_labels = positives.shape[1]
    if num_groups == 1:  # also covers K = 1, which the clustering does not accept
        return [list(range(num_labels))]
    clustering = AgglomerativeClustering(
        n_clusters=num_groups, metric="precomputed", linkage="average"
    )
    return _groups_from_ids(clustering.fit_predict(_jaccard_distance(positives)))


def label_groups(
    labels: ArrayLike, coarse: ArrayLike | None = None, num_groups: int | None = None
) -> list[list[int]]:
    """Groups the label columns of a multi-label task, for one contrastive head per group.

    With `coarse` (a coarser level, each coarse label holding when one of its fine labels
    does), each fine column `k` joins its parent, found from the rows alone. With

    ```
    count(k, c) = #{rows n : labels[n, k] = 1 and coarse[n, c] = 1}
    alone(k, c) = #{rows n : labels[n, k] = 1, coarse[n, c] = 1, and k is the only
                   column contained in c that row n holds}
    ```

    the candidates are the coarse columns that contain `k` (`coarse` holds wherever `k` does),
    and `k` joins the candidate with the largest `alone(k, c)`, then the largest
    `count(k, c)`, then the lowest `c`. `alone` tells the true parent from a coarse label that
    merely co-occurs: a code always seen next to another category's code is contained in that
    category too, but never explains it alone. A column with no candidate joins the coarse
    column maximising `count(k, c)`; the columns with `count(k, c) = 0` for every `c` (in
    particular those with no positive row) form one extra group together. Each non-empty
    coarse column gives one group.

    Without `coarse`, the columns are clustered into `num_groups` groups by agglomerative
    clustering with average linkage on the distance

    ```
    d(i, j) = 1 - |P_i ∩ P_j| / |P_i ∪ P_j|
    ```

    where `P_k` is the set of labelled rows with `labels[n, k] = 1` (`d = 1` when the union is
    empty, so a column with no positive row is at distance 1 from every other column).

    Rows of `labels` (or of `coarse`) with a negative value are unlabelled and ignored. The
    result depends only on the inputs (no randomness).

    Args:
        labels: multi-hot `(N, K)` array of 0/1 values, the training rows.
        coarse: optional multi-hot `(N, C)` array of the same rows at a coarser level (e.g. the
            ICD-9 3-digit categories over the codes of `labels`). Defaults to `None`.
        num_groups: number of groups when clustering (without `coarse`), an int in `[1, K]`.
            Defaults to `None`: `round(sqrt(K))`, clipped to `[1, K]`. Must be `None` when
            `coarse` is given.

    Returns:
        A list of groups, each a sorted list of column indices of `labels`; every column is in
        exactly one group, no group is empty, and the groups are ordered by their smallest
        column.

    Example:

    >>> labels = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0]])
    >>> label_groups(labels, num_groups=2)
    [[0, 1], [2, 3]]
    >>> label_groups(labels, coarse=np.array([[0, 1], [0, 1], [1, 0], [1, 0]]))
    [[0, 1], [2, 3]]
    """
    labels = np.asarray(labels)
    labelled = _labelled_rows(labels, "labels")
    num_labels = labels.shape[1]
    if coarse is not None:
        if num_groups is not None:
            raise ValueError(
                "`num_groups` should be None when `coarse` is given (the coarse columns "
                f"define the groups). Received: `num_groups`={num_groups!r}"
            )
        coarse = np.asarray(coarse)
        coarse_labelled = _labelled_rows(coarse, "coarse")
        if coarse.shape[0] != labels.shape[0]:
            raise ValueError(
                "`coarse` should have one row per row of `labels`. Received: "
                f"`labels`.shape={labels.shape}, `coarse`.shape={coarse.shape}"
            )
        rows = labelled & coarse_labelled
        return _coarse_groups(labels[rows] == 1, coarse[rows] == 1)
    if num_groups is None:
        num_groups = min(max(round(math.sqrt(num_labels)), 1), num_labels)
    elif (
        isinstance(num_groups, bool)
        or not isinstance(num_groups, numbers.Integral)
        or not 1 <= num_groups <= num_labels
    ):
        raise ValueError(
            f"`num_groups` should be an int in [1, {num_labels}] (the number of label "
            f"columns). Received: `num_groups`={num_groups!r}"
        )
    return _clustered_groups(labels[labelled] == 1, int(num_groups))
