"""Quality benchmark: every method trained alike, scored per label level on the test split.

Every method gets the same default encoder, views, optimiser (Adam), learning rate, epochs and
batch size (`keras_mlcl.experiments.train_and_evaluate`); only the objective changes. Each
method's hyper-parameters (temperatures, head weights, joint cross-entropy weight) are chosen
from a grid on a validation split carved from the training samples, never from the test split.
A level's headline figure is the test accuracy of a linear probe on the frozen encoder, or its
macro-F1 for a multi-hot level (each label's threshold chosen on rows held out from training),
as mean and standard deviation over seeds; the micro-F1 and mAP of multi-hot levels, and the
test figures of the classifier of `ce`, `bce` and every `+ce` method, come beside it. The `raw`
row is the same probe on the preprocessed inputs, untrained.

Host-side NumPy throughout: the bench orchestrates runs, the backends train. The grid and the
run settings are in `keras_mlcl.bench.grid`, the selection in `keras_mlcl.bench.selection`, the
Markdown and the plot in `keras_mlcl.bench.report`.
"""

import dataclasses
import datetime
import json
import os
import time
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from keras_mlcl.bench.grid import RAW
from keras_mlcl.bench.grid import candidate_arguments
from keras_mlcl.bench.grid import check_epochs
from keras_mlcl.bench.grid import check_fractions
from keras_mlcl.bench.grid import check_methods
from keras_mlcl.bench.grid import check_seeds
from keras_mlcl.bench.grid import fraction_key
from keras_mlcl.bench.grid import parse_grid
from keras_mlcl.bench.machine import command_line
from keras_mlcl.bench.machine import machine_description
from keras_mlcl.bench.report import plot_quality_results
from keras_mlcl.bench.report import write_quality_markdown
from keras_mlcl.bench.selection import VALIDATION_FRACTION
from keras_mlcl.bench.selection import select_hyperparameters
from keras_mlcl.bench.text_features import tfidf_features
from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import load_dataset
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.evaluation import probe_scores
from keras_mlcl.experiments.encoders import DEFAULT_ENCODER_WIDTH
from keras_mlcl.experiments.encoders import Preprocessing
from keras_mlcl.experiments.encoders import input_kind
from keras_mlcl.experiments.run_folder import run_folder
from keras_mlcl.experiments.runner import headline
from keras_mlcl.experiments.runner import probe_split
from keras_mlcl.experiments.runner import test_split_of
from keras_mlcl.experiments.runner import threshold_split
from keras_mlcl.experiments.runner import train_and_evaluate
from keras_mlcl.utils.validation import check_choice

TEXT_FEATURES = ("tfidf", "encoder")
TEST_FRACTION = 0.2


def summarize(values: Iterable[float]) -> dict[str, Any]:
    """`{"mean", "std", "runs"}` of per-seed scores (sample std, 0 for a single run)."""
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {
        "mean": round(float(np.mean(values)), 4),
        "std": round(std, 4),
        "runs": [round(v, 4) for v in values],
    }


def level_metrics(dataset: LabeledDataset) -> dict[str, str]:
    """`{level: "accuracy" | "macro-F1"}`: the headline figure of each level."""
    return {
        level: "macro-F1" if dataset.is_multi_hot(level) else "accuracy" for level in dataset.levels
    }


