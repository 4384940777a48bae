import collections
import os

import keras
import numpy as np
import pytest

from keras_mlcl.layers import image_views
from tests.testing import to_numpy


def images(seed=0, batch=64, size=8, channels=3, low=0.1, high=1.0):
    return (
        np.random.default_rng(seed)
        .uniform(low, high, size=(batch, size, size, channels))
        .astype("float32")
    )


def shifted(image, dy, dx):
    """`image` moved down by `dy` and right by `dx` pixels, zero filled (NumPy)."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def test_identity_when_not_training():
    x = images()
    augment = image_views(8, 8, crop_padding=2, brightness=0.2, contrast=0.2, grayscale=0.5)
    np.testing.assert_array_equal(to_numpy(augment(x, training=False)), x)
    # Inside a model, predict runs the views with training=False.
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, augment(inputs))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_flips_are_exact_mirrors_about_half_the_time():
    x = images(seed=1, batch=400)
    out = to_numpy(image_views(8, 8, crop_padding=0, flip=True, seed=1)(x, training=True))
    assert out.shape == x.shape
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1, :], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)
    assert abs(mirrored.mean() - 0.5) < 0.1


def test_shift_is_a_padded_crop_with_uniform_offsets():
    padding = 2
    x = images(seed=2, batch=500)
    out = to_numpy(image_views(8, 8, crop_padding=padding, flip=False, seed=2)(x, training=True))
    offsets = collections.Counter()
    candidates = [
        (dy, dx) for dy in range(-padding, padding + 1) for dx in range(-padding, padding + 1)
    ]
    for image, view in zip(x, out, strict=True):
        matches = [c for c in candidates if np.array_equal(shifted(image, *c), view)]
        assert len(matches) == 1
        offsets[matches[0][0]] += 1
        offsets[matches[0][1]] += 1
    # 1000 offsets over 5 values: 200 each, binomial std ~ 13.
    assert set(offsets) == set(range(-padding, padding + 1))
    assert all(abs(count - 200) < 60 for count in offsets.values())


def test_brightness_adds_one_bounded_delta_per_image():
    x = images(seed=3, low=0.4, high=0.6)
    out = to_numpy(
        image_views(8, 8, crop_padding=0, flip=False, brightness=0.2, seed=3)(x, training=True)
    )
    delta = (out - x).reshape(len(x), -1)
    np.testing.assert_allclose(delta, delta[:, :1] * np.ones_like(delta), atol=1e-6)
    assert np.all(np.abs(delta[:, 0]) <= 0.2 + 1e-6)
    assert delta[:, 0].std() > 0.05


def test_contrast_scales_around_the_channel_mean():
    x = images(seed=4, low=0.4, high=0.6)
    out = to_numpy(
        image_views(8, 8, crop_padding=0, flip=False, contrast=0.3, seed=4)(x, training=True)
    )
    centred_in = x - x.mean(axis=(1, 2), keepdims=True)
    centred_out = out - out.mean(axis=(1, 2), keepdims=True)
    scale = (centred_out * centred_in).sum(axis=(1, 2, 3)) / (centred_in**2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(centred_out, scale[:, None, None, None] * centred_in, atol=1e-5)
    assert np.all((scale >= 0.7 - 1e-5) & (scale <= 1.3 + 1e-5))
    assert scale.std() > 0.05


def test_colour_stages_keep_range_and_grayscale_rate():
    x = images(seed=5, batch=400)
    augment = image_views(
        8, 8, crop_padding=0, flip=False, saturation=0.5, hue=0.1, grayscale=0.3, seed=5
    )
    out = to_numpy(augment(x, training=True))
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    grey = np.all(np.abs(out - out[..., :1]) < 1e-6, axis=(1, 2, 3))
    assert abs(grey.mean() - 0.3) < 0.1


def test_two_calls_differ_and_a_seed_reproduces():
    x = images(seed=6, batch=16)
    augment = image_views(8, 8, crop_padding=2, brightness=0.2, seed=6)
    first, second = to_numpy(augment(x, training=True)), to_numpy(augment(x, training=True))
    assert not np.array_equal(first, second)
    fresh = image_views(8, 8, crop_padding=2, brightness=0.2, seed=6)
    np.testing.assert_array_equal(to_numpy(fresh(x, training=True)), first)


def test_every_stage_off_is_identity():
    x = images(batch=4)
    augment = image_views(8, 8, crop_padding=0, flip=False)
    np.testing.assert_array_equal(to_numpy(augment(x, training=True)), x)


def test_config_round_trip():
    augment = image_views(8, 8, crop_padding=2, contrast=0.2, grayscale=0.2, seed=7)
    config = augment.get_config()
    restored = keras.Sequential.from_config(config)
    assert [layer.get_config() for layer in restored.layers] == [
        layer.get_config() for layer in augment.layers
    ]
    x = images(seed=7, batch=8)
    np.testing.assert_array_equal(
        to_numpy(restored(x, training=True)), to_numpy(augment(x, training=True))
    )


def test_keras_save_and_load(tmp_path):
    inputs = keras.Input((8, 8, 3))
    hidden = image_views(8, 8, crop_padding=1, brightness=0.1, seed=1)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(hidden)))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = images(batch=4)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"height": 0}, "`height` should be a positive integer"),
        ({"width": 8.0}, "`width` should be a positive integer"),
        ({"crop_padding": 8}, "`crop_padding` should be an integer in \\[0, min"),
        ({"crop_padding": -1}, "`crop_padding` should be an integer in \\[0, min"),
        ({"brightness": 1.5}, "`brightness` should be a float in \\[0, 1\\]"),
        ({"contrast": -0.1}, "`contrast` should be a float in \\[0, 1\\]"),
        ({"saturation": 2}, "`saturation` should be a float in \\[0, 1\\]"),
        ({"hue": None}, "`hue` should be a float in \\[0, 1\\]"),
        ({"grayscale": 1.1}, "`grayscale` should be a float in \\[0, 1\\]"),
        ({"value_range": (1, 0)}, "`value_range` should be a pair"),
        ({"seed": 1.5}, "`seed` should be an integer or None"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"height": 8, "width": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        image_views(**arguments)
