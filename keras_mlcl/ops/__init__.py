"""The SupCon kernel and the positive rules, in pure `keras.ops`."""

from keras_mlcl.ops.normalization import l2_normalize
from keras_mlcl.ops.positives import POSITIVE_RULES
from keras_mlcl.ops.positives import check_class_ids
from keras_mlcl.ops.positives import check_labels_for_rule
from keras_mlcl.ops.positives import pair_weights
from keras_mlcl.ops.positives import positive_weights
from keras_mlcl.ops.supcon import NORMALIZATIONS
from keras_mlcl.ops.supcon import supcon_from_labels
from keras_mlcl.ops.supcon import supcon_from_weights

__all__ = [
    "NORMALIZATIONS",
    "POSITIVE_RULES",
    "check_class_ids",
    "check_labels_for_rule",
    "l2_normalize",
    "pair_weights",
    "positive_weights",
    "supcon_from_labels",
    "supcon_from_weights",
]
