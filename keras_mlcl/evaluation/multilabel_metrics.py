"""Multi-label metrics, and the label checks shared by the evaluation package.

Evaluation runs on host, on NumPy arrays (embeddings from `model.predict`).
A label level is either int class ids `(N,)`, where a negative id (-1) means
"unlabelled at this level", or multi-hot `(N, K)`, where a row holding a
negative value means "unlabelled". Unlabelled rows are left out of both
fitting and scoring.
"""

import math

import numpy as np

from keras_mlcl.utils.types import ArrayLike


def check_embeddings(name, embeddings):
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


def check_level_labels(name, labels, num_samples=None):
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


def check_train_test(train_embeddings, train_labels, test_embeddings, test_labels):
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


def check_level_dicts(train_name, train_labels, test_name, test_labels):
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


def macro_f1(y_true, y_pred):
    """Macro-F1 over the labels with a positive in `y_true` or `y_pred`.

    A label that is negative everywhere in both has no defined F1 and is left
    out; 0.0 when no label is left.
    """
    from sklearn.metrics import f1_score

    active = np.flatnonzero(np.any(y_true > 0, axis=0) | np.any(y_pred > 0, axis=0))
    if active.size == 0:
        return 0.0
    return float(f1_score(y_true, y_pred, labels=active, average="macro", zero_division=0))


def multilabel_metrics(
    y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5
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
    (the area under its step-wise precision-recall curve). Rows of `y_true`
    that hold a negative value are unlabelled and left out.

    Args:
        y_true: multi-hot labels `(N, K)` of 0/1.
        y_score: scores or probabilities `(N, K)`; higher means more likely.
        threshold: a label is predicted when its score is `>= threshold`.
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
    """
    from sklearn.metrics import average_precision_score
    from sklearn.metrics import f1_score
    from sklearn.metrics import hamming_loss

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
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        threshold = math.nan
    if not math.isfinite(threshold):
        raise ValueError(f"`threshold` should be a finite float. Received: `threshold`={threshold}")
    labels, _, labelled = check_level_labels("y_true", y_true_array)
    scores = check_embeddings("y_score", y_score_array)
    if not labelled.any():
        raise ValueError("`y_true` should have at least one labelled row (no negative values).")
    labels, scores = labels[labelled], scores[labelled]
    predictions = (scores >= threshold).astype("int64")

    with_positive = np.flatnonzero(labels.sum(axis=0) > 0)
    precisions = [average_precision_score(labels[:, k], scores[:, k]) for k in with_positive]
    return {
        "micro_f1": float(f1_score(labels, predictions, average="micro", zero_division=0)),
        "macro_f1": macro_f1(labels, predictions),
        "map": float(np.mean(precisions)) if precisions else math.nan,
        "hamming_loss": float(hamming_loss(labels, predictions)),
    }
