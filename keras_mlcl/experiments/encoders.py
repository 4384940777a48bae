"""The command's default encoder, views and preprocessing for each kind of input."""

import json
import os
import random
from typing import Any

import keras
import numpy as np

from keras_mlcl.data.text_preprocessor import TextPreprocessor
from keras_mlcl.encoders import image_encoder
from keras_mlcl.encoders import text_encoder
from keras_mlcl.encoders import vector_encoder
from keras_mlcl.encoders.image import check_image_shape
from keras_mlcl.layers import TokenDropout
from keras_mlcl.layers import image_views

TEXT_CONFIG = "text_preprocessor.json"
# The MLP's hidden width for feature vectors; its embedding is half as wide (512-256). Chosen
# over 256-128 on validation splits (docs/benchmarks.md, "The encoder's width").
DEFAULT_ENCODER_WIDTH = 512
EMBEDDING_DIM = 128


def input_kind(x: Any) -> str:
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


def check_images(x: Any) -> None:
    """Raises a `ValueError` when `x` holds images too small for the image encoder.

    Args:
        x: the inputs; anything but images `(N, H, W[, C])` passes.
    """
    shape = np.shape(x)
    if input_kind(x) != "image":
        return
    height, width = shape[1:3]
    try:
        check_image_shape((height, width, shape[3] if len(shape) == 4 else 1))
    except ValueError as error:
        raise ValueError(f"`x` holds {height}x{width} images: {error}") from None


class Preprocessing:
    """Host-side input preparation that a saved run can rebuild from its record.

    Images gain a channel axis and become float32 (0-255 kept; the encoder
    rescales); vectors become float32; texts become token ids with the
    run's vocabulary.
    """

    def __init__(self, kind: str, text: TextPreprocessor | None = None) -> None:
        if (kind == "text") != (text is not None):
            raise ValueError(
                "`text` (a `TextPreprocessor`) should be given with `kind='text'` and only "
                f"then. Received: `kind`={kind!r} and `text`={text!r}"
            )
        self.kind = kind
        self.text = text

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if self.text is not None:
            return self.text(list(x))
        if self.kind == "image" and x.ndim == 3:
            x = x[..., None]
        return x.astype("float32")

    def record(self, folder: str) -> dict[str, str]:
        """A JSON-able description; a text vocabulary is written into `folder`."""
        if self.text is None:
            return {"kind": self.kind}
        with open(os.path.join(folder, TEXT_CONFIG), "w", encoding="utf-8") as f:
            json.dump(self.text.get_config(), f)
        return {"kind": "text", "text": TEXT_CONFIG}

    @classmethod
    def from_record(cls, record: dict[str, str], folder: str) -> "Preprocessing":
        """Rebuilds the preprocessing that `record` wrote into `folder`."""
        if record["kind"] != "text":
            return cls(record["kind"])
        with open(os.path.join(folder, record["text"]), encoding="utf-8") as f:
            return cls("text", TextPreprocessor.from_config(json.load(f)))


def build_encoder(
    x_train: Any, encoder_width: int = DEFAULT_ENCODER_WIDTH
) -> tuple[Preprocessing, keras.Model, keras.layers.Layer]:
    """The default encoder, views and preprocessing for a training input array.

    Views: images are shifted by up to 2 pixels and flipped (`image_views`);
    texts lose 10% of their tokens (`TokenDropout`); feature vectors go
    through `keras.layers.Dropout(0.2)`, which zeroes 20% of the features
    and scales the kept ones by `1 / (1 - 0.2)`, so a view equals its input
    in expectation. The seeds come from Python's `random` (which
    `keras.utils.set_random_seed` seeds), so the views are reproducible and
    their state is saved with the model on every backend (an unseeded
    `Dropout` on torch would draw from torch's global generator instead).

    Args:
        x_train: training inputs (images, vectors or strings).
        encoder_width: feature vectors: the MLP's hidden width; the embedding, its last
            layer, is half as wide. Images and texts get a 128-d embedding and take the
            default only.

    Returns:
        `(preprocessing, encoder, augment)`.
    """
    kind = input_kind(x_train)
    if kind != "vector" and encoder_width != DEFAULT_ENCODER_WIDTH:
        raise ValueError(
            f"`encoder_width` applies to feature vectors only; these inputs are {kind}s. "
            f"Received: `encoder_width`={encoder_width!r}"
        )
    if not isinstance(encoder_width, int) or encoder_width < 2:
        raise ValueError(
            f"`encoder_width` should be an int >= 2. Received: `encoder_width`={encoder_width!r}"
        )
    if kind == "text":
        text, encoder = text_encoder(list(np.asarray(x_train)), hidden_dim=EMBEDDING_DIM)
        augment = TokenDropout(0.1, padding_id=text.padding_id)
        return Preprocessing("text", text), encoder, augment
    preprocessing = Preprocessing(kind)
    x = preprocessing(x_train)
    if kind == "image":
        check_images(x_train)
        height, width = x.shape[1:3]
        augment = image_views(height, width, crop_padding=2, flip=True, value_range=(0.0, 255.0))
        return preprocessing, image_encoder(x.shape[1:], EMBEDDING_DIM), augment
    augment = keras.layers.Dropout(0.2, seed=random.randint(0, 2**31 - 1))
    encoder = vector_encoder(x, embedding_dim=encoder_width // 2, width=encoder_width)
    return preprocessing, encoder, augment
