"""Hyper-parameter selection on a validation split of the training samples only."""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_mlcl.bench.grid import candidate_arguments
from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import validation_split
from keras_mlcl.experiments.runner import train_and_evaluate

VALIDATION_FRACTION = 0.2


def selection_figure(metrics: Mapping[str, float]) -> float:
    """A level's figure for the selection: its accuracy, or the mAP of a multi-hot level.

    mAP needs no decision threshold, so a small validation split does not have to be split
    again to choose one.
    """
    return metrics["accuracy"] if "accuracy" in metrics else metrics["map"]


def select_hyperparameters(
    dataset: LabeledDataset,
    method: str,
    candidates: Sequence[dict[str, float]],
    epochs: int,
    seed: int = 0,
    validation_fraction: float = VALIDATION_FRACTION,
    verbose: int | str = 0,
    **training: Any,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Chooses `method`'s candidate with the best validation score.

    A stratified `validation_fraction` of `dataset` is held out; each candidate is trained on
    the rest and its frozen encoder scored on the held-out part (linear probe per level, as on
    test: accuracy, or mAP for a multi-hot level, `selection_figure`). The score is the mean
    over levels; ties go to the earlier candidate.

    Args:
        dataset: the training samples only: a `LabeledDataset` without a test split.
        method: a method name.
        candidates: list of dicts of grid parameters (see `parse_grid`).
        epochs: training epochs of each candidate.
        seed: seeds the split, the weights and the views. Defaults to 0.
        validation_fraction: share held out for validation, in (0, 1). Defaults to 0.2.
        verbose: Keras' `fit` verbosity. Defaults to 0.
        **training: further `train_and_evaluate` arguments (`batch_size`, `views`,
            `learning_rate`).

    Returns:
        `(best, trials)`: the chosen dict of parameters, and one
        `{"params", "validation", "score"}` dict per candidate (empty when there is only one
        candidate, which is then chosen without training).
    """
    if dataset.has_test:
        raise ValueError(
            "`dataset` should hold training samples only: hyper-parameters are chosen on a "
            f"validation split of them. Received a dataset with {len(dataset.x_test)} test "
            "samples; drop them (`x_test=None`, `test_labels=None`) first."
        )
    if not candidates:
        raise ValueError(f"`candidates` should list at least one candidate for {method!r}.")
    if len(candidates) == 1:
        return dict(candidates[0]), []
    fit, validation = validation_split(dataset, fraction=validation_fraction, seed=seed)
    held_out = LabeledDataset(
        x=fit.x,
        labels=fit.labels,
        x_test=validation.x,
        test_labels=validation.labels,
        name=f"{dataset.name}_selection",
        class_names=dataset.class_names,
    )
    trials = []
    for params in candidates:
        run = train_and_evaluate(
            held_out,
            method=method,
            epochs=epochs,
            fraction=1.0,
            seed=seed,
            out=None,
            verbose=verbose,
            **candidate_arguments(params),
            **training,
        )
        scores = {level: selection_figure(m) for level, m in run["probe_metrics"].items()}
        trials.append(
            {
                "params": dict(params),
                "validation": {level: round(float(s), 4) for level, s in scores.items()},
                "score": round(float(np.mean(list(scores.values()))), 4),
            }
        )
    best = max(range(len(trials)), key=lambda i: (trials[i]["score"], -i))
    return dict(candidates[best]), trials
