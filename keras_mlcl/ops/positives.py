"""Positive rules: from the labels of one head to its positive-weight matrix."""

from collections.abc import Callable
from collections.abc import Sequence

import numpy as np
from keras import ops

from keras_mlcl.backend import as_tensor
from keras_mlcl.backend import concrete_numpy
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice

POSITIVE_RULES = ("equal", "any", "exact", "jaccard", "simdis")

PairWeights = Callable[[list[Tensor], list[Tensor]], Tensor]
"""A positive rule as a function: `rule(anchor_labels, candidate_labels)` -> `(T, M, N)` weights.

Its arguments are one label tensor per head, for a block of `M` anchors and for
all `N` candidates; it returns the positive weights of each term (head, or
weight set over shared embeddings)."""


def check_class_ids(labels: Tensor, name: str = "labels") -> None:
    """Raises a `ValueError` if float class ids are not all whole numbers.

    Class ids may come as floats (`1.0`, `2.0`, as from a CSV); a `1.5` would
    silently be a class of its own and a NaN an unlabelled sample. The values
    are checked when they are concrete (eager execution); under tracing the
    check is skipped.

    Args:
        labels: a tensor of class ids, of any shape.
        name: the argument name used in the error message.
    """
    if "float" not in str(labels.dtype):
        return
    values = concrete_numpy(labels)
    if values is None:
        return
    bad = np.argwhere(~np.isfinite(values) | (values != np.round(values)))
    if len(bad):
        index = ", ".join(str(int(i)) for i in bad[0])
        value = str(values[tuple(bad[0])])
        raise ValueError(
            f"`{name}` should hold integer class ids (-1 for unlabelled); float ids "
            f"must be whole numbers. Received: `{name}[{index}]`={value} "
            f"({len(bad)} non-integer value{'s' if len(bad) > 1 else ''} in all)"
        )


def check_labels_for_rule(labels: Tensor, rule: str, name: str = "labels") -> Tensor:
    """Checks the rank, dtype and class ids of `labels` for `rule` and returns them.

    `"equal"` takes integer class ids `(N,)` (or `(N, 1)`), float ids when
    they are whole numbers (see `check_class_ids`); every other rule takes
    multi-hot rows `(N, K)`.

    Args:
        labels: a tensor of labels for one head.
        rule: one of `POSITIVE_RULES`.
        name: the argument name used in error messages.

    Returns:
        `labels` as a tensor, `(N,)` for `"equal"`, `(N, K)` otherwise.
    """
    check_choice("positives", rule, POSITIVE_RULES)
    labels = as_tensor(labels)
    shape = tuple(labels.shape)
    dtype = str(labels.dtype)
    if rule == "equal":
        if len(shape) == 2 and shape[1] == 1:
            labels = ops.squeeze(labels, axis=1)
        elif len(shape) != 1:
            raise ValueError(
                f"`{name}` for positives='equal' should be integer class ids "
                f"of shape (N,). Received: `{name}.shape`={shape}. For "
                "multi-hot labels use positives='any', 'exact', 'jaccard' or "
                "'simdis'."
            )
        if not ("int" in dtype or "float" in dtype):
            raise ValueError(
                f"`{name}` for positives='equal' should hold integer class ids "
                f"(-1 for unlabelled). Received: `{name}.dtype`={dtype}"
            )
        check_class_ids(labels, name)
        return labels
    if len(shape) != 2:
        raise ValueError(
            f"`{name}` for positives={rule!r} should be multi-hot rows of "
            f"shape (N, K). Received: `{name}.shape`={shape}. For integer "
            "class ids use positives='equal'."
        )
    if not ("int" in dtype or "float" in dtype or dtype == "bool"):
        raise ValueError(
            f"`{name}` for positives={rule!r} should be multi-hot (bool, int "
            f"or float 0/1). Received: `{name}.dtype`={dtype}"
        )
    return labels


def positive_weights(labels: Tensor, rule: str = "equal", name: str = "labels") -> Tensor:
    """The `(N, N)` positive-weight matrix of one head's labels.

    | rule | labels | w_ij |
    |---|---|---|
    | `"equal"` | class ids `(N,)` | 1 if y_i = y_j |
    | `"any"` | multi-hot `(N, K)` | 1 if y_i and y_j share a label |
    | `"exact"` | multi-hot | 1 if y_i = y_j, non-empty |
    | `"jaccard"` | multi-hot | `|y_i & y_j| / |y_i | y_j|` |
    | `"simdis"` | multi-hot | `K^s K^d` with `K^s = |S & T| / |S|`, `K^d = 1 / (1 + |T - S|)` |

    where `S = y_i` is the anchor's label set and `T = y_j` the sample's.

    A negative class id (e.g. -1) marks a sample unlabelled at this level;
    for multi-hot rules a row with any negative entry is unlabelled. Such
    samples and samples with an empty label set are never positives nor
    anchors (they stay in the denominators of the kernel). The diagonal is
    left in; `supcon_from_weights` ignores it.

    Args:
        labels: class ids `(N,)` for `"equal"`, multi-hot `(N, K)` otherwise.
        rule: one of `"equal"`, `"any"`, `"exact"`, `"jaccard"`, `"simdis"`.
        name: the argument name used in error messages. Defaults to
            `"labels"`.

    Returns:
        A float32 tensor of shape `(N, N)`.

    Example:

    >>> labels = keras.ops.convert_to_tensor([[1, 1, 0], [1, 0, 0]])
    >>> keras.ops.convert_to_numpy(positive_weights(labels, "simdis")).tolist()
    [[1.0, 0.5], [0.5, 1.0]]
    """
    labels = check_labels_for_rule(labels, rule, name)
    return pair_weights(labels, labels, rule)


