"""Multi-label metrics, and the label checks shared by the evaluation package.

Evaluation runs on host, on NumPy arrays (embeddings from `model.predict`).
A label level is either int class ids `(N,)`, where a negative id (-1) means
"unlabelled at this level", or multi-hot `(N, K)`, where a row holding a
negative value means "unlabelled". Unlabelled rows are left out of both
fitting and scoring.
"""

import math
from typing import Any

import numpy as np

from keras_mlcl.utils.types import ArrayLike


def check_embeddings(name: str, embeddings: ArrayLike) -> np.ndarray:
    """Returns `embeddings` as a finite float NumPy array `(N, D)`, or raises."""
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"`{name}` should be a non-empty 2-D array (N, D). "
            f"Received: `{name}.shape`={array.shape}"
        )
    if array.dtype not in (np.float32, np.float64):
        # Integers, booleans, float16 and bfloat16 (e.g. mixed-precision outputs).
        message = f"`{name}` should hold real numbers. Received: `{name}.dtype`={array.dtype}"
        if array.dtype.kind in "OSUMmc":
            raise ValueError(message)
        try:
            array = array.astype("float64" if array.dtype.kind in "iub" else "float32")
        except (TypeError, ValueError):
            raise ValueError(message) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` should hold finite values only (no NaN or Inf).")
    return array


def check_level_labels(
    name: str, labels: ArrayLike, num_samples: int | None = None
) -> tuple[np.ndarray, bool, np.ndarray]:
    """Checks one level's labels and finds its labelled rows.

    Args:
        name: the argument name, for error messages.
        labels: int class ids `(N,)` (negative = unlabelled) or multi-hot
            `(N, K)` of 0/1 (a row with a negative value = unlabelled).
        num_samples: the expected `N`, or None.

    Returns:
        `(labels, multi_hot, labelled)`: the labels as an int64 array, whether
        they are multi-hot, and a boolean mask `(N,)` of labelled rows.
    """
    array = np.asarray(labels)
    if array.ndim not in (1, 2) or array.shape[0] == 0:
        raise ValueError(
            f"`{name}` should be int class ids (N,) or multi-hot (N, K). "
            f"Received: `{name}.shape`={array.shape}"
        )
    if num_samples is not None and array.shape[0] != num_samples:
        raise ValueError(
            f"`{name}` should have one row per embedding ({num_samples}). "
            f"Received: `{name}.shape`={array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"`{name}` should hold numbers. Received: `{name}.dtype`={array.dtype}")
    if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise ValueError(f"`{name}` should hold integer values only.")
    array = array.astype("int64")
    if array.ndim == 1:
        return array, False, array >= 0
    labelled = np.all(array >= 0, axis=1)
    if np.any(array[labelled] > 1):
        raise ValueError(
            f"`{name}` is 2-D, so it should be multi-hot (0/1, a negative row "
            f"for unlabelled). Received: values up to {array.max()}"
        )
    return array, True, labelled


def check_train_test(
    train_embeddings: ArrayLike,
    train_labels: ArrayLike,
    test_embeddings: ArrayLike,
    test_labels: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Checks a train/test pair of one level and keeps their labelled rows.

    Returns:
        `(train_x, train_y, test_x, test_y, multi_hot)`, NumPy arrays holding
        only the labelled rows.
    """
    train_x = check_embeddings("train_embeddings", train_embeddings)
    test_x = check_embeddings("test_embeddings", test_embeddings)
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            "`train_embeddings` and `test_embeddings` should have the same width. "
            f"Received: {train_x.shape} and {test_x.shape}"
        )
    train_y, multi_hot, train_labelled = check_level_labels(
        "train_labels", train_labels, train_x.shape[0]
    )
    test_y, test_multi_hot, test_labelled = check_level_labels(
        "test_labels", test_labels, test_x.shape[0]
    )
    if multi_hot != test_multi_hot or train_y.shape[1:] != test_y.shape[1:]:
        raise ValueError(
            "`train_labels` and `test_labels` should have the same format (both int "
            f"class ids or both multi-hot with the same K). Received: shapes "
            f"{train_y.shape} and {test_y.shape}"
        )
    for name, labelled in (("train_labels", train_labelled), ("test_labels", test_labelled)):
        if not labelled.any():
            raise ValueError(f"`{name}` should have at least one labelled row (not -1).")
    return (
        train_x[train_labelled],
        train_y[train_labelled],
        test_x[test_labelled],
        test_y[test_labelled],
        multi_hot,
    )


def check_level_dicts(
    train_name: str, train_labels: Any, test_name: str, test_labels: Any
) -> list[str]:
    """Returns the level names of two `{level: labels}` dicts with equal keys."""
    for name, value in ((train_name, train_labels), (test_name, test_labels)):
        if not isinstance(value, dict) or not value:
            raise ValueError(
                f"`{name}` should be a non-empty dict {{level: labels}}. "
                f"Received: `{name}`={type(value).__name__}"
            )
    if set(train_labels) != set(test_labels):
        raise ValueError(
            f"`{train_name}` and `{test_name}` should have the same levels. Received: "
            f"{sorted(train_labels)} and {sorted(test_labels)}"
        )
    return list(train_labels)


def f1_counts(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-label counts `(2 TP, 2 TP + FP + FN)` of multi-hot `(N, K)` arrays."""
    truth, predicted = np.asarray(y_true) > 0, np.asarray(y_pred) > 0
    true_positives = np.sum(truth & predicted, axis=0)
    return 2 * true_positives, truth.sum(axis=0) + predicted.sum(axis=0)


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Macro-F1 over the labels with a positive in `y_true` or `y_pred`.

    ```
    F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)
    ```

    A label that is negative everywhere in both has no defined F1 and is left
    out; 0.0 when no label is left. Computed from the counts, so a single
    label `(N, 1)` is scored as a label, not as a binary target.
    """
    numerators, denominators = f1_counts(y_true, y_pred)
    active = denominators > 0
    if not active.any():
        return 0.0
    return float(np.mean(numerators[active] / denominators[active]))


def micro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Micro-F1, `2 TP / (2 TP + FP + FN)` with counts summed over labels; 0.0 when undefined."""
    numerators, denominators = f1_counts(y_true, y_pred)
    total = denominators.sum()
    return float(numerators.sum() / total) if total > 0 else 0.0


def check_scores(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checks multi-hot labels and their scores, and keeps the labelled rows.

    Args:
        y_true: multi-hot labels `(N, K)` of 0/1 (a row with a negative value
            = unlabelled).
        y_score: scores `(N, K)`.

    Returns:
        `(labels, scores)`: int64 labels and float scores of the labelled rows
        (possibly none).
    """
    y_true_array = np.asarray(y_true)
    y_score_array = np.asarray(y_score)
    if y_true_array.ndim != 2:
        raise ValueError(
            f"`y_true` should be multi-hot (N, K). Received: `y_true.shape`={y_true_array.shape}"
        )
    if y_score_array.shape != y_true_array.shape:
        raise ValueError(
            "`y_score` should have the shape of `y_true`. Received: "
            f"`y_true.shape`={y_true_array.shape} and `y_score.shape`={y_score_array.shape}"
        )
    labels, _, labelled = check_level_labels("y_true", y_true_array)
    scores = check_embeddings("y_score", y_score_array)
    return labels[labelled], scores[labelled]


def check_threshold(threshold: Any, num_labels: int) -> float | np.ndarray:
    """Returns `threshold` as a finite float or a finite float array `(K,)`, or raises."""
    array = np.asarray(threshold)
    if array.ndim == 0:
        try:
            value = float(threshold)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(
                f"`threshold` should be a finite float. Received: `threshold`={threshold}"
            )
        return value
    if array.shape != (num_labels,):
        raise ValueError(
            f"`threshold` should be a float or an array of one threshold per label "
            f"({num_labels},). Received: `threshold.shape`={array.shape}"
        )
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)):
        raise ValueError(
            f"`threshold` should hold finite real numbers only. Received: `threshold`={array}"
        )
    return array.astype("float64")


def f1_thresholds(y_true: ArrayLike, y_score: ArrayLike) -> np.ndarray:
    """Per-label thresholds that maximise each label's F1 on the given rows.

    For label `k`, the candidates are its distinct scores `t`; each predicts
    positive the rows with `score >= t`:

    ```
    F1_k(t) = 2 TP_k(t) / (P_k + N_k(t))
    threshold_k = max {t : F1_k(t) = max_u F1_k(u)}
    ```

    where `TP_k(t)` counts the positive rows scored `>= t`, `P_k` the
    positive rows and `N_k(t)` the rows scored `>= t`. Among equally good
    candidates the highest one is kept (the fewest predicted positives). A
    label without a positive (or when every row is unlabelled) gets 0.5.
    Rows of `y_true` that hold a negative value are unlabelled and left out.
    One sort per label: `O(K N log N)`.

    Args:
        y_true: multi-hot labels `(N, K)` of 0/1, usually of a validation
            split.
        y_score: scores or probabilities `(N, K)`; higher means more likely.

    Returns:
        A float64 NumPy array `(K,)` of thresholds, each one of the label's
        scores (or 0.5), for `multilabel_metrics(..., threshold=...)`.

    Example:

    >>> y_true = np.array([[1, 0], [1, 0], [0, 0]])
    >>> y_score = np.array([[0.3, 0.9], [0.6, 0.1], [0.2, 0.4]])
    >>> f1_thresholds(y_true, y_score).tolist()
    [0.3, 0.5]
    """
    labels, scores = check_scores(y_true, y_score)
    thresholds = np.full(labels.shape[1], 0.5)
    positives = labels.sum(axis=0)
    if labels.shape[0] == 0:
        return thresholds
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    true_positives = np.cumsum(np.take_along_axis(labels, order, axis=0), axis=0)
    predicted = np.arange(1, labels.shape[0] + 1)[:, None]
    f1 = 2 * true_positives / (positives + predicted)
    # A candidate is the last row of a run of equal scores: it predicts them all.
    run_end = np.ones_like(sorted_scores, dtype=bool)
    run_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    f1 = np.where(run_end, f1, -1.0)
    # argmax keeps the first (highest-threshold) maximum; equal fractions divide to equal floats.
    best = np.argmax(f1, axis=0)
    with_positive = positives > 0
    chosen = sorted_scores[best, np.arange(labels.shape[1])]
    thresholds[with_positive] = chosen[with_positive]
    return thresholds


def multilabel_metrics(
    y_true: ArrayLike, y_score: ArrayLike, threshold: float | ArrayLike = 0.5
) -> dict[str, float]:
    """Micro/macro-F1, mean average precision and Hamming loss.

    ```
    y_pred = y_score >= threshold
    micro_f1 = 2 TP / (2 TP + FP + FN)        counts summed over all labels
    macro_f1 = mean_k F1_k                    over labels k with a positive
                                              in y_true or y_pred
    map = mean_k AP_k                         over labels k with a positive
                                              in y_true
    hamming_loss = mean over (rows, labels) of [y_pred != y_true]
    ```

    where `AP_k` is scikit-learn's `average_precision_score` of label `k`
    (the area under its step-wise precision-recall curve; it does not depend
    on the threshold). Rows of `y_true` that hold a negative value are
    unlabelled and left out.

    Args:
        y_true: multi-hot labels `(N, K)` of 0/1.
        y_score: scores or probabilities `(N, K)`; higher means more likely.
        threshold: a label is predicted when its score is `>= threshold`:
            one float for every label, or an array `(K,)` of one threshold
            per label (e.g. from `f1_thresholds` on a validation split).
            Defaults to 0.5.

    Returns:
        A dict with float values `"micro_f1"`, `"macro_f1"`, `"map"` (NaN when
        no label has a positive) and `"hamming_loss"`. F1 scores are 0.0
        when neither labels nor predictions have a positive.

    Example:

    >>> y_true = np.array([[1, 0], [0, 1]])
    >>> y_score = np.array([[0.9, 0.2], [0.4, 0.7]])
    >>> multilabel_metrics(y_true, y_score)["micro_f1"]
    1.0
    >>> multilabel_metrics(y_true, y_score, threshold=np.array([0.95, 0.5]))["macro_f1"]
    0.5
    """
    from sklearn.metrics import average_precision_score
    from sklearn.metrics import hamming_loss

    labels, scores = check_scores(y_true, y_score)
    threshold = check_threshold(threshold, labels.shape[1])
    if labels.shape[0] == 0:
        raise ValueError("`y_true` should have at least one labelled row (no negative values).")
    predictions = (scores >= threshold).astype("int64")

    with_positive = np.flatnonzero(labels.sum(axis=0) > 0)
    precisions = [average_precision_score(labels[:, k], scores[:, k]) for k in with_positive]
    return {
        "micro_f1": micro_f1(labels, predictions),
        "macro_f1": macro_f1(labels, predictions),
        "map": float(np.mean(precisions)) if precisions else math.nan,
        "hamming_loss": float(hamming_loss(labels, predictions)),
    }


def threshold_scores(
    val_true: ArrayLike | None,
    val_score: ArrayLike | None,
    test_true: ArrayLike,
    test_score: ArrayLike,
) -> dict[str, float]:
    """Test macro/micro-F1 and mAP with per-label thresholds chosen on validation.

    ```
    thresholds = f1_thresholds(val_true, val_score)    (0.5 without validation)
    scores = multilabel_metrics(test_true, test_score, thresholds)
    ```

    For a classifier's own outputs (e.g. sigmoid probabilities of a BCE
    head) as for a linear probe's.

    Args:
        val_true: validation multi-hot labels `(N, K)`, or None.
        val_score: their scores `(N, K)`, or None (with `val_true`).
        test_true: test multi-hot labels `(M, K)`.
        test_score: their scores `(M, K)`.

    Returns:
        A dict with float values `"macro_f1"`, `"micro_f1"` and `"map"` of the
        test rows (see `multilabel_metrics`).

    Example:

    >>> val_true = np.array([[1], [0]])
    >>> val_score = np.array([[0.3], [0.1]])
    >>> threshold_scores(val_true, val_score, np.array([[1], [0]]), np.array([[0.4], [0.2]]))
    {'macro_f1': 1.0, 'micro_f1': 1.0, 'map': 1.0}
    """
    if (val_true is None) != (val_score is None):
        raise ValueError(
            "`val_true` and `val_score` should be given together or both be None. Received: "
            f"`val_true` {'is None' if val_true is None else 'given'} and "
            f"`val_score` {'is None' if val_score is None else 'given'}"
        )
    threshold: float | np.ndarray = 0.5
    if val_true is not None and val_score is not None:
        threshold = f1_thresholds(val_true, val_score)
        if np.ndim(test_true) == 2 and np.shape(test_true)[1] != threshold.shape[0]:
            raise ValueError(
                "`val_true` and `test_true` should have the same number of labels K. "
                f"Received: shapes {np.shape(val_true)} and {np.shape(test_true)}"
            )
    result = multilabel_metrics(test_true, test_score, threshold=threshold)
    return {name: result[name] for name in ("macro_f1", "micro_f1", "map")}
