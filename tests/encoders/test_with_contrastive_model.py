"""The text encoder and `TokenDropout` inside `ContrastiveModel`, on the active backend.

(Every views layer inside a compiled two-view step: test_views_in_fit.)
"""

import os

import keras
import numpy as np
import pytest

from keras_mlcl.layers import TokenDropout
from tests.testing import to_numpy

models = pytest.importorskip("keras_mlcl.models")
ContrastiveModel = models.ContrastiveModel


def test_text_encoder_with_token_dropout(tmp_path):
    pytest.importorskip("keras_hub")
    from keras_mlcl.encoders import text_encoder

    texts = [f"{a} {b} {c}" for a in ("red", "blue") for b in ("cat", "dog") for c in "xyzw"] * 2
    fine = np.arange(len(texts)) % 4
    preprocessor, encoder = text_encoder(
        texts, sequence_length=8, num_layers=1, hidden_dim=8, intermediate_dim=16
    )
    augment = TokenDropout(0.2, mask_token_id=preprocessor.mask_token_id, protected_ids=[1, 2])
    model = ContrastiveModel(encoder, heads={"coarse": 4, "fine": 4}, augment=augment)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    labels = {"coarse": fine // 2, "fine": fine}
    history = model.fit(preprocessor(texts), labels, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.augment.get_config() == model.augment.get_config()
    for saved, loaded in zip(model.encoder.weights, restored.encoder.weights, strict=True):
        np.testing.assert_array_equal(to_numpy(loaded), to_numpy(saved))
