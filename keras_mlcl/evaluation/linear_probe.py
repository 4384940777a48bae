"""Linear probe: logistic regression on frozen embeddings."""

import numpy as np

from keras_mlcl.evaluation.multilabel_metrics import check_embeddings
from keras_mlcl.evaluation.multilabel_metrics import check_level_dicts
from keras_mlcl.evaluation.multilabel_metrics import check_train_test
from keras_mlcl.evaluation.multilabel_metrics import macro_f1
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.types import LevelLabels
from keras_mlcl.utils.validation import check_positive_float
from keras_mlcl.utils.validation import check_positive_int

RANDOM_STATE = 0


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
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    C = check_positive_float("C", C)
    max_iter = check_positive_int("max_iter", max_iter)
    train_x, train_y, test_x, test_y, multi_hot = check_train_test(
        train_embeddings, train_labels, test_embeddings, test_labels
    )
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    classifier = LogisticRegression(C=C, max_iter=max_iter, random_state=RANDOM_STATE)
    if multi_hot:
        predictions = OneVsRestClassifier(classifier).fit(train_x, train_y).predict(test_x)
        return macro_f1(test_y, np.asarray(predictions))
    classes = np.unique(train_y)
    if classes.size == 1:
        predictions = np.full(test_y.shape, classes[0])
    else:
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
    levels = check_level_dicts("train_labels", train_labels, "test_labels", test_labels)
    train_x = check_embeddings("train_embeddings", train_embeddings)
    test_x = check_embeddings("test_embeddings", test_embeddings)
    return {
        level: linear_probe(
            train_x, train_labels[level], test_x, test_labels[level], C=C, max_iter=max_iter
        )
        for level in levels
    }
