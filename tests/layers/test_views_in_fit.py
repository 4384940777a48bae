"""The views layers inside a jitted train step, as `ContrastiveModel` uses them.

Feature vectors use Keras' `GaussianNoise` and `Dropout`, checked here to
meet the same contract. `Dropout` is seeded: on torch an unseeded one draws
from torch's global generator, not its `SeedGenerator`.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_mlcl.layers import TokenDropout
from keras_mlcl.layers import image_views
from tests.testing import to_numpy

BATCH = 16
STEPS = 2


def image_data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(BATCH * STEPS, 8, 8, 3)).astype("float32")


def token_data():
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 50, size=(BATCH * STEPS, 10)).astype("int32")
    ids[:, 7:] = 0
    return ids


def feature_data():
    return np.random.default_rng(2).normal(size=(BATCH * STEPS, 6)).astype("float32")


CASES = {
    "images": (
        lambda: image_views(
            8, 8, crop_padding=2, brightness=0.2, contrast=0.2, saturation=0.2, grayscale=0.2
        ),
        image_data,
    ),
    "token_dropout": (lambda: TokenDropout(0.2, mask_token_id=4), token_data),
    "gaussian_noise": (lambda: keras.layers.GaussianNoise(0.1, seed=1), feature_data),
    "dropout": (lambda: keras.layers.Dropout(0.2, seed=2), feature_data),
}


def jit_modes():
    # On CPU, TensorFlow's "auto" means no XLA: cover XLA explicitly too.
    # torch.compile (jit_compile=True on torch) is opt-in and slow: not here.
    return ["auto", True] if keras.backend.backend() == "tensorflow" else ["auto"]


class TwoViewClassifier(keras.Model):
    """Calls `augment` on the whole batch twice per step, like a contrastive model."""

    def __init__(self, augment, **kwargs):
        super().__init__(**kwargs)
        self.augment = augment
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(3)

    def call(self, x, training=False):
        views = [self.augment(x, training=training) for _ in range(2)]
        logits = [self.dense(self.flatten(ops.cast(view, "float32"))) for view in views]
        return (logits[0] + logits[1]) / 2


class TwoViews(keras.Model):
    """Returns two augmented views of the batch, even under predict."""

    def __init__(self, augment, **kwargs):
        super().__init__(**kwargs)
        self.augment = augment

    def call(self, x):
        return self.augment(x, training=True), self.augment(x, training=True)


def seed_counters(layer):
    return [
        int(to_numpy(v)[1]) for v in layer.non_trainable_variables if "seed_generator" in v.path
    ]


@pytest.mark.parametrize("jit_compile", jit_modes())
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_draws_new_views_every_step(case, jit_compile):
    make_augment, make_data = CASES[case]
    augment = make_augment()
    x = make_data()
    y = np.arange(len(x)) % 3
    model = TwoViewClassifier(augment)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    model(x[:2])
    before = seed_counters(augment)
    assert before
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = seed_counters(augment)
    # Every step draws two views: each generator (one per image stage) moved on
    # by >= 2 draws per step, exactly 2 for the single-draw layers, so the
    # updated state left the compiled step.
    moved = [b - a for a, b in zip(before, after, strict=True)]
    if case == "images":
        assert len(moved) == 6 and all(m >= 2 * STEPS for m in moved)
    else:
        assert moved == [2 * STEPS]
    # Predict is training=False: no augmentation, so two runs agree.
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("jit_compile", jit_modes())
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_views_in_one_compiled_step_differ(case, jit_compile):
    make_augment, make_data = CASES[case]
    x = make_data()
    model = TwoViews(make_augment())
    model.compile(jit_compile=jit_compile)
    first, second = model.predict(x, batch_size=BATCH, verbose=0)
    assert first.shape == x.shape and second.shape == x.shape
    assert not np.array_equal(first, second)
