"""The MLP encoder for feature vectors: its standardisation, constant features included."""

import keras
import numpy as np
import pytest

from keras_mlcl.encoders import vector_encoder


def test_standardises_with_the_training_statistics_and_centres_constant_features():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(50, 4)).astype("float32")
    x[:, 2] = 5.0  # constant in training
    encoder = vector_encoder(x, embedding_dim=8, width=16)
    normalization = encoder.layers[0]
    assert isinstance(normalization, keras.layers.Normalization)
    unseen = np.array([[0.0, 1.0, 6.0, -2.0]], "float32")
    expected = (unseen - x.mean(axis=0)) / x.std(axis=0).clip(min=1e-12)
    expected[:, 2] = unseen[:, 2] - 5.0  # centred only, never divided by a zero spread
    out = keras.ops.convert_to_numpy(normalization(unseen))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert encoder.output_shape == (None, 8)


@pytest.mark.backend_independent
def test_a_feature_too_wide_for_float32_is_refused():
    # Finite in float32 (1e30), but its variance (1e60) is not: standardising gave Inf.
    x = np.ones((8, 3))
    x[:, 2] = np.arange(8) * 1e30
    with pytest.raises(ValueError, match=r"`x_train` column 2 spreads too widely"):
        vector_encoder(x)
