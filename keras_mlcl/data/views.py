"""Augmentation layers that make the views of a contrastive batch.

`ContrastiveModel` calls its `augment` layer once per view, with
`training=True`, on the whole batch inside the (jitted) train step. Every
layer here therefore:

- works in `keras.ops` / `keras.random` on batches, on every backend and
  under XLA;
- draws its randomness from a `keras.random.SeedGenerator`, so two calls (two
  views) differ, and a fixed `seed` makes a fresh layer reproducible;
- keeps the shape (and, for token ids, the dtype) of its input;
- is the identity when called with `training=False` (evaluation, predict);
- round-trips through `get_config` and `.keras` files.
"""

import math
import numbers

import keras
from keras import ops

from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_int


def as_float(value):
    """`value` as a float, or None for a bool, a non-number or NaN."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def check_rate(name, value):
    """Returns `value` as a float, or raises if it is not in [0, 1)."""
    number = as_float(value)
    if number is None or not 0.0 <= number < 1.0:
        raise ValueError(f"`{name}` should be a float in [0, 1). Received: `{name}`={value!r}")
    return number


def check_unit_float(name, value):
    """Returns `value` as a float, or raises if it is not in [0, 1]."""
    number = as_float(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"`{name}` should be a float in [0, 1]. Received: `{name}`={value!r}")
    return number


def check_token_id(name, value, allow_none=False):
    """Returns `value`, or raises if it is not a non-negative int."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`{name}` should be a non-negative integer token id. Received: `{name}`={value!r}"
        )
    return int(value)


def image_views(
    height,
    width,
    crop_padding=4,
    flip=True,
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
    hue=0.0,
    grayscale=0.0,
    value_range=(0.0, 1.0),
    seed=None,
    name="image_views",
):
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
    >>> view = augment(images, training=True)  # (8, 32, 32, 3)
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

    stages = []

    def stage_seed():
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


@keras.saving.register_keras_serializable(package="keras_mlcl")
class RandomGrayscale(keras.layers.RandomGrayscale):
    """`keras.layers.RandomGrayscale` whose config keeps its `seed`.

    Keras 3.15's layer leaves `seed` (and `data_format`) out of
    `get_config`, so a seeded pipeline rebuilt from its config would draw
    different images. Same arguments and behaviour as the Keras layer.
    """

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed, "data_format": self.data_format})
        return config


@keras.saving.register_keras_serializable(package="keras_mlcl")
class TokenDropout(keras.layers.Layer):
    """Randomly drops or masks tokens of a batch of token-id sequences.

    ```
    keep_ij = u_ij >= rate  or  x_ij = padding_id  or  x_ij in protected_ids
    y_ij    = x_ij if keep_ij else r
    ```

    where `u_ij ~ U[0, 1)` is drawn afresh on every call, and the
    replacement `r` is `padding_id` (the token is dropped: an encoder that
    masks padding ignores it) or `mask_token_id` when one is given (BERT-style
    masking). Padding positions are never changed, so about `rate` of the
    real tokens are hit and the sequence length is kept.

    With `training=False` the layer is the identity.

    Args:
        rate: float in [0, 1), the probability of hitting each real token.
        mask_token_id: optional int; when given, hit tokens become this id
            instead of `padding_id`. Defaults to None (drop).
        padding_id: int, the padding token id. Defaults to 0.
        protected_ids: sequence of token ids never changed (e.g. the ids of
            `[CLS]` and `[SEP]`). Defaults to `()`.
        seed: optional int seed of the layer's `SeedGenerator`.
        **kwargs: base `Layer` arguments (`name`, ...).

    Input:
        Integer token ids `(B, T)` (any shape works), `padding_id` = padding.

    Output:
        Token ids of the same shape and dtype.

    Example:

    >>> ids = np.array([[5, 6, 7, 0, 0]], "int32")
    >>> TokenDropout(0.5, seed=0)(ids, training=True)  # e.g. [[5, 0, 7, 0, 0]]
    """

    def __init__(
        self, rate, mask_token_id=None, padding_id=0, protected_ids=(), seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.mask_token_id = check_token_id("mask_token_id", mask_token_id, allow_none=True)
        self.padding_id = check_token_id("padding_id", padding_id)
        if protected_ids is None:
            protected_ids = ()
        if not isinstance(protected_ids, (list, tuple)):
            raise ValueError(
                "`protected_ids` should be a sequence of token ids. "
                f"Received: `protected_ids`={protected_ids!r}"
            )
        self.protected_ids = tuple(check_token_id("protected_ids", i) for i in protected_ids)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        droppable = ops.not_equal(inputs, self.padding_id)
        for token_id in self.protected_ids:
            droppable = ops.logical_and(droppable, ops.not_equal(inputs, token_id))
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        hit = ops.logical_and(ops.less(noise, self.rate), droppable)
        replacement = self.padding_id if self.mask_token_id is None else self.mask_token_id
        return ops.where(hit, ops.full_like(inputs, replacement), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "mask_token_id": self.mask_token_id,
                "padding_id": self.padding_id,
                "protected_ids": list(self.protected_ids),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_mlcl")
class FeatureNoise(keras.layers.Layer):
    """Adds Gaussian noise to every feature.

    ```
    y = x + stddev * e,   e ~ N(0, 1) elementwise
    ```

    Useful for tabular features `(B, F)` that are standardised (so one
    `stddev` suits every column). `e` is drawn afresh on every call; with
    `training=False` (or `stddev=0`) the layer returns `x` unchanged, cast to
    the layer's compute dtype.

    Args:
        stddev: float >= 0, the standard deviation of the noise.
        seed: optional int seed of the layer's `SeedGenerator`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> x = np.zeros((4, 3), "float32")
    >>> FeatureNoise(0.1, seed=0)(x, training=True)  # (4, 3), std ~ 0.1
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = check_non_negative_float("stddev", stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        if not training or self.stddev == 0.0:
            return inputs
        noise = keras.random.normal(
            ops.shape(inputs),
            stddev=self.stddev,
            dtype=self.compute_dtype,
            seed=self.seed_generator,
        )
        return inputs + noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="keras_mlcl")
class FeatureDropout(keras.layers.Layer):
    """Sets random features to zero, by default without rescaling.

    ```
    y_ij = x_ij * m_ij * s,   m_ij ~ Bernoulli(1 - rate),
    s = 1 / (1 - rate) if rescale else 1
    ```

    A view keeps the surviving feature values exactly as measured and marks
    the others "missing" (zero, the mean of standardised features), like
    masking corruption in self-supervised tabular learning. `rescale=True`
    gives `keras.layers.Dropout`'s behaviour instead (unbiased in
    expectation, but the kept values are inflated). The mask is drawn afresh
    on every call; with `training=False` the layer returns `x` unchanged,
    cast to the layer's compute dtype.

    Args:
        rate: float in [0, 1), the probability of zeroing each feature.
        rescale: multiply the kept features by `1 / (1 - rate)`. Defaults to
            False.
        seed: optional int seed of the layer's `SeedGenerator`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> x = np.ones((4, 10), "float32")
    >>> FeatureDropout(0.2, seed=0)(x, training=True)  # about 20% zeros
    """

    def __init__(self, rate, rescale=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.rescale = bool(rescale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        if not training or self.rate == 0.0:
            return inputs
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        kept = inputs / (1.0 - self.rate) if self.rescale else inputs
        return ops.where(ops.greater_equal(noise, self.rate), kept, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "rescale": self.rescale, "seed": self.seed})
        return config
