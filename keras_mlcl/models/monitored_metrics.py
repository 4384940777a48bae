"""Training metrics that Keras' monitoring callbacks can read a direction from.

`ModelCheckpoint` and `EarlyStopping` with the default `mode="auto"` only
look for a metric's direction inside Keras' own metric containers
(`compile_utils.MetricsList`), so metrics a model updates in `compute_loss`
(`fine_loss`, `fine_acc`, ...) would need `mode=` spelled out. Grouping them
in such a container, with a direction on each, lets
`EarlyStopping(monitor="fine_loss")` work as it does for `"loss"`. This
relies on a Keras-internal class, kept to this one module.
"""

from typing import Any

import keras

# keras.src: the monitoring callbacks read a metric's direction only from Keras'
# own metric containers, and `MetricsList` has no public counterpart.
from keras.src.trainers.compile_utils import MetricsList


def loss_tracker(name: str) -> keras.metrics.Mean:
    """A `keras.metrics.Mean` for a loss value, marked lower-is-better."""
    metric = keras.metrics.Mean(name=name)
    metric._direction = "down"
    return metric


def accuracy_tracker(name: str) -> keras.metrics.Mean:
    """A `keras.metrics.Mean` of per-sample correctness, higher-is-better."""
    metric = keras.metrics.Mean(name=name)
    metric._direction = "up"
    return metric


class MonitoredMetrics(MetricsList):
    """A group of metrics whose results are reported by name, one each."""

    def __init__(self, metrics: list[keras.metrics.Metric], name: str = "training_metrics") -> None:
        super().__init__(metrics, name=name)

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Update the grouped metrics one by one.")

    def result(self) -> dict[str, Any]:
        return self.get_result()