BINARY_RULES = ("equal", "any", "exact")


def pair_weights(anchor_labels: Tensor, candidate_labels: Tensor, rule: str = "equal") -> Tensor:
    """The `(M, N)` positive weights of `M` anchors against `N` candidates.

    The rectangular form of `positive_weights` (same rules, same handling
    of unlabelled and empty rows), for labels already checked with
    `check_labels_for_rule`. The blockwise kernel calls it on one block of
    anchor rows at a time, so no `N x N` weight matrix is ever held.

    Args:
        anchor_labels: class ids `(M,)` for `"equal"`, multi-hot `(M, K)`
            otherwise.
        candidate_labels: the same kind, `(N,)` or `(N, K)`.
        rule: one of `POSITIVE_RULES`.

    Returns:
        A float32 tensor of shape `(M, N)`.

    Example:

    >>> weights = pair_weights(keras.ops.convert_to_tensor([0, 1]),
    ...                        keras.ops.convert_to_tensor([1, 1, 0]))
    >>> keras.ops.convert_to_numpy(weights).tolist()
    [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    if rule == "equal":
        # One comparison: an unlabelled anchor (-1) matches no candidate, an
        # unlabelled candidate (-2) matches no anchor, class ids are >= 0.
        anchors = ops.where(anchor_labels >= 0, anchor_labels, -1)
        candidates = ops.where(candidate_labels >= 0, candidate_labels, -2)
        return ops.cast(ops.equal(anchors[:, None], candidates[None, :]), "float32")

    anchors, anchor_size = _multi_hot(anchor_labels)
    candidates, candidate_size = _multi_hot(candidate_labels)
    intersection = ops.matmul(anchors, ops.transpose(candidates))
    anchor_size = anchor_size[:, None]
    candidate_size = candidate_size[None, :]
    shares = intersection > 0
    if rule == "any":
        return ops.cast(shares, "float32")
    if rule == "exact":
        same = ops.logical_and(
            ops.equal(intersection, anchor_size), ops.equal(intersection, candidate_size)
        )
        return ops.cast(ops.logical_and(same, shares), "float32")
    if rule == "jaccard":
        union = anchor_size + candidate_size - intersection
        return ops.where(shares, intersection / ops.maximum(union, 1.0), 0.0)
    # simdis: K^s = |S & T| / |S|, K^d = 1 / (1 + |T - S|)
    similarity = intersection / ops.maximum(anchor_size, 1.0)
    dissimilarity = 1.0 / (1.0 + candidate_size - intersection)
    return ops.where(shares, similarity * dissimilarity, 0.0)


def _multi_hot(labels: Tensor) -> Tensor:
    """Float32 multi-hot rows, unlabelled rows (any negative entry) zeroed, and their sizes."""
    y = ops.cast(labels, "float32")
    y = ops.where(ops.all(y >= 0, axis=-1, keepdims=True), y, 0.0)
    return y, ops.sum(y, axis=-1)


def rule_weights(rules: Sequence[str], min_weight: float = 0.0) -> PairWeights:
    """The named positive rules of each head as one `PairWeights` function.

    Args:
        rules: one rule of `positive_weights` per head.
        min_weight: weights below it become 0. Defaults to 0.

    Returns:
        `weights(anchor_labels, candidate_labels) -> (H, M, N)` float32.

    Example:

    >>> weights = rule_weights(["equal"])
    >>> labels = keras.ops.convert_to_tensor([0, 0, 1])
    >>> keras.ops.convert_to_numpy(weights([labels[:1]], [labels])).tolist()
    [[[1.0, 1.0, 0.0]]]
    """
    rules = list(rules)

    def weights(anchor_labels: list[Tensor], candidate_labels: list[Tensor]) -> Tensor:
        blocks = []
        for own, other, rule in zip(anchor_labels, candidate_labels, rules, strict=True):
            w = pair_weights(own, other, rule)
            if min_weight > 0:
                w = ops.where(w >= min_weight, w, 0.0)
            blocks.append(w)
        return ops.stack(blocks)

    return weights
