"""Contrastive losses: thin classes over the SupCon kernel and a positive rule."""

from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.contrastive_loss import reduce_anchor_losses
from keras_mlcl.losses.himulcon import HiMulCon
from keras_mlcl.losses.multi_level_supcon import MultiLevelSupCon
from keras_mlcl.losses.multi_supcon import MultiSupCon
from keras_mlcl.losses.simdis import SimDisLoss
from keras_mlcl.losses.supcon import SupCon

__all__ = [
    "ContrastiveLoss",
    "HiMulCon",
    "MultiLevelSupCon",
    "MultiSupCon",
    "SimDisLoss",
    "SupCon",
    "reduce_anchor_losses",
]
