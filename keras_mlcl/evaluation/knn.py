"""k-nearest-neighbour evaluation of frozen embeddings."""

import functools

import numpy as np

from keras_mlcl.evaluation.multilabel_metrics import check_train_test
from keras_mlcl.evaluation.per_level import score_per_level
from keras_mlcl.search.exact import exact_top_k
from keras_mlcl.search.exact import unit_rows
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

KNN_METRICS = ("cosine", "euclidean", "manhattan")


def knn_accuracy(
    train_embeddings: ArrayLike,
    train_labels: ArrayLike,
    test_embeddings: ArrayLike,
    test_labels: ArrayLike,
    k: int = 20,
    metric: str = "cosine",
) -> float:
    """kNN accuracy of one label level, with a majority vote.

    Each test embedding gets the class held by most of its `k` nearest
    training embeddings (an unweighted majority vote; a tie goes to the
    smallest class id):

    ```
    y_hat_i = argmax_c |{j in kNN(i) : y_j = c}|
    accuracy = mean_i [y_hat_i = y_i]
    ```

    Neighbours come from `keras_mlcl.search.exact_top_k` (cosine and
    Euclidean, on the active backend; equal distances: the lower training
    row first) or scikit-learn (Manhattan).

    For a multi-hot level `(N, K)` the score is the micro-F1 of the
    neighbour vote instead: label `c` is predicted when at least half of the
    `k` neighbours have it.

    Unlabelled rows (class id -1, or a multi-hot row with a negative value)
    are left out of both the neighbour set and the scored test rows. With
    fewer than `k` labelled training rows, all of them are the neighbours.

    Args:
        train_embeddings: `(N, D)` reference embeddings.
        train_labels: their labels, `(N,)` class ids or `(N, K)` multi-hot.
        test_embeddings: `(M, D)` embeddings to classify.
        test_labels: their labels, in the format of `train_labels`.
        k: number of neighbours. Defaults to 20.
        metric: `"cosine"` (default), `"euclidean"` or `"manhattan"`.

    Returns:
        A float: accuracy in [0, 1] (micro-F1 for a multi-hot level).

    Example:

    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> test = np.array([[1.0, 0.05], [0.05, 1.0]])
    >>> knn_accuracy(train, np.array([0, 0, 1, 1]), test, np.array([0, 1]), k=2)
    1.0
    """
    from sklearn.metrics import f1_score

    k = check_positive_int("k", k)
    metric = check_choice("metric", metric, KNN_METRICS)
    train_x, train_y, test_x, test_y, multi_hot = check_train_test(
        train_embeddings, train_labels, test_embeddings, test_labels
    )
    neighbours = nearest_rows(train_x, test_x, min(k, train_x.shape[0]), metric)
    if multi_hot:
        votes = train_y[neighbours].mean(axis=1)
        predictions = (votes >= 0.5).astype("int64")
        return float(f1_score(test_y, predictions, average="micro", zero_division=0))
    classes, class_index = np.unique(train_y, return_inverse=True)
    neighbour_classes = class_index.reshape(-1)[neighbours]
    counts = np.zeros((neighbours.shape[0], classes.size), dtype="int64")
    np.add.at(counts, (np.arange(neighbours.shape[0])[:, None], neighbour_classes), 1)
    # `argmax` takes the first of equal counts: the smallest class id.
    return float(np.mean(classes[np.argmax(counts, axis=1)] == test_y))


def nearest_rows(train_x: np.ndarray, test_x: np.ndarray, k: int, metric: str) -> np.ndarray:
    """The `(M, k)` rows of `train_x` nearest to each row of `test_x`, nearest first.

    Cosine and Euclidean searches run `exact_top_k` (equal distances: the
    lower row first); Euclidean as the inner product of `[2 x, -1]` and
    `[y, |y|^2]`, which orders the rows as `-|x - y|^2` does. Manhattan runs
    scikit-learn's brute-force search.
    """
    if metric == "cosine":
        return exact_top_k(unit_rows(test_x), unit_rows(train_x), k)[0]
    if metric == "euclidean":
        references = np.concatenate([train_x, np.sum(train_x**2, axis=1, keepdims=True)], axis=1)
        queries = np.concatenate([2 * test_x, -np.ones((test_x.shape[0], 1))], axis=1)
        return exact_top_k(queries, references, k)[0]
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute")
    return search.fit(train_x).kneighbors(test_x, return_distance=False)


def knn_accuracy_per_level(
    train_embeddings: ArrayLike,
    train_labels: LevelLabels,
    test_embeddings: ArrayLike,
    test_labels: LevelLabels,
    k: int = 20,
    metric: str = "cosine",
) -> dict[str, float]:
    """`knn_accuracy` for each level of `{level: labels}` dicts.

    Args:
        train_embeddings: `(N, D)` reference embeddings.
        train_labels: dict `{level: labels}`, each `(N,)` or `(N, K)`.
        test_embeddings: `(M, D)` embeddings to classify.
        test_labels: dict with the same levels, each `(M,)` or `(M, K)`.
        k: number of neighbours. Defaults to 20.
        metric: `"cosine"` (default), `"euclidean"` or `"manhattan"`.

    Returns:
        A dict `{level: float}`, in the order of `train_labels`: accuracy for
        class-id levels, micro-F1 for multi-hot levels.

    Example:

    >>> train = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> labels = {"coarse": np.array([0, 1]), "fine": np.array([3, 7])}
    >>> knn_accuracy_per_level(train, labels, train, labels, k=1)
    {'coarse': 1.0, 'fine': 1.0}
    """
    score = functools.partial(knn_accuracy, k=k, metric=metric)
    return score_per_level(score, train_embeddings, train_labels, test_embeddings, test_labels)
