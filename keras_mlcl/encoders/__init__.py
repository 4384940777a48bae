"""Encoders: small default models that map an input to its embedding."""

from keras_mlcl.encoders.image import image_encoder
from keras_mlcl.encoders.text import backbone_encoder
from keras_mlcl.encoders.text import text_encoder
from keras_mlcl.encoders.vector import vector_encoder

__all__ = ["backbone_encoder", "image_encoder", "text_encoder", "vector_encoder"]
