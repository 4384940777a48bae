"""Models: ContrastiveModel and its export helpers."""

from keras_mlcl.models.contrastive_model import ContrastiveModel

__all__ = ["ContrastiveModel"]
