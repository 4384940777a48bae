"""Models: ContrastiveModel and its export helpers."""

from keras_mlcl.models.contrastive_model import ContrastiveModel
from keras_mlcl.models.memory_bank import MemoryBank

__all__ = ["ContrastiveModel", "MemoryBank"]
