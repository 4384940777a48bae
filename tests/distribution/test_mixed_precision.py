"""Mixed precision: ContrastiveModel (with a memory bank) trains without NaN
under mixed_float16 and mixed_bfloat16, and its loss stays float32 and close
to the float32 loss of the same weights."""

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import MultiLevelSupCon
from keras_mlcl import MultiProjectionHead
from tests.testing import to_numpy


@pytest.fixture
def restore_dtype_policy():
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


def clustered(n=128, seed=0):
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, 8, n)
    x = (rng.normal(size=(8, 12))[fine] * 2 + rng.normal(size=(n, 12))).astype("float32")
    return x, {"coarse": fine // 4, "fine": fine}


def build(memory_bank=None):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [keras.Input((12,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(16)]
    )
    heads = MultiProjectionHead({"coarse": 8, "fine": 8}, hidden_dims=(16,))
    # A small temperature: logits up to 1 / 0.05 = 20, exp(20) overflows float16.
    loss = MultiLevelSupCon.hierarchical(["coarse", "fine"], temperatures=[0.5, 0.05])
    return ContrastiveModel(encoder, heads, loss=loss, memory_bank=memory_bank)


@pytest.mark.parametrize("policy, tolerance", [("mixed_float16", 0.01), ("mixed_bfloat16", 0.05)])
def test_mixed_policy_trains_without_nan(policy, tolerance, restore_dtype_policy):
    x, y = clustered()
    keras.config.set_dtype_policy(policy)
    model = build(memory_bank=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    losses = np.array(history.history["loss"])
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < losses[0], losses
    for name in ("coarse_loss", "fine_loss"):
        assert np.isfinite(history.history[name]).all()
    assert all(np.isfinite(to_numpy(v)).all() for v in model.trainable_variables)
    bank = model.memory_bank.references()["reference_embeddings"]["fine"]
    assert keras.backend.standardize_dtype(bank.dtype) == "float32"

    outputs = model(x, training=False)
    assert keras.backend.standardize_dtype(outputs["fine"].dtype) == policy.split("_")[1]
    loss = model.contrastive_loss
    mixed = loss.head_losses(y, {h: outputs[h] for h in y})
    assert keras.backend.standardize_dtype(mixed["fine"].dtype) == "float32"

    keras.config.set_dtype_policy("float32")
    reference = build()
    reference(x[:2])
    reference.encoder.set_weights(model.encoder.get_weights())
    reference.heads.set_weights(model.heads.get_weights())
    exact_outputs = reference(x, training=False)
    exact = loss.head_losses(y, {h: exact_outputs[h] for h in y})
    for name in ("coarse", "fine"):
        assert np.isfinite(to_numpy(mixed[name]))
        np.testing.assert_allclose(to_numpy(mixed[name]), to_numpy(exact[name]), atol=tolerance)
