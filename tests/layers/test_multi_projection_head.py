import os

import keras
import numpy as np
import pytest

from keras_mlcl.layers import MultiProjectionHead
from tests.testing import assert_allclose
from tests.testing import to_numpy


def test_dict_of_unit_embeddings():
    heads = MultiProjectionHead(
        {"coarse": 4, "fine": {"output_dim": 6, "hidden_dims": ()}}, hidden_dims=(16,)
    )
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    out = to_numpy(heads(x))
    assert sorted(out) == ["coarse", "fine"]
    assert out["coarse"].shape == (3, 4) and out["fine"].shape == (3, 6)
    for z in out.values():
        assert_allclose(np.linalg.norm(z, axis=1), np.ones(3), atol=1e-6)
    assert heads.compute_output_shape((None, 5)) == {"coarse": (None, 4), "fine": (None, 6)}
    assert len(heads.projection_heads["fine"].dense_layers) == 1


@pytest.mark.parametrize("seed", [None, 7])
def test_heads_differ_at_initialisation(seed):
    heads = MultiProjectionHead(
        {"a": 8, "b": 8},
        hidden_dims=(8,),
        kernel_initializer=keras.initializers.GlorotUniform(seed),
    )
    out = to_numpy(heads(np.random.default_rng(1).normal(size=(4, 8)).astype("float32")))
    assert not np.allclose(out["a"], out["b"])
    a = to_numpy(heads.projection_heads["a"].dense_layers[0].kernel)
    b = to_numpy(heads.projection_heads["b"].dense_layers[0].kernel)
    assert not np.allclose(a, b)


def test_config_round_trip():
    heads = MultiProjectionHead(
        {"coarse": 4, "fine": {"output_dim": 6, "activation": "tanh"}},
        hidden_dims=[12],
        normalize=False,
    )
    config = heads.get_config()
    restored = MultiProjectionHead.from_config(config)
    assert restored.get_config() == config
    assert restored.projection_heads["fine"].get_config()["activation"] == "tanh"


def test_keras_save_and_load_in_a_functional_model(tmp_path):
    inputs = keras.Input((10,))
    features = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = MultiProjectionHead({"coarse": 3, "fine": 5}, hidden_dims=(8,))(features)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).normal(size=(4, 10)).astype("float32")
    path = os.path.join(tmp_path, "heads.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    expected, got = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    for name in ("coarse", "fine"):
        assert_allclose(got[name], expected[name], atol=1e-6)


def test_bad_heads():
    with pytest.raises(ValueError, match="`heads` should be a non-empty dict"):
        MultiProjectionHead({})
    with pytest.raises(ValueError, match="unknown keys"):
        MultiProjectionHead({"a": {"size": 3}})
