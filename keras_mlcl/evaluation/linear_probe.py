"""Linear probe: logistic regression on frozen embeddings."""

import functools

import numpy as np
from threadpoolctl import threadpool_limits

from keras_mlcl.evaluation.multilabel_metrics import check_embeddings
from keras_mlcl.evaluation.multilabel_metrics import check_level_dicts
from keras_mlcl.evaluation.multilabel_metrics import check_level_labels
from keras_mlcl.evaluation.multilabel_metrics import check_train_test
from keras_mlcl.evaluation.multilabel_metrics import macro_f1
from keras_mlcl.evaluation.multilabel_metrics import threshold_scores
from keras_mlcl.evaluation.per_level import score_per_level
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_positive_float
from keras_mlcl.utils.validation import check_positive_int

RANDOM_STATE = 0


def one_vs_rest_probabilities(
    train_x: np.ndarray, train_y: np.ndarray, score_xs: list[np.ndarray], C: float, max_iter: int
) -> list[np.ndarray]:
    """Standardises, fits one logistic regression per label, returns probabilities.

    For `K >= 2` this equals scikit-learn's `OneVsRestClassifier(...)
    .predict_proba` (one binary model per label column); it also handles
    `K = 1`, and a label constant in `train_y` gets that constant (1 or 0) as
    its probability.

    Args:
        train_x: labelled training embeddings `(N, D)`.
        train_y: their multi-hot labels `(N, K)` of 0/1.
        score_xs: list of embeddings `(M_i, D)` to score.
        C: inverse L2 regularisation strength.
        max_iter: most lbfgs iterations.

    Returns:
        A list of float arrays `(M_i, K)`: the probability of each label.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    train_x = scaler.transform(train_x)
    score_xs = [scaler.transform(x) for x in score_xs]
    probabilities = [np.empty((x.shape[0], train_y.shape[1])) for x in score_xs]
    for k in range(train_y.shape[1]):
        column = train_y[:, k]
        if column.min() == column.max():
            for probability in probabilities:
                probability[:, k] = float(column[0])
            continue
        classifier = LogisticRegression(C=C, max_iter=max_iter, random_state=RANDOM_STATE)
        with threadpool_limits(limits=1):  # one BLAS thread, as in `linear_probe`
            classifier.fit(train_x, column)
        for x, probability in zip(score_xs, probabilities, strict=True):
            probability[:, k] = classifier.predict_proba(x)[:, 1]
    return probabilities


def linear_probe(
    train_embeddings: ArrayLike,
    train_labels: ArrayLike,
    test_embeddings: ArrayLike,
    test_labels: ArrayLike,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test score of a logistic regression trained on frozen embeddings.

    The embeddings are standardised with the mean and standard deviation of
    the labelled training rows, then a scikit-learn `LogisticRegression`
    (L2 penalty, lbfgs, `random_state=0`, so deterministic) is fitted:

    - class ids `(N,)`: one multinomial model; the score is the accuracy.
    - multi-hot `(N, K)`: one binary model per label (one-vs-rest); the
      score is the macro-F1 of the predictions (probability >= 0.5), over
      the labels with a positive in the test labels or the predictions.

    Unlabelled rows (class id -1, or a multi-hot row with a negative value)
    are left out of both fitting and scoring. When the labelled training
    rows hold a single class, that class is predicted everywhere (a label
    constant in training is predicted constant, with scikit-learn's warning).

    Args:
        train_embeddings: `(N, D)` embeddings to fit on.
        train_labels: their labels, `(N,)` class ids or `(N, K)` multi-hot.
        test_embeddings: `(M, D)` embeddings to score on.
        test_labels: their labels, in the format of `train_labels`.
        C: inverse L2 regularisation strength. Defaults to 1.0.
        max_iter: most lbfgs iterations. Defaults to 1000.

    Returns:
        A float in [0, 1]: accuracy, or macro-F1 for a multi-hot level.

    Example:

    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> test = np.array([[1.0, 0.05], [0.05, 1.0]])
    >>> linear_probe(train, np.array([0, 0, 1, 1]), test, np.array([0, 1]))
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    C = check_positive_float("C", C)
    max_iter = check_positive_int("max_iter", max_iter)
    train_x, train_y, test_x, test_y, multi_hot = check_train_test(
        train_embeddings, train_labels, test_embeddings, test_labels
    )
    if multi_hot:
        (probabilities,) = one_vs_rest_probabilities(train_x, train_y, [test_x], C, max_iter)
        return macro_f1(test_y, (probabilities >= 0.5).astype("int64"))
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    classifier = LogisticRegression(C=C, max_iter=max_iter, random_state=RANDOM_STATE)
    classes = np.unique(train_y)
    if classes.size == 1:
        predictions = np.full(test_y.shape, classes[0])
    else:
        # One BLAS thread: scikit-learn's solver makes many small BLAS calls, whose threads,
        # synchronised at each, took 5-80x longer on a busy machine; the scores are the same.
        with threadpool_limits(limits=1):
            predictions = classifier.fit(train_x, train_y).predict(test_x)
    return float(np.mean(predictions == test_y))


def linear_probe_per_level(
    train_embeddings: ArrayLike,
    train_labels: LevelLabels,
    test_embeddings: ArrayLike,
    test_labels: LevelLabels,
    C: float = 1.0,
    max_iter: int = 1000,
) -> dict[str, float]:
    """`linear_probe` for each level of `{level: labels}` dicts.

    Args:
        train_embeddings: `(N, D)` embeddings to fit on.
        train_labels: dict `{level: labels}`, each `(N,)` or `(N, K)`.
        test_embeddings: `(M, D)` embeddings to score on.
        test_labels: dict with the same levels, each `(M,)` or `(M, K)`.
        C: inverse L2 regularisation strength. Defaults to 1.0.
        max_iter: most lbfgs iterations. Defaults to 1000.

    Returns:
        A dict `{level: float}`, in the order of `train_labels`: accuracy for
        class-id levels, macro-F1 for multi-hot levels.

    Example:

    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> labels = {"coarse": np.array([0, 0, 1, 1])}
    >>> linear_probe_per_level(train, labels, train, labels)
    {'coarse': 1.0}
    """
    score = functools.partial(linear_probe, C=C, max_iter=max_iter)
    return score_per_level(score, train_embeddings, train_labels, test_embeddings, test_labels)


def probe_scores(
    train_embeddings: ArrayLike,
    train_labels: LevelLabels,
    test_embeddings: ArrayLike,
    test_labels: LevelLabels,
    val_embeddings: ArrayLike | None = None,
    val_labels: LevelLabels | None = None,
    C: float = 1.0,
    max_iter: int = 1000,
) -> dict[str, dict[str, float]]:
    """Linear-probe test scores per level, multi-label ones thresholded on validation.

    The probe is `linear_probe`'s (standardisation and `LogisticRegression`
    fitted on the labelled training rows, `random_state=0`):

    - class ids `(N,)`: `{"accuracy": ...}`, equal to `linear_probe`.
    - multi-hot `(N, K)`: the one-vs-rest probabilities of the validation
      and test rows go through `threshold_scores`: per-label thresholds
      maximising each label's F1 on the validation rows (`f1_thresholds`;
      0.5 for every label without validation rows), then
      `{"macro_f1", "micro_f1", "map"}` of the test rows.

    A label constant in the training rows is predicted constant (probability
    1 or 0). Unlabelled rows are left out everywhere.

    Args:
        train_embeddings: `(N, D)` embeddings to fit on.
        train_labels: dict `{level: labels}`, each `(N,)` or `(N, K)`.
        test_embeddings: `(M, D)` embeddings to score on.
        test_labels: dict with the same levels, each `(M,)` or `(M, K)`.
        val_embeddings: `(V, D)` embeddings to choose thresholds on, or None.
        val_labels: dict with the same levels, each `(V,)` or `(V, K)`, or
            None (with `val_embeddings`). Unused by class-id levels.
        C: inverse L2 regularisation strength. Defaults to 1.0.
        max_iter: most lbfgs iterations. Defaults to 1000.

    Returns:
        A dict `{level: {metric: float}}` in the order of `train_labels`.

    Example:

    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> labels = {"coarse": np.array([0, 0, 1, 1]), "tags": np.array([[1], [1], [0], [0]])}
    >>> probe_scores(train, labels, train, labels)
    {'coarse': {'accuracy': 1.0}, 'tags': {'macro_f1': 1.0, 'micro_f1': 1.0, 'map': 1.0}}
    """
    C = check_positive_float("C", C)
    max_iter = check_positive_int("max_iter", max_iter)
    levels = check_level_dicts("train_labels", train_labels, "test_labels", test_labels)
    train_x = check_embeddings("train_embeddings", train_embeddings)
    test_x = check_embeddings("test_embeddings", test_embeddings)
    if (val_embeddings is None) != (val_labels is None):
        raise ValueError(
            "`val_embeddings` and `val_labels` should be given together or both be None. "
            f"Received: `val_embeddings` {'is None' if val_embeddings is None else 'given'} "
            f"and `val_labels` {'is None' if val_labels is None else 'given'}"
        )
    val_x = None
    if val_embeddings is not None:
        check_level_dicts("train_labels", train_labels, "val_labels", val_labels)
        val_x = check_embeddings("val_embeddings", val_embeddings)
        if val_x.shape[1] != train_x.shape[1]:
            raise ValueError(
                "`val_embeddings` should have the width of `train_embeddings`. "
                f"Received: {val_x.shape} and {train_x.shape}"
            )
    scores = {}
    for level in levels:
        fit_x, fit_y, score_x, score_y, multi_hot = check_train_test(
            train_x, train_labels[level], test_x, test_labels[level]
        )
        if not multi_hot:
            accuracy = linear_probe(
                train_x, train_labels[level], test_x, test_labels[level], C=C, max_iter=max_iter
            )
            scores[level] = {"accuracy": accuracy}
            continue
        val_y = None
        score_xs = [score_x]
        if val_x is not None and val_labels is not None:
            val_y, val_multi_hot, _ = check_level_labels(
                "val_labels", val_labels[level], val_x.shape[0]
            )
            if not val_multi_hot or val_y.shape[1] != fit_y.shape[1]:
                raise ValueError(
                    f"`val_labels[{level!r}]` should be multi-hot like `train_labels[{level!r}]` "
                    f"with K={fit_y.shape[1]}. Received: shape {val_y.shape}"
                )
            score_xs.append(val_x)
        test_score, *val_score = one_vs_rest_probabilities(fit_x, fit_y, score_xs, C, max_iter)
        scores[level] = threshold_scores(
            val_y, val_score[0] if val_score else None, score_y, test_score
        )
    return scores
