"""Level names are any strings: a space, non-ASCII, 250 characters; the same on every backend.

TensorFlow refuses a space or a non-ASCII character in a name scope, and a file system refuses
a 255-byte file name: the layers and the loss-curve files get names derived from the level's
(`keras_mlcl.utils.names`), while the labels, heads and outputs keep the user's names.
"""

import os

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl.experiments.history import plot_loss_curves
from keras_mlcl.utils.names import file_name_part
from keras_mlcl.utils.names import layer_name
from tests.testing import assert_allclose

ODD = ("fine level", "niveau_é")
PLAIN = ("fine", "niveau")


def built(levels):
    """A model with heads and a classifier named `levels`, initialised from seed 0."""
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    model = ContrastiveModel(
        encoder,
        heads={level: 4 for level in levels},
        classifier={levels[1]: 4},
        ce_weight=0.5,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_a_space_and_non_ascii_build_fit_predict_and_load(tmp_path):
    """`"fine level"` and `"niveau_é"` build (with the values plain names give), fit a step,
    predict under their own names and round-trip a `.keras` file. Two models, one step, four
    predicts: its time is mostly the backend's first compilations in the process."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    labels = {ODD[0]: rng.integers(0, 2, 16), ODD[1]: rng.integers(0, 4, 16)}
    model, plain_model = built(ODD), built(PLAIN)
    # The names change nothing else: the same initial values as with plain names.
    outputs, plain = model.predict(x, verbose=0), plain_model.predict(x, verbose=0)
    assert sorted(outputs) == sorted(["embedding", *ODD, "niveau_é_logits"])
    for odd_key, plain_key in [("embedding", "embedding"), *zip(ODD, PLAIN, strict=True)]:
        assert_allclose(outputs[odd_key], plain[plain_key], atol=1e-6)
    assert_allclose(outputs["niveau_é_logits"], plain["niveau_logits"], atol=1e-6)

    history = model.fit(x, labels, batch_size=16, epochs=1, verbose=0).history
    assert {"fine level_loss", "niveau_é_loss", "niveau_é_ce"} <= set(history)
    assert np.isfinite(history["loss"][0])
    outputs = model.predict(x, verbose=0)
    assert not np.allclose(outputs["fine level"], plain["fine"])  # the step trained the head
    assert_allclose(np.linalg.norm(outputs["fine level"], axis=1), np.ones(16), atol=1e-5)

    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.heads.head_names == list(ODD)
    assert restored.classifier == {"niveau_é": 4}
    loaded = restored.predict(x, verbose=0)
    assert sorted(loaded) == sorted(outputs)
    for key, value in outputs.items():
        assert_allclose(loaded[key], value, atol=1e-6)


def test_plain_level_names_keep_their_layer_names():
    """Models saved before the names were derived still load: a plain ASCII identifier names
    its head's layer and its classifier as it always did."""
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8)])
    model = ContrastiveModel(
        encoder, heads={"coarse": 4, "fine-1.0": 4}, classifier={"fine-1.0": 3}, ce_weight=0.5
    )
    heads = model.heads.projection_heads
    assert [heads[level].name for level in heads] == ["coarse", "fine-1.0"]
    assert model.classifier_layers["fine-1.0"].name == "fine-1.0_classifier"
    renamed = ContrastiveModel(encoder, heads={"fine level": 4})
    assert renamed.heads.projection_heads["fine level"].name == layer_name("fine level")


@pytest.mark.backend_independent
def test_derived_names_are_safe_distinct_and_bounded():
    assert layer_name("fine") == "fine" and layer_name("fine_1.0-a") == "fine_1.0-a"
    assert layer_name("fine level").startswith("fine_level_")
    assert layer_name("niveau_é").startswith("niveau_e_")
    names = ["a b", "a_b", "a/b", "a\\b", "é", "e", "", "日本", "a" * 250]
    derived = [layer_name(name) for name in names]
    assert len(set(derived)) == len(names)  # "a b" and "a_b" do not collide
    for name in derived:
        assert name and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    long_names = [file_name_part("a" * 250), file_name_part("a" * 249 + "b")]
    assert [len(name) for name in long_names] == [64, 64] and long_names[0] != long_names[1]
    assert file_name_part("a" * 64) == "a" * 64
    assert len(file_name_part("a" * 250, max_length=20)) == 20
    with pytest.raises(ValueError, match="`max_length`"):
        file_name_part("a", max_length=8)


@pytest.mark.backend_independent
def test_loss_curves_of_long_and_odd_level_names_are_written(tmp_path):
    """A 250-character level name used to fail with `File name too long` after training."""
    heads = ["a" * 250, "fine level", "x/y", "coarse"]
    history = {f"{head}_loss": [2.0, 1.5] for head in heads}
    written = plot_loss_curves(history, str(tmp_path))
    assert sorted(written) == sorted(f"loss_{file_name_part(head)}.png" for head in heads)
    assert "loss_coarse.png" in written
    assert sorted(os.listdir(tmp_path)) == sorted(written)
    assert all(len(name) <= 73 for name in written)
