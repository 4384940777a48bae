"""The metrics `compile(metrics=...)` gives a ContrastiveModel's classifiers.

A `ContrastiveModel`'s outputs are embeddings and logits, and its labels are
one array per level, so Keras' own `compile(metrics=...)` cannot pair them.
`ClassifierMetrics` applies the user's metrics to each classifier level:
`y_true` is the level's labels and `y_pred` its class probabilities
(softmax for int labels, sigmoid for multi-hot), over the labelled rows
only. Each metric is logged as `<level>_<metric name>` (e.g.
`fine_accuracy`). This relies on Keras' `CompileMetrics`, kept to this one
module (with the tracking switch Keras' own `compile` uses).
"""

import keras
from keras import ops
from keras.src.trainers.compile_utils import CompileMetrics
from keras.src.utils.tracking import DotNotTrackScope


def metrics_per_level(metrics, levels, argument_name="metrics"):
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


def set_compile_metrics(model, metrics):
    """Makes `metrics` (a `ClassifierMetrics`) the compiled metrics of `model`.

    Like Keras' `compile`, this works on a built model too: the metrics'
    variables are tracked by the metrics container, not as model state.
    """
    with DotNotTrackScope():
        model._compile_metrics = metrics


def classifier_outputs(labels, logits):
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


class ClassifierMetrics(CompileMetrics):
    """Keras' compiled metrics, per classifier level, over labelled rows.

    Args:
        metrics: `{level: list of metrics}`, each averaged over the
            labelled rows (from `metrics_per_level`), or None.
        weighted_metrics: the same, also weighted by the sample weights.
        levels: the classifier levels, in the model's order.
    """

    def __init__(self, metrics, weighted_metrics, levels):
        super().__init__(metrics, weighted_metrics, output_names=list(levels))

    def build(self, y_true, y_pred):
        super().build(y_true, y_pred)
        # With a single level Keras leaves metric names unprefixed; name them all.
        names = self._resolved_output_names or list(y_pred)
        for group in (self._flat_metrics, self._flat_weighted_metrics):
            for metrics, level in zip(group, names, strict=True):
                if metrics:
                    metrics.output_name = level

    def update_state(self, y_true, y_pred, sample_weight=None, labelled=None):
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
