"""A small convolutional image encoder."""

from collections.abc import Sequence

import keras


def image_encoder(input_shape: Sequence[int], embedding_dim: int = 128) -> keras.Sequential:
    """A small convolutional encoder for images with pixel values in 0-255.

    ```
    x / 255 -> [Conv2D(f, 3, relu) -> MaxPooling2D] for f in (32, 64, 128)
            -> GlobalAveragePooling2D -> Dense(embedding_dim)
    ```

    Args:
        input_shape: `(height, width, channels)` of one image.
        embedding_dim: positive int, the embedding size. Defaults to 128.

    Returns:
        A `keras.Sequential` mapping images `(B, *input_shape)` to
        embeddings `(B, embedding_dim)`.

    Example:

    >>> encoder = image_encoder((28, 28, 1), embedding_dim=32)
    >>> encoder.output_shape
    (None, 32)
    """
    layers = [keras.Input(input_shape), keras.layers.Rescaling(1.0 / 255)]
    for filters in (32, 64, 128):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(embedding_dim)]
    return keras.Sequential(layers, name="image_encoder")
