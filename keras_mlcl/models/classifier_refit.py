"""Refits a ContrastiveModel's classifiers on its frozen encoder.

In joint training (`classifier` with `ce_weight`) the classifier is one
Dense layer on the encoder embedding, moved by the same optimiser steps as
the encoder. That is often too few for the head: under a contrastive loss
the embedding's scale is free (the heads L2-normalise their outputs), and
on Fashion-MNIST under `mlcl+ce` it settles near a norm of 0.6 where `ce`
gives 25, so each Adam step moves the logits some 40 times less; after 90
steps the head scored 0.47 where a linear probe of the same encoder scored
0.79. `fit_classifier` finishes the head's training on the frozen
embeddings, as the probe does: on standardised embeddings, with an L2
penalty like a logistic regression's with `C=1`, then folds the
standardisation back into the Dense layer, so the model and what it serves
keep their shape.
"""

import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from keras_mlcl.utils.validation import check_positive_int


def _level_targets(labels: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """`(targets, labelled, multi_hot)` of one level's labels (negative: unlabelled)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] != 1:
        return labels.astype("float32"), np.all(labels >= 0, axis=1), True
    labels = labels.reshape(-1)
    return labels.astype("int32"), labels >= 0, False


class RowBatches(keras.utils.PyDataset):
    """`steps` batches of rows, in the order of successive random permutations (seed 0).

    Args:
        x: `(N, F)` inputs.
        targets: `(N, ...)` targets.
        weights: optional `(N,)` sample weights.
        steps: the number of batches.
        batch_size: rows per batch (at most N).
    """

    def __init__(
        self,
        x: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray | None,
        steps: int,
        batch_size: int,
    ) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        passes = math.ceil(steps * batch_size / len(x))
        self.order = np.concatenate([rng.permutation(len(x)) for _ in range(passes)])
        self.x, self.targets, self.weights = x, targets, weights
        self.steps, self.batch_size = steps, batch_size

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.weights is None:
            return self.x[rows], self.targets[rows]
        return self.x[rows], self.targets[rows], self.weights[rows]


def penalised_loss(
    head: keras.Sequential,
    z: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None,
    multi_hot: bool,
) -> float:
    """The refit's objective, in NumPy: the (weighted) mean cross-entropy + the L2 penalty."""
    kernel, bias = (np.asarray(w, dtype="float64") for w in head.layers[0].get_weights())
    scores = z.astype("float64") @ kernel + bias
    if multi_hot:
        per_row = np.mean(np.logaddexp(0.0, scores) - targets * scores, axis=1)
    else:
        top = scores.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
        per_row = log_norm - scores[np.arange(len(z)), targets]
    mean = float(np.mean(per_row if weights is None else per_row * weights))
    return mean + 0.5 / len(z) * float(np.sum(kernel**2))


def refit_level(
    layer: keras.layers.Dense,
    embeddings: np.ndarray,
    labels: Any,
    sample_weight: np.ndarray | None = None,
    steps: int = 1000,
    batch_size: int = 8192,
    learning_rate: float = 0.05,
    level: str = "level",
) -> dict[str, float]:
    """Refits one classifier `layer` on fixed `embeddings`; returns its losses.

    Args:
        layer: the level's built `Dense` classifier; its weights are the
            starting point and are replaced.
        embeddings: `(N, F)` encoder embeddings.
        labels: `(N,)` class ids or `(N, K)` multi-hot labels; negative
            entries mark unlabelled rows, which are left out.
        sample_weight: optional `(N,)` weights of the rows.
        steps: optimiser steps (Adam). Defaults to 1000.
        batch_size: rows per step (all rows, up to it). Defaults to 8192.
        learning_rate: Adam's initial learning rate, decayed to 0 along a
            cosine over the steps. Defaults to 0.05.
        level: the level's name, for error messages.

    Returns:
        `{"initial_loss", "loss"}`: the penalised training loss before and
        after.
    """
    targets, labelled, multi_hot = _level_targets(labels)
    if not labelled.any():
        raise ValueError(f"`y[{level!r}]` labels no row: the classifier cannot be refit.")
    z = np.asarray(embeddings, dtype="float64")[labelled]
    targets = targets[labelled]
    mean, std = z.mean(axis=0), z.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant feature is only centred
    z = ((z - mean) / std).astype("float32")
    kernel, bias = (np.asarray(w, dtype="float64") for w in layer.get_weights())
    rows = len(z)
    head = keras.Sequential(
        [
            keras.Input((z.shape[1],)),
            keras.layers.Dense(
                kernel.shape[1], kernel_regularizer=keras.regularizers.L2(0.5 / rows)
            ),
        ]
    )
    # The same function of the embedding, in the standardised basis.
    head.layers[0].set_weights([kernel * std[:, None], bias + mean @ kernel])
    loss = (
        keras.losses.BinaryCrossentropy(from_logits=True)
        if multi_hot
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    head.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    weights = None if sample_weight is None else np.asarray(sample_weight, "float32")[labelled]
    initial = penalised_loss(head, z, targets, weights, multi_hot)
    head.fit(RowBatches(z, targets, weights, steps, min(rows, batch_size)), verbose=0)
    final = penalised_loss(head, z, targets, weights, multi_hot)
    kernel, bias = (np.asarray(w, dtype="float64") for w in head.layers[0].get_weights())
    layer.set_weights([kernel / std[:, None], bias - (mean / std) @ kernel])
    return {"initial_loss": initial, "loss": final}


def fit_classifier(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    steps: int = 1000,
    batch_size: int = 8192,
    learning_rate: float = 0.05,
) -> dict[str, dict[str, float]]:
    """Refits every classifier of `model` on its frozen encoder (see module doc).

    Args:
        model: a built `ContrastiveModel` with a `classifier`.
        x: the training inputs (as `predict` takes them; not augmented).
        y: their labels, as `fit` takes them (class names included).
        sample_weight: optional `(N,)` weights of the samples.
        steps: Adam steps per level. Defaults to 1000.
        batch_size: rows per step (all rows, up to it). Defaults to 8192.
        learning_rate: Adam's initial learning rate, decayed to 0 along a
            cosine over the steps. Defaults to 0.05.

    Returns:
        `{level: {"initial_loss", "loss"}}`, the penalised training loss of
        each classifier before and after.
    """
    if not model.classifier:
        raise ValueError(
            "`fit_classifier` needs a model with a `classifier` ({level: num_classes}); "
            "this one has none."
        )
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` should be positive. Received: {learning_rate!r}")
    labels = model.split_labels(model.labels_as_ids(y))[1]
    embeddings = model.embed(x)
    weights = None if sample_weight is None else np.reshape(np.asarray(sample_weight), (-1,))
    losses: Mapping[str, dict[str, float]] = {
        level: refit_level(
            model.classifier_layers[level],
            embeddings,
            labels[level],
            weights,
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            level=level,
        )
        for level in model.classifier
    }
    return dict(losses)
