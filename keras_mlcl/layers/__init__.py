"""Projection heads."""

from keras_mlcl.layers.multi_projection_head import MultiProjectionHead
from keras_mlcl.layers.projection_head import ProjectionHead

__all__ = ["MultiProjectionHead", "ProjectionHead"]
