"""Default encoders and views for the three kinds of input the command handles."""

import json
import os

import keras
import numpy as np

from keras_mlcl.data.text import TextPreprocessor
from keras_mlcl.data.text import text_encoder
from keras_mlcl.data.views import FeatureDropout
from keras_mlcl.data.views import TokenDropout
from keras_mlcl.data.views import image_views

TEXT_CONFIG = "text_preprocessor.json"


def input_kind(x):
    """`"image"` for `(N, H, W[, C])`, `"text"` for strings, `"vector"` for `(N, F)`."""
    x = np.asarray(x)
    if x.dtype.kind in "USO":
        return "text"
    if x.ndim in (3, 4):
        return "image"
    if x.ndim == 2:
        return "vector"
    raise ValueError(
        "`x` should be images (N, H, W) or (N, H, W, C), feature vectors (N, F) or "
        f"strings (N,). Received shape {x.shape}, dtype {x.dtype}"
    )


class Preprocessing:
    """Host-side input preparation that a saved run can rebuild from its record.

    Images gain a channel axis and become float32 (0-255 kept; the encoder
    rescales); vectors become float32; texts become token ids with the
    run's vocabulary.
    """

    def __init__(self, kind, text=None):
        self.kind = kind
        self.text = text

    def __call__(self, x):
        x = np.asarray(x)
        if self.kind == "text":
            return self.text(list(x))
        if self.kind == "image" and x.ndim == 3:
            x = x[..., None]
        return x.astype("float32")

    def record(self, folder):
        """A JSON-able description; a text vocabulary is written into `folder`."""
        if self.kind != "text":
            return {"kind": self.kind}
        with open(os.path.join(folder, TEXT_CONFIG), "w", encoding="utf-8") as f:
            json.dump(self.text.get_config(), f)
        return {"kind": "text", "text": TEXT_CONFIG}

    @classmethod
    def from_record(cls, record, folder):
        """Rebuilds the preprocessing that `record` wrote into `folder`."""
        if record["kind"] != "text":
            return cls(record["kind"])
        with open(os.path.join(folder, record["text"]), encoding="utf-8") as f:
            return cls("text", TextPreprocessor.from_config(json.load(f)))


def image_encoder(input_shape, embedding_dim=128):
    """A small convolutional encoder for images with pixel values in 0-255."""
    layers = [keras.Input(input_shape), keras.layers.Rescaling(1.0 / 255)]
    for filters in (32, 64, 128):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(embedding_dim)]
    return keras.Sequential(layers, name="image_encoder")


def vector_encoder(x_train, embedding_dim=128, width=256):
    """An MLP for feature vectors, standardised by a `Normalization` layer fit on `x_train`."""
    normalization = keras.layers.Normalization()
    normalization.adapt(x_train)
    return keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            normalization,
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(embedding_dim),
        ],
        name="vector_encoder",
    )


def build_encoder(x_train, embedding_dim=128):
    """The default encoder, views and preprocessing for a training input array.

    Args:
        x_train: training inputs (images, vectors or strings).
        embedding_dim: size of the encoder embedding.

    Returns:
        `(preprocessing, encoder, augment)`.
    """
    kind = input_kind(x_train)
    if kind == "text":
        text, encoder = text_encoder(list(np.asarray(x_train)), hidden_dim=embedding_dim)
        augment = TokenDropout(0.1, padding_id=text.padding_id)
        return Preprocessing("text", text), encoder, augment
    preprocessing = Preprocessing(kind)
    x = preprocessing(x_train)
    if kind == "image":
        height, width = x.shape[1:3]
        augment = image_views(height, width, crop_padding=2, flip=True, value_range=(0.0, 255.0))
        return preprocessing, image_encoder(x.shape[1:], embedding_dim), augment
    return preprocessing, vector_encoder(x, embedding_dim), FeatureDropout(0.2)
