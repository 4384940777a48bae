"""A ContrastiveModel's optional classifiers: their cross-entropy terms and their metrics.

Keras' own compile path (`compile(loss=..., metrics=...)`, its `CompileLoss`
and `CompileMetrics`) cannot serve here as it is: it pairs each output with a
label of the same batch, while in training the logits hold every view
(`views x N` rows) of `N` labelled samples, the outputs also hold embeddings
that no label pairs with, and unlabelled rows (-1, or a multi-hot row with a
negative entry) must count in neither the mean nor the metrics. So the
cross-entropy is computed here (`classification_terms`), and
`ClassifierMetrics` applies the user's `compile(metrics=...)` to each level:
`y_true` is the level's labels and `y_pred` its class probabilities (softmax
for int labels, sigmoid for multi-hot), over the labelled rows only, each
logged as `<level>_<metric name>` (e.g. `fine_accuracy`).
"""

from typing import Any

import keras
from keras import ops

# keras.src: Keras has no public container that applies `compile`-style metric
# lists per output (`CompileMetrics`), nor a public way to set a model's compiled
# metrics without tracking them as model state (`DotNotTrackScope`).
from keras.src.trainers.compile_utils import CompileMetrics
from keras.src.utils.tracking import DotNotTrackScope

from keras_mlcl.utils.types import Tensor


def metrics_per_level(
    metrics: Any, levels: list[str], argument_name: str = "metrics"
) -> dict[str, list[Any]] | None:
    """`{level: [metrics]}` from what `compile` received.

    Args:
        metrics: a list of metrics (applied to every level), a dict
            `{level: metric or list of metrics}`, or None.
        levels: the classifier levels.
        argument_name: the `compile` argument, for error messages.

    Returns:
        A dict `{level: list of metrics}`, or None for `metrics=None`.
    """
    if metrics is None:
        return None
    if isinstance(metrics, dict):
        unknown = sorted(set(metrics) - set(levels))
        if unknown:
            raise ValueError(
                f"`{argument_name}` has entries {unknown} that are no classifier level. "
                f"Expected keys among {list(levels)}. Received: `{argument_name}`={metrics!r}"
            )
        return {
            level: list(m) if isinstance(m, (list, tuple)) else [m] for level, m in metrics.items()
        }
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    if len(levels) > 1 and any(isinstance(m, keras.metrics.Metric) for m in metrics):
        raise ValueError(
            f"A metric object cannot be shared by the classifier levels {list(levels)}: "
            f"pass `{argument_name}` as a dict {{level: metrics}}, or metric names. "
            f"Received: `{argument_name}`={metrics!r}"
        )
    return {level: list(metrics) for level in levels}


def set_compile_metrics(model: keras.Model, metrics: "ClassifierMetrics") -> None:
    """Makes `metrics` (a `ClassifierMetrics`) the compiled metrics of `model`.

    Like Keras' `compile`, this works on a built model too: the metrics'
    variables are tracked by the metrics container, not as model state.
    """
    with DotNotTrackScope():
        model._compile_metrics = metrics


def classifier_outputs(labels: Tensor, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`(labels, probabilities, labelled)` for the metrics of one level.

    Args:
        labels: `(N,)` int class ids (negative: unlabelled) or `(N, K)`
            multi-hot labels (rows with a negative entry: unlabelled).
        logits: `(N, C)` classifier logits.

    Returns:
        The labels with unlabelled entries set to 0, the class
        probabilities `(N, C)` and the `(N,)` 0/1 weights of labelled rows.
    """
    labels = ops.convert_to_tensor(labels)
    logits = ops.cast(logits, "float32")
    if len(labels.shape) == 2 and labels.shape[1] != 1:
        labelled = ops.cast(ops.all(labels >= 0, axis=-1), "float32")
        return ops.maximum(labels, 0), ops.sigmoid(logits), labelled
    labels = ops.reshape(labels, (-1,))
    labelled = ops.cast(labels >= 0, "float32")
    return ops.maximum(labels, 0), ops.softmax(logits, axis=-1), labelled


def classification_terms(
    labels: Tensor, logits: Tensor, sample_weight: Tensor | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Mean cross-entropy and the accuracy of each labelled sample.

    Int labels `(N,)`: softmax cross-entropy and top-1 correctness; multi-hot
    `(N, K)`: sigmoid cross-entropy and the fraction of labels right. Rows
    marked unlabelled (negative ids) count in neither. With `sample_weight`,
    the cross-entropy is the weighted sum over the labelled rows divided by
    their number (as the contrastive loss reduces its anchors).

    Args:
        labels: `(N,)` int class ids or `(N, K)` multi-hot labels.
        logits: `(N, C)` classifier logits.
        sample_weight: optional `(N,)` weights. Defaults to None (all 1).

    Returns:
        `(cross_entropy, (correct, labelled))`: a scalar, the `(N,)`
        correctness in [0, 1] and the `(N,)` 0/1 weights of labelled rows.
    """
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[1] != 1:
        targets = ops.cast(labels, "float32")
        labelled = ops.cast(ops.all(targets >= 0, axis=-1), "float32")
        targets = ops.maximum(targets, 0.0)
        per_sample = keras.losses.binary_crossentropy(targets, logits, from_logits=True)
        correct = ops.mean(
            ops.cast(ops.equal(ops.cast(logits > 0, "float32"), targets), "float32"), -1
        )
    else:
        labels = ops.reshape(labels, (-1,))
        labelled = ops.cast(labels >= 0, "float32")
        safe = ops.cast(ops.maximum(labels, 0), "int32")
        per_sample = keras.losses.sparse_categorical_crossentropy(safe, logits, from_logits=True)
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), safe), "float32")
    weighted = labelled
    if sample_weight is not None:
        weighted = labelled * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    ce = ops.divide_no_nan(ops.sum(per_sample * weighted), ops.sum(labelled))
    return ce, (correct * labelled, labelled)


