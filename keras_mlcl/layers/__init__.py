"""Layers: projection heads and the augmentation layers that make contrastive views.

`ContrastiveModel` calls its `augment` layer once per view, with
`training=True`, on the whole batch inside the (jitted) train step. Every
augmentation layer here therefore works in `keras.ops` / `keras.random` on
batches on every backend and under XLA, draws fresh randomness from a
`keras.random.SeedGenerator` on every call, keeps the shape (and, for token
ids, the dtype) of its input, is the identity with `training=False`, and
round-trips through `get_config` and `.keras` files. For feature vectors use
Keras' own `keras.layers.GaussianNoise` and `keras.layers.Dropout`.
"""

from keras_mlcl.layers.image_views import image_views
from keras_mlcl.layers.multi_projection_head import MultiProjectionHead
from keras_mlcl.layers.projection_head import ProjectionHead
from keras_mlcl.layers.random_grayscale import RandomGrayscale
from keras_mlcl.layers.token_dropout import TokenDropout

__all__ = [
    "MultiProjectionHead",
    "ProjectionHead",
    "RandomGrayscale",
    "TokenDropout",
    "image_views",
]
