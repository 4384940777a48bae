"""A loss written for the tests as a user would write one: its rule and nothing else.

`OrdinalSupCon` pulls samples together by how close their ordinal labels are
(an age, a rating): `w_ij = 1 / (1 + |y_i - y_j|)` for labelled pairs (-1 is
unlabelled). It defines no hook for the memory bank or for data parallelism:
both wrap it unchanged (tests/losses/test_new_loss.py, and the torch
process-group checks of tests/distribution/multi_replica_checks.py).
"""

import keras
from keras import ops

from keras_mlcl.losses import ContrastiveLoss


@keras.saving.register_keras_serializable(package="keras_mlcl_tests")
class OrdinalSupCon(ContrastiveLoss):
    """SupCon with positives weighted by the closeness of ordinal labels."""

    def __init__(self, temperature=0.1, name="ordinal_supcon", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature

    def check_labels(self, labels, head, name):
        if len(labels.shape) != 1:
            raise ValueError(f"`{name}` should be ordinal labels (N,). Received {labels.shape}")
        return ops.cast(labels, "float32")

    def pair_weights(self, anchor_labels, candidate_labels):
        own, other = anchor_labels[0], candidate_labels[0]
        labelled = ops.logical_and(own[:, None] >= 0, other[None, :] >= 0)
        weights = 1.0 / (1.0 + ops.abs(own[:, None] - other[None, :]))
        return ops.where(labelled, weights, 0.0)[None]

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
