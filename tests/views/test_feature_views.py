import os

import keras
import numpy as np
import pytest

from keras_mlcl.data.views import FeatureDropout
from keras_mlcl.data.views import FeatureNoise
from tests.testing import to_numpy


def features(seed=0, batch=1000, width=200):
    """Standardised-looking features with no exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, width)).astype("float32")
    x[x == 0] = 1.0
    return x


@pytest.mark.parametrize("layer_class, argument", [(FeatureNoise, 0.5), (FeatureDropout, 0.5)])
def test_identity_when_not_training(layer_class, argument):
    x = features(batch=8, width=5)
    layer = layer_class(argument, seed=0)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x)


def test_noise_statistics():
    x = features(seed=1)
    noise = to_numpy(FeatureNoise(0.3, seed=1)(x, training=True)) - x
    assert noise.shape == x.shape
    # 200k draws: std of the sample std ~ 0.3 / sqrt(4e5) ~ 5e-4.
    assert abs(noise.std() - 0.3) < 0.005
    assert abs(noise.mean()) < 0.005
    # Independent across features: correlation between two columns ~ 0.
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.15


def test_dropout_zeros_about_rate_and_keeps_the_rest():
    x = features(seed=2)
    out = to_numpy(FeatureDropout(0.2, seed=2)(x, training=True))
    zeroed = out == 0
    assert abs(zeroed.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(out[~zeroed], x[~zeroed])


def test_dropout_with_rescale_is_unbiased():
    x = np.abs(features(seed=3)) + 1.0
    out = to_numpy(FeatureDropout(0.25, rescale=True, seed=3)(x, training=True))
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
    assert abs(out.mean() / x.mean() - 1.0) < 0.01


def test_integer_features_are_cast_to_float():
    x = np.arange(12, dtype="int32").reshape(3, 4)
    out = FeatureNoise(0.1, seed=0)(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(out), x.astype("float32"))


@pytest.mark.parametrize("layer_class, argument", [(FeatureNoise, 0.5), (FeatureDropout, 0.5)])
def test_two_calls_differ_and_a_seed_reproduces(layer_class, argument):
    x = features(batch=16, width=8)
    layer = layer_class(argument, seed=4)
    first, second = to_numpy(layer(x, training=True)), to_numpy(layer(x, training=True))
    assert first.shape == x.shape
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(to_numpy(layer_class(argument, seed=4)(x, training=True)), first)


def test_zero_settings_are_identity_in_training():
    x = features(batch=4, width=3)
    np.testing.assert_array_equal(to_numpy(FeatureNoise(0.0)(x, training=True)), x)
    np.testing.assert_array_equal(to_numpy(FeatureDropout(0.0)(x, training=True)), x)


@pytest.mark.parametrize(
    "layer",
    [FeatureNoise(0.2, seed=1, name="noise"), FeatureDropout(0.3, rescale=True, seed=2)],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    restored = layer.__class__.from_config(config)
    assert restored.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert revived.get_config() == config


def test_keras_save_and_load(tmp_path):
    inputs = keras.Input((6,))
    hidden = FeatureDropout(0.3, seed=1)(FeatureNoise(0.1, seed=2)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = features(batch=5, width=6)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FeatureNoise(-0.1), "`stddev` should be a non-negative float"),
        (lambda: FeatureNoise(float("nan")), "`stddev` should be a non-negative float"),
        (lambda: FeatureDropout(1.0), "`rate` should be a float in \\[0, 1\\)"),
        (lambda: FeatureDropout(-0.5), "`rate` should be a float in \\[0, 1\\)"),
    ],
)
def test_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()
