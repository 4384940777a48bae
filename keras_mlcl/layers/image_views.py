"""`image_views`: the image augmentation of a contrastive view, from Keras layers."""

import keras

from keras_mlcl.layers.layer_utils import check_unit_float
from keras_mlcl.layers.random_grayscale import RandomGrayscale
from keras_mlcl.utils.validation import check_positive_int


def image_views(
    height: int,
    width: int,
    crop_padding: int = 4,
    flip: bool = True,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    grayscale: float = 0.0,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int | None = None,
    name: str = "image_views",
) -> keras.Sequential:
    """Builds the image augmentation of a contrastive view from Keras layers.

    The pipeline, in order (a stage with a zero setting is left out):

    ```
    x -> RandomTranslation   integer shift by d_y, d_x ~ U{-p, ..., p}, zero fill
      -> RandomFlip          left-right, with probability 1/2
      -> RandomBrightness    x + U(-b, b) * (high - low)
      -> RandomContrast      mean + (x - mean) * U(1 - c, 1 + c)
      -> RandomSaturation    saturation strength s: Keras factor in [0.5 - s/2, 0.5 + s/2]
      -> RandomHue           hue shift of strength h
      -> RandomGrayscale     grey with probability g
    ```

    where `p = crop_padding`, `b = brightness`, `c = contrast`, and
    `(low, high) = value_range`. The shift is "pad by `p` pixels, then crop
    `height` x `width` at a random offset", the standard CIFAR augmentation:
    `RandomTranslation` with nearest interpolation and factor
    `(p + 0.5) / size` moves each image by a whole number of pixels, each of
    the `2p + 1` offsets equally likely. (Keras' `RandomCrop` is not used: at
    inference it resizes instead of being the identity.)

    Every stage is a core Keras preprocessing layer, checked to run per image
    on a float32 batch inside a jitted train step on TensorFlow (XLA), JAX and
    PyTorch, to give a new draw on every call, and to be the identity with
    `training=False`. Colour stages expect pixel values in `value_range` (they
    clip to it); the shift and the flip work on any values.

    Note that Keras' preprocessing layers augment when called without a
    `training` argument (their default is `training=True`); inside a model,
    `fit` passes `training=True` and `predict`/`evaluate` pass
    `training=False`.

    Args:
        height: positive int, the image height.
        width: positive int, the image width.
        crop_padding: int in [0, min(height, width)), the largest shift in
            pixels. Defaults to 4.
        flip: random left-right flips. Defaults to True.
        brightness: float in [0, 1], the largest brightness change as a
            fraction of the value range. Defaults to 0.0 (off).
        contrast: float in [0, 1], the largest relative contrast change.
            Defaults to 0.0 (off).
        saturation: float in [0, 1], saturation strength (1 ranges from
            grey to fully saturated). Defaults to 0.0 (off).
        hue: float in [0, 1], hue strength. Defaults to 0.0 (off).
        grayscale: float in [0, 1], probability of turning an image grey.
            Defaults to 0.0 (off).
        value_range: `(low, high)` pixel range for the colour stages.
            Defaults to `(0.0, 1.0)`.
        seed: optional int; each stage gets its own seed derived from it.
        name: name of the returned model.

    Returns:
        A `keras.Sequential` mapping `(B, height, width, C)` images to
        augmented images of the same shape (float, the layers' dtype).

    Example:

    >>> augment = image_views(32, 32, crop_padding=4, flip=True, seed=0)
    >>> images = keras.random.uniform((8, 32, 32, 3))
    >>> view = augment(images, training=True)
    >>> tuple(keras.ops.shape(view))
    (8, 32, 32, 3)
    """
    height = check_positive_int("height", height)
    width = check_positive_int("width", width)
    if (
        isinstance(crop_padding, bool)
        or not isinstance(crop_padding, int)
        or not 0 <= crop_padding < min(height, width)
    ):
        raise ValueError(
            "`crop_padding` should be an integer in [0, min(height, width)). "
            f"Received: `crop_padding`={crop_padding!r}"
        )
    brightness = check_unit_float("brightness", brightness)
    contrast = check_unit_float("contrast", contrast)
    saturation = check_unit_float("saturation", saturation)
    hue = check_unit_float("hue", hue)
    grayscale = check_unit_float("grayscale", grayscale)
    if (
        not isinstance(value_range, (list, tuple))
        or len(value_range) != 2
        or not float(value_range[0]) < float(value_range[1])
    ):
        raise ValueError(
            "`value_range` should be a pair `(low, high)` with low < high. "
            f"Received: `value_range`={value_range!r}"
        )
    value_range = (float(value_range[0]), float(value_range[1]))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` should be an integer or None. Received: `seed`={seed!r}")

    stages: list[keras.layers.Layer] = []

    def stage_seed() -> int | None:
        return None if seed is None else seed + len(stages)

    if crop_padding > 0:
        stages.append(
            keras.layers.RandomTranslation(
                height_factor=(crop_padding + 0.5) / height,
                width_factor=(crop_padding + 0.5) / width,
                fill_mode="constant",
                interpolation="nearest",
                fill_value=0.0,
                seed=stage_seed(),
                name="shift",
            )
        )
    if flip:
        stages.append(keras.layers.RandomFlip("horizontal", seed=stage_seed(), name="flip"))
    if brightness > 0:
        stages.append(
            keras.layers.RandomBrightness(
                brightness, value_range=value_range, seed=stage_seed(), name="brightness"
            )
        )
    if contrast > 0:
        stages.append(
            keras.layers.RandomContrast(
                contrast, value_range=value_range, seed=stage_seed(), name="contrast"
            )
        )
    if saturation > 0:
        stages.append(
            keras.layers.RandomSaturation(
                (0.5 - saturation / 2, 0.5 + saturation / 2),
                value_range=value_range,
                seed=stage_seed(),
                name="saturation",
            )
        )
    if hue > 0:
        stages.append(
            keras.layers.RandomHue(hue, value_range=value_range, seed=stage_seed(), name="hue")
        )
    if grayscale > 0:
        stages.append(RandomGrayscale(grayscale, seed=stage_seed(), name="grayscale"))
    if not stages:
        stages.append(keras.layers.Identity(name="identity"))
    return keras.Sequential(stages, name=name)
