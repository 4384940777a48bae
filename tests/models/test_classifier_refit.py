"""`ContrastiveModel.fit_classifier`: the classifiers refit on the frozen encoder."""

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl.models.classifier_refit import refit_level


def blobs(rows: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 3
    centres = rng.normal(size=(3, 5)) * 2.0
    return (centres[labels] + rng.normal(size=(rows, 5))).astype("float32"), labels


def dense(inputs: int, classes: int, seed: int = 1) -> keras.layers.Dense:
    layer = keras.layers.Dense(classes)
    layer.build((None, inputs))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=(inputs, classes)), rng.normal(size=classes)])
    return layer


def logits(layer: keras.layers.Dense, x: np.ndarray) -> np.ndarray:
    kernel, bias = layer.get_weights()
    return x.astype("float64") @ kernel + bias


def penalised_loss(
    z: np.ndarray, labels: np.ndarray, kernel: np.ndarray, bias: np.ndarray
) -> float:
    """Mean softmax cross-entropy + ||kernel||^2 / (2 N): logistic regression, C = 1."""
    scores = z @ kernel + bias
    scores -= scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(z)), labels].mean() + (kernel**2).sum() / (2 * len(z)))


def test_standardisation_is_folded_back_exactly() -> None:
    # A step too small to move anything: the layer computes the same logits after the round
    # trip into the standardised basis and back (the scale of the embedding is 1e-3).
    x, labels = blobs()
    x = x * 1e-3 + 0.5
    layer = dense(5, 3)
    before = logits(layer, x)
    refit_level(layer, x, labels, steps=1, learning_rate=1e-12)
    np.testing.assert_allclose(logits(layer, x), before, rtol=1e-4, atol=1e-4)


def test_refit_reaches_the_penalised_optimum() -> None:
    # The optimum of the convex problem, by NumPy gradient descent on the standardised inputs.
    x, labels = blobs()
    z = (x - x.mean(0)) / x.std(0)
    kernel, bias = np.zeros((5, 3)), np.zeros(3)
    onehot = np.eye(3)[labels]
    for _ in range(5000):
        scores = z @ kernel + bias
        p = np.exp(scores - scores.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        kernel -= 0.5 * (z.T @ (p - onehot) / len(z) + kernel / len(z))
        bias -= 0.5 * (p - onehot).mean(0)
    optimum = penalised_loss(z, labels, kernel, bias)
    layer = dense(5, 3)
    raw = x * 1e-3
    losses = refit_level(layer, raw, labels, steps=600, batch_size=90)
    assert losses["initial_loss"] > optimum + 1.0
    assert losses["loss"] == pytest.approx(optimum, abs=2e-3)
    # The layer takes the raw embedding; in the standardised basis it is that optimum.
    fitted_kernel, fitted_bias = (w.astype("float64") for w in layer.get_weights())
    mean, std = raw.mean(0).astype("float64"), raw.std(0).astype("float64")
    kernel_z, bias_z = std[:, None] * fitted_kernel, mean @ fitted_kernel + fitted_bias
    assert penalised_loss(z, labels, kernel_z, bias_z) == pytest.approx(optimum, abs=2e-3)


def test_unlabelled_rows_are_left_out() -> None:
    x, labels = blobs()
    extra = np.concatenate([x, x[:30] + 5.0])
    with_unlabelled = np.concatenate([labels, -np.ones(30, "int64")])
    first, second = dense(5, 3), dense(5, 3)
    refit_level(first, x, labels, steps=50, batch_size=1024)
    refit_level(second, extra, with_unlabelled, steps=50, batch_size=1024)
    np.testing.assert_allclose(logits(first, x), logits(second, x), rtol=1e-4, atol=1e-4)


def test_multi_hot_level_uses_sigmoid_cross_entropy() -> None:
    x, labels = blobs()
    multi_hot = np.stack([labels == 0, labels != 2], axis=1).astype("int64")
    layer = dense(5, 2)
    losses = refit_level(layer, x, multi_hot, steps=300)
    predicted = logits(layer, x) > 0
    assert losses["loss"] < losses["initial_loss"]
    assert (predicted == multi_hot.astype(bool)).mean() > 0.95


def test_fit_classifier_lifts_a_joint_head() -> None:
    x, labels = blobs(120)
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8)])
    model = ContrastiveModel(encoder, {"fine": 4}, classifier={"fine": 3}, ce_weight=1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(x, {"fine": labels}, epochs=1, batch_size=120, verbose=0)

    def accuracy() -> float:
        predicted = model.predict(x, verbose=0)["fine_logits"]
        return float(np.mean(np.argmax(predicted, axis=1) == labels))

    before = accuracy()
    losses = model.fit_classifier(x, {"fine": labels}, steps=200)
    assert losses["fine"]["loss"] < losses["fine"]["initial_loss"]
    assert accuracy() > max(before, 0.9)


def test_fit_classifier_refuses_bad_input() -> None:
    encoder = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8)])
    x, labels = blobs()
    plain = ContrastiveModel(encoder, {"fine": 4})
    with pytest.raises(ValueError, match="`fit_classifier` needs a model with a `classifier`"):
        plain.fit_classifier(x, {"fine": labels})
    model = ContrastiveModel(encoder, {"fine": 4}, classifier={"fine": 3}, ce_weight=1.0)
    model.build((None, 5))
    with pytest.raises(ValueError, match="labels no row"):
        model.fit_classifier(x, {"fine": -np.ones(len(x), "int64")})
    with pytest.raises(ValueError, match="`steps`"):
        model.fit_classifier(x, {"fine": labels}, steps=0)
