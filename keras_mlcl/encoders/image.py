"""A small convolutional image encoder."""

from collections.abc import Sequence

import keras

# The filters of the convolution blocks; each block halves the height and width.
_FILTERS = (32, 64, 128)


def check_image_shape(input_shape: Sequence[int]) -> None:
    """Raises a `ValueError` unless `input_shape` is an image shape `image_encoder` can take.

    Each of the encoder's 3 blocks halves the height and width, so both should be at least 8.

    Args:
        input_shape: `(height, width, channels)` of one image.

    Example:

    >>> check_image_shape((28, 28, 1))
    """
    smallest = 2 ** len(_FILTERS)
    if len(input_shape) != 3 or min(input_shape[:2]) < smallest or input_shape[2] < 1:
        raise ValueError(
            f"`input_shape` should be (height, width, channels) with height and width of at "
            f"least {smallest} (the encoder halves them {len(_FILTERS)} times). "
            f"Received: `input_shape`={tuple(input_shape)}"
        )


def image_encoder(input_shape: Sequence[int], embedding_dim: int = 128) -> keras.Sequential:
    """A small convolutional encoder for images with pixel values in 0-255.

    ```
    x / 255 -> [Conv2D(f, 3, relu) -> MaxPooling2D] for f in (32, 64, 128)
            -> GlobalAveragePooling2D -> Dense(embedding_dim)
    ```

    Args:
        input_shape: `(height, width, channels)` of one image; height and width at least 8.
        embedding_dim: positive int, the embedding size. Defaults to 128.

    Returns:
        A `keras.Sequential` mapping images `(B, *input_shape)` to
        embeddings `(B, embedding_dim)`.

    Example:

    >>> encoder = image_encoder((28, 28, 1), embedding_dim=32)
    >>> encoder.output_shape
    (None, 32)
    """
    check_image_shape(input_shape)
    layers = [keras.Input(input_shape), keras.layers.Rescaling(1.0 / 255)]
    for filters in _FILTERS:
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(embedding_dim)]
    return keras.Sequential(layers, name="image_encoder")