def raw_run(
    dataset: LabeledDataset, fraction: float, seed: int, validation_fraction: float | None
) -> dict[str, Any]:
    """The `raw` baseline: the linear probe on the preprocessed inputs, flattened, untrained.

    The rows are those `train_and_evaluate` uses with the same arguments (the fraction's
    subsample, and the threshold rows of a multi-hot level), so the figures compare.

    Returns:
        `{"linear_probe", "probe_metrics", "classifier"}` as in a `train_and_evaluate` run.
    """
    dataset, _, _ = probe_split(dataset, fraction, seed)
    dataset, validation = threshold_split(dataset, validation_fraction, seed)
    preprocessing = Preprocessing(input_kind(dataset.x))
    x_test, test_labels = test_split_of(dataset)

    def inputs(x: Any) -> np.ndarray:
        return preprocessing(x).reshape(len(x), -1)

    metrics = probe_scores(
        inputs(dataset.x),
        dataset.labels,
        inputs(x_test),
        test_labels,
        val_embeddings=None if validation is None else inputs(validation.x),
        val_labels=None if validation is None else validation.labels,
    )
    probe = {level: headline(values) for level, values in metrics.items()}
    return {"linear_probe": probe, "probe_metrics": metrics, "classifier": {}}


def summarize_runs(
    runs: Sequence[dict[str, Any]], levels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """`{level: entry}` over seeds: the probe's headline `summarize`d, with `metrics` (every
    probe figure) and, for a level with a classifier, `classifier` (its headline and
    `metrics`)."""
    entries = {}
    for level in levels:
        entry = summarize([run["linear_probe"][level] for run in runs])
        names = runs[0]["probe_metrics"][level]
        entry["metrics"] = {
            name: summarize([run["probe_metrics"][level][name] for run in runs]) for name in names
        }
        if level in runs[0]["classifier"]:
            own = [run["classifier"][level] for run in runs]
            entry["classifier"] = summarize([headline(values) for values in own])
            entry["classifier"]["metrics"] = {
                name: summarize([values[name] for values in own]) for name in own[0]
            }
        entries[level] = entry
    return entries


def run_quality_bench(
    data: str | os.PathLike[str] | LabeledDataset,
    methods: str | Sequence[str] | None,
    fractions: Sequence[float] = (0.1, 1.0),
    seeds: int | Sequence[int] = 3,
    epochs: int | Mapping[float, int] = 15,
    out: str | os.PathLike[str] | None = None,
    grid: dict[str, dict[str, Any]] | str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    verbose: int = 0,
    batch_size: int = 256,
    views: int = 2,
    learning_rate: float = 1e-3,
    validation_fraction: float = VALIDATION_FRACTION,
    text_features: str = "tfidf",
    command: str | None = None,
    overwrite: bool = False,
    protected: Sequence[str | None] = (),
) -> dict[str, dict[str, Any]]:
    """Benchmarks methods on a dataset: test score per level, mean and std over seeds.

    For each fraction, each method's hyper-parameters are first chosen on a validation split
    of the (stratified) training subsample of the first seed (`select_hyperparameters`); then
    the method is trained with them once per seed (a seed draws the subsample, the initial
    weights and the views) and scored on the test split. Every run uses the same default
    encoder, views, optimiser, epochs and batch size (`train_and_evaluate`).

    Writes, when `out` is given, `out/results.json` (the returned dict), `out/meta.json` (the
    grid, the chosen hyper-parameters and their validation scores, the settings, the machine,
    the date and the command), `out/results.md` (tables) and `out/results.png` (bars).

    Args:
        data: a dataset name or `.npz` path (`keras_mlcl.data.load_dataset`), or a
            `LabeledDataset`. Without a test split a stratified 20% is held out (seed 0, the
            same for every run).
        methods: method names (list, or comma-separated text); `None` for `default_methods`.
            `raw` (the probe on the inputs) comes first, named or not.
        fractions: training fractions in (0, 1]. Defaults to `(0.1, 1.0)`.
        seeds: number of seeds (0, 1, ...) or a list of seeds. Defaults to 3.
        epochs: training epochs, an int or `{fraction: epochs}`. Defaults to 15.
        out: the output folder, or `None` to write nothing.
        grid: `{method: {parameter: [values]}}` (or JSON text), see `parse_grid`; `None` for
            `DEFAULT_GRID`; `{}` for no tuning.
        data_dir: the folder holding the named datasets.
        verbose: 0 silent; 1 Keras progress bars and a line per run; 2 one line per epoch.
        batch_size: training batch size. Defaults to 256.
        views: views per sample of the contrastive methods. Defaults to 2.
        learning_rate: Adam's learning rate. Defaults to 1e-3.
        validation_fraction: share of the training subsample held out to choose the
            hyper-parameters, in (0, 1), and, on data with a multi-hot level, the share of each
            run's training rows held out to choose the labels' decision thresholds. Defaults
            to 0.2.
        text_features: for text inputs, `"tfidf"` (TF-IDF + SVD vectors, `tfidf_features`, and
            the MLP encoder) or `"encoder"` (the default keras-hub text encoder).
        command: the command line recorded in `meta.json`; defaults to `sys.argv`.
        overwrite: whether a finished earlier bench in `out` may be replaced (`out` is written
            beside, then swapped in: see `keras_mlcl.experiments.run_folder`).
        protected: paths `out` must not contain (the input data).

    Returns:
        `{method: {fraction: {level: entry}}}`, fractions written as text (`"0.1"`, `"1.0"`);
        an entry is the probe's headline `{"mean", "std", "runs"}` with `metrics` (every
        probe figure: accuracy; macro-F1, micro-F1 and mAP of a multi-hot level, each
        `{"mean", "std", "runs"}`) and, for `ce`, `bce` and `+ce` methods on the level they
        classify, `classifier` (the same for the classifier's own outputs).

    Example (minutes of training; tests/bench/test_quality.py runs small ones):

    ```python
    results = run_quality_bench("fashion_mnist", ["ce", "mlcl"], fractions=[0.1],
                                seeds=2, epochs=5, out="bench/fashion_mnist")
    results["mlcl"]["0.1"]["fine"]["mean"]  # test accuracy, mean of 2 seeds
    ```
    """
    started = time.time()
    if isinstance(data, LabeledDataset):
        dataset = data
    else:
        dataset = load_dataset(data, data_dir=data_dir)
    methods = check_methods(methods, dataset)
    fractions = check_fractions(fractions)
    seeds = check_seeds(seeds)
    epochs = check_epochs(epochs, fractions)
    grid, candidates = parse_grid(grid, methods)
    text_features = check_choice("text_features", text_features, TEXT_FEATURES)
    kind = input_kind(dataset.x)
    widths = {c["encoder_width"] for m in methods for c in candidates[m] if "encoder_width" in c}
    if (kind == "image" or text_features == "encoder" and kind == "text") and widths - {
        DEFAULT_ENCODER_WIDTH
    }:
        raise ValueError(
            "`grid`'s `encoder_width` applies to the MLP of feature vectors (and of texts as "
            f"TF-IDF vectors); {dataset.name!r} gets the {kind} encoder. Received widths "
            f"{sorted(widths)}"
        )
    if not 0 < validation_fraction < 1:
        raise ValueError(
            "`validation_fraction` should be in (0, 1). "
            f"Received: `validation_fraction`={validation_fraction!r}"
        )
    writing = (
        nullcontext() if out is None else run_folder(out, "bench quality", overwrite, protected)
    )
    with writing as folder:
        test_split = "given"
        if not dataset.has_test:
            dataset = train_test_split(dataset, test_fraction=TEST_FRACTION, seed=0)
            test_split = f"held out: stratified {TEST_FRACTION:g} of the training data (seed 0)"
        dataset = dataclasses.replace(dataset, x_val=None, val_labels=None)
        inputs = "as given"
        if np.asarray(dataset.x).dtype.kind in "USO":
            if text_features == "tfidf":
                dataset = tfidf_features(dataset)
                inputs = (
                    f"text as TF-IDF (word 1-2 grams) + SVD to {dataset.x.shape[1]} dimensions, "
                    "fitted on the training texts; MLP encoder"
                )
            else:
                inputs = "text, keras-hub transformer encoder"
        # Text runs with the transformer still get `raw` on TF-IDF vectors: strings are no input
        # to a linear probe.
        raw_data = tfidf_features(dataset) if input_kind(dataset.x) == "text" else dataset
        training: dict[str, Any] = {
            "batch_size": batch_size,
            "views": views,
            "learning_rate": learning_rate,
        }
        results: dict[str, dict[str, Any]] = {method: {} for method in methods}
        chosen: dict[str, dict[str, Any]] = {method: {} for method in methods}
        train_sizes = {}
        total = len(methods) * len(fractions) * len(seeds)
        done = 0
        for fraction in fractions:
            key = fraction_key(fraction)
            training_only = dataclasses.replace(
                subsample(dataset, fraction, seed=seeds[0]), x_test=None, test_labels=None
            )
            train_sizes[key] = int(len(training_only.x))
            for method in methods:
                if method == RAW:
                    runs = [raw_run(raw_data, fraction, s, validation_fraction) for s in seeds]
                    results[method][key] = summarize_runs(runs, dataset.levels)
                    chosen[method][key] = {"params": {}, "trials": []}
                    done += len(seeds)
                    if verbose:
                        print(f"[{done}/{total}] raw, fraction {key}: done", flush=True)
                    continue
                params, trials = select_hyperparameters(
                    training_only,
                    method,
                    candidates[method],
                    epochs[fraction],
                    seed=seeds[0],
                    validation_fraction=validation_fraction,
                    verbose=verbose,
                    **training,
                )
                chosen[method][key] = {"params": params, "trials": trials}
                runs = []
                for seed in seeds:
                    run = train_and_evaluate(
                        dataset,
                        method=method,
                        epochs=epochs[fraction],
                        fraction=fraction,
                        seed=seed,
                        out=None,
                        verbose=verbose,
                        validation_fraction=validation_fraction,
                        **candidate_arguments(params),
                        **training,
                    )
                    runs.append(run)
                    done += 1
                    if verbose:
                        figures = ", ".join(
                            f"{lvl} {s:.3f}" for lvl, s in run["linear_probe"].items()
                        )
                        print(
                            f"[{done}/{total}] {method}, fraction {key}, seed {seed}: "
                            f"{figures} ({run['train_seconds']:.0f} s)",
                            flush=True,
                        )
                results[method][key] = summarize_runs(runs, dataset.levels)
        meta = {
            "dataset": dataset.name,
            "levels": dataset.levels,
            "level_metrics": level_metrics(dataset),
            "methods": methods,
            "fractions": [fraction_key(f) for f in fractions],
            "seeds": seeds,
            "epochs": {fraction_key(f): e for f, e in epochs.items()},
            "batch_size": batch_size,
            "views": views,
            "learning_rate": learning_rate,
            "validation_fraction": validation_fraction,
            "grid": grid,
            "chosen": chosen,
            "selection": "per method and fraction, on a stratified validation split of the "
            "first seed's training subsample; score = mean over levels of the validation "
            "linear-probe figure (accuracy, or mAP for a multi-hot level); the test split is "
            "not used",
            "thresholds": f"multi-hot levels: each run holds out {validation_fraction:g} of its "
            "training rows (at random when every level is multi-hot; the training samples "
            "below are counted before), on which each label's decision threshold (probe and "
            "classifier) is chosen to maximise its F1"
            if any(dataset.is_multi_hot(level) for level in dataset.levels)
            else "none (no multi-hot level)",
            "inputs": inputs,
            "test_split": test_split,
            "train_sizes": train_sizes,
            "test_size": int(len(dataset.x_test)),
            "machine": machine_description(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command if command is not None else command_line(),
            "seconds": round(time.time() - started, 1),
        }
        if folder is None:
            return results
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
        write_quality_markdown(results, meta, os.path.join(folder, "results.md"))
        plot_quality_results(results, meta, os.path.join(folder, "results.png"))
        return results
