import os

import keras
import numpy as np
import pytest

from keras_mlcl.layers import TokenDropout
from tests.testing import to_numpy

MASK = 4


def token_batch(seed=0, batch=512, length=64, vocabulary=100):
    """Random ids in [5, vocabulary), each row padded with 0 after a random length."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocabulary, size=(batch, length)).astype("int32")
    lengths = rng.integers(1, length + 1, size=batch)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def test_identity_when_not_training():
    ids = token_batch(batch=8)
    layer = TokenDropout(0.5, seed=1)
    np.testing.assert_array_equal(to_numpy(layer(ids)), ids)
    np.testing.assert_array_equal(to_numpy(layer(ids, training=False)), ids)


def test_drops_about_rate_of_real_tokens_and_never_padding():
    ids = token_batch()
    out = to_numpy(TokenDropout(0.3, seed=2)(ids, training=True))
    assert out.shape == ids.shape
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    real = ids != 0
    changed = out != ids
    # ~19k real tokens: the binomial std of the fraction is ~0.0033.
    assert abs(changed[real].mean() - 0.3) < 0.02
    assert not changed[~real].any()
    np.testing.assert_array_equal(out[changed], 0)


def test_mask_token_replaces_instead_of_dropping():
    ids = token_batch(seed=3)
    out = to_numpy(TokenDropout(0.25, mask_token_id=MASK, seed=3)(ids, training=True))
    real = ids != 0
    changed = out != ids
    assert abs(changed[real].mean() - 0.25) < 0.02
    np.testing.assert_array_equal(out[changed], MASK)
    np.testing.assert_array_equal(out[~real], 0)


def test_custom_padding_and_protected_ids():
    ids = token_batch(seed=4)
    ids[ids == 0] = 1  # padding id 1
    ids[:, 0] = 2  # a start token on every row
    layer = TokenDropout(0.5, padding_id=1, protected_ids=[2], seed=4)
    out = to_numpy(layer(ids, training=True))
    droppable = (ids != 1) & (ids != 2)
    changed = out != ids
    assert not changed[~droppable].any()
    np.testing.assert_array_equal(out[changed], 1)
    assert abs(changed[droppable].mean() - 0.5) < 0.02


def test_two_calls_differ_and_a_seed_reproduces():
    ids = token_batch(batch=32)
    layer = TokenDropout(0.2, seed=5)
    first, second = to_numpy(layer(ids, training=True)), to_numpy(layer(ids, training=True))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(to_numpy(TokenDropout(0.2, seed=5)(ids, training=True)), first)


def test_rate_zero_is_identity_in_training():
    ids = token_batch(batch=8)
    np.testing.assert_array_equal(to_numpy(TokenDropout(0.0)(ids, training=True)), ids)


def test_config_round_trip():
    layer = TokenDropout(0.15, mask_token_id=MASK, padding_id=0, protected_ids=(1, 2), seed=7)
    config = layer.get_config()
    restored = TokenDropout.from_config(config)
    assert restored.get_config() == config
    ids = token_batch(batch=16)
    np.testing.assert_array_equal(
        to_numpy(restored(ids, training=True)), to_numpy(layer(ids, training=True))
    )
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, TokenDropout)


def test_keras_save_and_load(tmp_path):
    inputs = keras.Input((12,), dtype="int32")
    outputs = TokenDropout(0.3, mask_token_id=MASK, seed=1)(inputs)
    model = keras.Model(inputs, outputs)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.layers[-1].get_config() == model.layers[-1].get_config()
    ids = token_batch(batch=4, length=12)
    np.testing.assert_array_equal(to_numpy(restored.predict(ids, verbose=0)), ids)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 1.0}, "`rate` should be a float in \\[0, 1\\)"),
        ({"rate": -0.1}, "`rate` should be a float in \\[0, 1\\)"),
        ({"rate": "x"}, "`rate` should be a float in \\[0, 1\\)"),
        ({"rate": 0.1, "mask_token_id": -1}, "`mask_token_id` should be a non-negative"),
        ({"rate": 0.1, "padding_id": 1.5}, "`padding_id` should be a non-negative"),
        ({"rate": 0.1, "protected_ids": 3}, "`protected_ids` should be a sequence"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenDropout(**kwargs)
