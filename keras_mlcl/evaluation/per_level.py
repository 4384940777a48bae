"""Scoring each label level of `{level: labels}` dicts with a one-level score."""

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from keras_mlcl.evaluation.multilabel_metrics import check_embeddings
from keras_mlcl.evaluation.multilabel_metrics import check_level_dicts
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels

Score = TypeVar("Score")


def score_per_level(
    score: Callable[[np.ndarray, ArrayLike, np.ndarray, ArrayLike], Score],
    train_embeddings: ArrayLike,
    train_labels: LevelLabels,
    test_embeddings: ArrayLike,
    test_labels: LevelLabels,
) -> dict[str, Score]:
    """`score(train_x, train_labels[level], test_x, test_labels[level])` for each level.

    The embeddings are checked (and converted to arrays) once for all levels.

    Args:
        score: a one-level score, e.g. `knn_accuracy` with its options bound.
        train_embeddings: `(N, D)` embeddings to fit on.
        train_labels: dict `{level: labels}`, each `(N,)` or `(N, K)`.
        test_embeddings: `(M, D)` embeddings to score on.
        test_labels: dict with the same levels, each `(M,)` or `(M, K)`.

    Returns:
        A dict `{level: score}`, in the order of `train_labels`.

    Example:

    >>> def test_size(train_x, train_y, test_x, test_y):
    ...     return len(test_x)
    >>> labels = {"coarse": np.array([0, 1]), "fine": np.array([0, 1])}
    >>> score_per_level(test_size, np.eye(2), labels, np.eye(2), labels)
    {'coarse': 2, 'fine': 2}
    """
    levels = check_level_dicts("train_labels", train_labels, "test_labels", test_labels)
    train_x = check_embeddings("train_embeddings", train_embeddings)
    test_x = check_embeddings("test_embeddings", test_embeddings)
    return {
        level: score(train_x, train_labels[level], test_x, test_labels[level]) for level in levels
    }