class ClassifierMetrics(CompileMetrics):
    """Keras' compiled metrics, per classifier level, over labelled rows.

    Args:
        metrics: `{level: list of metrics}`, each averaged over the
            labelled rows (from `metrics_per_level`), or None.
        weighted_metrics: the same, also weighted by the sample weights.
        levels: the classifier levels, in the model's order.
    """

    def __init__(self, metrics: Any, weighted_metrics: Any, levels: list[str]) -> None:
        super().__init__(metrics, weighted_metrics, output_names=list(levels))

    def build(self, y_true: Any, y_pred: Any) -> None:
        super().build(y_true, y_pred)
        # With a single level Keras leaves metric names unprefixed; name them all.
        names = self._resolved_output_names or list(y_pred)
        for group in (self._flat_metrics, self._flat_weighted_metrics):
            for metrics, level in zip(group, names, strict=True):
                if metrics:
                    metrics.output_name = level

    def update_state(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None, labelled: Any = None
    ) -> None:
        """Updates the metrics of every level.

        Args:
            y_true: `{level: labels}`.
            y_pred: `{level: probabilities}`.
            sample_weight: optional `{level: (N,) weights}`, for the
                weighted metrics.
            labelled: `{level: (N,) 0/1 weights of labelled rows}`.
        """
        if not self.built:
            self.build(y_true, y_pred)
        levels = self._resolved_output_names or list(y_pred)
        for index, level in enumerate(levels):
            metrics = self._flat_metrics[index]
            weighted = self._flat_weighted_metrics[index]
            if metrics:
                metrics.update_state(y_true[level], y_pred[level], labelled[level])
            if weighted:
                weights = labelled[level]
                if sample_weight is not None:
                    weights = weights * ops.cast(sample_weight[level], weights.dtype)
                weighted.update_state(y_true[level], y_pred[level], weights)


def check_compile_metrics(metrics: Any, weighted_metrics: Any, levels: list[str]) -> Any:
    """The `ClassifierMetrics` of `compile(metrics=..., weighted_metrics=...)`, or None.

    Raises a `ValueError` for metrics given to a model without classifiers.
    """
    if (metrics is not None or weighted_metrics is not None) and not levels:
        raise ValueError(
            "`metrics` and `weighted_metrics` apply to the classifier outputs, and "
            "this model has no `classifier`: build it with `classifier={level: "
            f"num_classes}}` and `ce_weight` > 0. Received: `metrics`={metrics!r}, "
            f"`weighted_metrics`={weighted_metrics!r}"
        )
    per_level = metrics_per_level(metrics, levels)
    weighted_per_level = metrics_per_level(weighted_metrics, levels, "weighted_metrics")
    if per_level is None and weighted_per_level is None:
        return None
    return ClassifierMetrics(per_level, weighted_per_level, levels)


def update_classifier_metrics(
    metrics: ClassifierMetrics,
    labels: dict[str, Tensor],
    y_pred: dict[str, Tensor],
    sample_weight: Any = None,
) -> None:
    """Updates `metrics` with each level's labels and logits (every view in training).

    Args:
        metrics: the model's `ClassifierMetrics`.
        labels: `{level: (N, ...) labels}`.
        y_pred: the model's outputs, with `<level>_logits` of `views x N` rows.
        sample_weight: optional weights, one per sample (or Keras' dict of them).
    """
    targets, probabilities, labelled, weights = {}, {}, {}, {}
    for level, level_labels in labels.items():
        logits = y_pred[f"{level}_logits"]
        # In training the logits hold every view: row i is sample i % N.
        rows = ops.arange(ops.shape(logits)[0]) % ops.shape(level_labels)[0]
        targets[level], probabilities[level], labelled[level] = classifier_outputs(
            ops.take(level_labels, rows, axis=0), logits
        )
        if sample_weight is not None:
            flat = ops.reshape(keras.tree.flatten(sample_weight)[0], (-1,))
            weights[level] = ops.take(flat, rows, axis=0)
    metrics.update_state(targets, probabilities, weights or None, labelled=labelled)
