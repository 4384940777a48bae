import os

import keras
import numpy as np
import pytest

from keras_mlcl.layers import ProjectionHead
from tests.testing import assert_allclose
from tests.testing import to_numpy


def test_output_shape_and_unit_norm():
    head = ProjectionHead(output_dim=12, hidden_dims=(32, 16))
    x = np.random.default_rng(0).normal(size=(5, 7)).astype("float32")
    z = to_numpy(head(x))
    assert z.shape == (5, 12)
    assert_allclose(np.linalg.norm(z, axis=1), np.ones(5), atol=1e-6)
    assert head.compute_output_shape((None, 7)) == (None, 12)
    assert len(head.trainable_weights) == 6


def test_matches_manual_computation():
    head = ProjectionHead(output_dim=3, hidden_dims=(16,), activation="relu")
    x = np.random.default_rng(1).normal(size=(6, 5)).astype("float32")
    z = to_numpy(head(x))
    k0, b0, k1, b1 = (to_numpy(w) for w in head.weights)
    h = np.maximum(x @ k0 + b0, 0) @ k1 + b1
    assert_allclose(z, h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12), atol=1e-5)


def test_linear_unnormalised_head():
    head = ProjectionHead(output_dim=3, hidden_dims=(), normalize=False)
    x = np.ones((2, 4), "float32")
    z = to_numpy(head(x))
    kernel, bias = (to_numpy(w) for w in head.weights)
    assert_allclose(z, x @ kernel + bias)


def test_zero_output_is_not_nan():
    head = ProjectionHead(output_dim=4, hidden_dims=(), use_bias=False)
    z = to_numpy(head(np.zeros((2, 3), "float32")))
    assert_allclose(z, np.zeros((2, 4)))


def test_float16_policy_normalises_in_float32():
    head = ProjectionHead(output_dim=8, hidden_dims=(16,), dtype="mixed_float16")
    x = np.random.default_rng(2).normal(size=(4, 6)).astype("float32") * 300
    z = head(x)
    assert keras.backend.standardize_dtype(z.dtype) == "float16"
    assert_allclose(np.linalg.norm(to_numpy(z).astype("float32"), axis=1), np.ones(4), atol=2e-3)


def test_config_round_trip():
    head = ProjectionHead(
        output_dim=16,
        hidden_dims=(8, 8),
        activation="gelu",
        kernel_initializer=keras.initializers.HeNormal(seed=3),
        name="proj",
    )
    config = head.get_config()
    restored = ProjectionHead.from_config(config)
    assert restored.get_config() == config


def test_layers_start_with_different_weights_even_with_a_seed():
    head = ProjectionHead(
        output_dim=8, hidden_dims=(8,), kernel_initializer=keras.initializers.GlorotUniform(seed=1)
    )
    head.build((None, 8))
    first, second = to_numpy(head.dense_layers[0].kernel), to_numpy(head.dense_layers[1].kernel)
    assert not np.allclose(first, second)


def test_keras_save_and_load_in_a_functional_model(tmp_path):
    inputs = keras.Input((10,))
    outputs = ProjectionHead(output_dim=4, hidden_dims=(8,))(keras.layers.Dense(6)(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(3).normal(size=(5, 10)).astype("float32")
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"output_dim": 0}, "`output_dim` should be a positive integer"),
        ({"output_dim": 2.5}, "`output_dim` should be a positive integer"),
        ({"hidden_dims": (8, -1)}, "`hidden_dims` should be a positive integer"),
        ({"hidden_dims": "64"}, "`hidden_dims` should be a sequence"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProjectionHead(**kwargs)
