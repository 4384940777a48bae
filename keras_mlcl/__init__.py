"""keras-mlcl: multi-level supervised contrastive learning for Keras 3."""

from keras_mlcl import data
from keras_mlcl import distribution
from keras_mlcl import encoders
from keras_mlcl import evaluation
from keras_mlcl import layers
from keras_mlcl import losses
from keras_mlcl import models
from keras_mlcl import ops
from keras_mlcl import search
from keras_mlcl.layers import MultiProjectionHead
from keras_mlcl.layers import ProjectionHead
from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import MultiSupCon
from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from keras_mlcl.models import ContrastiveModel
from keras_mlcl.models import MemoryBank
from keras_mlcl.search import EmbeddingIndex
from keras_mlcl.version import __version__

__all__ = [
    "ContrastiveModel",
    "EmbeddingIndex",
    "HiMulCon",
    "MemoryBank",
    "MultiLevelSupCon",
    "MultiProjectionHead",
    "MultiSupCon",
    "ProjectionHead",
    "SimDisLoss",
    "SupCon",
    "__version__",
    "data",
    "distribution",
    "encoders",
    "evaluation",
    "layers",
    "losses",
    "models",
    "ops",
    "search",
]
