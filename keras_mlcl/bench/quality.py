"""Quality benchmark: every method trained alike, scored per label level on the test split.

Every method gets the same default encoder, views, optimiser (Adam), learning rate, epochs and
batch size (`keras_mlcl.experiments.train_and_evaluate`); only the objective changes. Each
method's hyper-parameters (temperatures, head weights, joint cross-entropy weight) are chosen
from a grid on a validation split carved from the training samples, never from the test split.
A level's figure is the test accuracy of a linear probe on the frozen encoder, or its macro-F1
for a multi-hot level, as mean and standard deviation over seeds.

Host-side NumPy throughout: the bench orchestrates runs, the backends train.
"""

import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
import shlex
import sys
import time
from contextlib import nullcontext

import keras
import numpy as np

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import load_dataset
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.data import validation_split
from keras_mlcl.experiments.methods import check_method_for_dataset
from keras_mlcl.experiments.methods import parse_method
from keras_mlcl.experiments.run_folder import run_folder
from keras_mlcl.experiments.runner import train_and_evaluate
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

HIERARCHY_METHODS = ("ce", "supcon", "mlcl", "himulcon", "supcon+ce", "mlcl+ce")
MULTI_LABEL_METHODS = ("bce", "supcon-any", "jaccard", "simdis", "supcon-any+ce", "jaccard+ce")

# Grid parameters and the methods they apply to: `temperature` (the finest, or only, head),
# `coarse_temperature` / `coarse_weight` (the heads of the coarser levels, `mlcl` only) and
# `ce_weight` (the joint cross-entropy of `<method>+ce`).
GRID_PARAMETERS = ("temperature", "coarse_temperature", "coarse_weight", "ce_weight")
DEFAULT_TEMPERATURE = 0.1

# The default grid: two candidates a method, where tuning paid off in our runs (see
# docs/benchmarks.md). Methods missing here run with the `build_model` defaults.
DEFAULT_GRID = {
    "supcon": {"temperature": [0.1, 0.2]},
    "mlcl": {"coarse_weight": [0.5, 1.0]},
    "himulcon": {"temperature": [0.1, 0.2]},
    "supcon+ce": {"ce_weight": [0.5, 1.0]},
    "mlcl+ce": {"ce_weight": [0.5, 1.0]},
    "supcon-any": {"temperature": [0.1, 0.2]},
    "jaccard": {"temperature": [0.1, 0.2]},
    "simdis": {"temperature": [0.1, 0.2]},
    "supcon-any+ce": {"ce_weight": [0.5, 1.0]},
    "jaccard+ce": {"ce_weight": [0.5, 1.0]},
}
VALIDATION_FRACTION = 0.2
TEXT_FEATURES = ("tfidf", "encoder")
TEXT_FEATURE_DIM = 256
TEST_FRACTION = 0.2


def default_methods(dataset):
    """The methods benchmarked by default: hierarchy methods, or multi-label ones.

    Args:
        dataset: a `LabeledDataset`.

    Returns:
        `HIERARCHY_METHODS` when every level holds class ids, else `MULTI_LABEL_METHODS`.
    """
    if any(dataset.is_multi_hot(level) for level in dataset.levels):
        return list(MULTI_LABEL_METHODS)
    return list(HIERARCHY_METHODS)


def grid_parameters(method):
    """The grid parameters that apply to `method` (e.g. `mlcl+ce` takes all four)."""
    base, joint = parse_method(method)
    names = [] if base in ("ce", "bce") else ["temperature"]
    if base == "mlcl":
        names += ["coarse_temperature", "coarse_weight"]
    if joint:
        names.append("ce_weight")
    return names


def parse_grid(grid, methods):
    """Checks a grid and lists each method's candidates.

    Args:
        grid: dict `{method: {parameter: [values]}}` (or its JSON text); parameters among
            `GRID_PARAMETERS`, each applying to the methods `grid_parameters` names. Methods
            of the grid that are not benchmarked are ignored. `None` means `DEFAULT_GRID`.
        methods: the method names benchmarked.

    Returns:
        `(grid, candidates)`: the grid as a plain dict of lists, and
        `{method: [dict of parameter values, ...]}`, the Cartesian product of the method's
        lists in the order given (`[{}]`, the defaults, for a method the grid leaves out).

    Example:

    >>> parse_grid({"mlcl": {"temperature": [0.1, 0.2]}}, ["ce", "mlcl"])[1]
    {'ce': [{}], 'mlcl': [{'temperature': 0.1}, {'temperature': 0.2}]}
    """
    if grid is None:
        grid = DEFAULT_GRID
    if isinstance(grid, str):
        try:
            grid = json.loads(grid)
        except json.JSONDecodeError as error:
            raise ValueError(
                "`grid` should be a dict {method: {parameter: [values]}} or its JSON text. "
                f"Received text that is not JSON ({error.msg}): {grid!r}"
            ) from None
    if not isinstance(grid, dict):
        raise ValueError(
            "`grid` should be a dict {method: {parameter: [values]}}. "
            f"Received: `grid`={grid!r}"
        )
    checked = {}
    for method, parameters in grid.items():
        allowed = grid_parameters(method)
        if not isinstance(parameters, dict):
            raise ValueError(
                f"`grid[{method!r}]` should be a dict {{parameter: [values]}}. "
                f"Received: {parameters!r}"
            )
        checked[method] = {}
        for name, values in parameters.items():
            if name not in allowed:
                raise ValueError(
                    f"`grid[{method!r}]` should only set parameters of that method "
                    f"({', '.join(allowed) or 'none'}). Received: {name!r}"
                )
            if isinstance(values, (int, float)) and not isinstance(values, bool):
                values = [values]
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(
                    f"`grid[{method!r}][{name!r}]` should be a non-empty list of numbers. "
                    f"Received: {values!r}"
                )
            numbers = []
            for value in values:
                positive = name != "coarse_weight"
                valid = isinstance(value, (int, float)) and not isinstance(value, bool)
                valid = valid and math.isfinite(value) and (value > 0 if positive else value >= 0)
                if not valid:
                    kind = "positive" if positive else "non-negative"
                    raise ValueError(
                        f"`grid[{method!r}][{name!r}]` should hold {kind} numbers. "
                        f"Received: {value!r}"
                    )
                numbers.append(float(value))
            checked[method][name] = numbers
    candidates = {}
    for method in methods:
        parameters = checked.get(method, {})
        names = list(parameters)
        candidates[method] = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(parameters[name] for name in names))
        ]
    return checked, candidates


def tfidf_features(dataset, dim=TEXT_FEATURE_DIM, seed=0):
    """Text inputs turned into TF-IDF vectors reduced to `dim` dimensions by a truncated SVD.

    The vectoriser (word unigrams and bigrams, sublinear term frequency) and the SVD are fitted
    on the training texts only (no labels); the test and validation texts are transformed.

    Args:
        dataset: a `LabeledDataset` whose inputs are strings.
        dim: the feature size. Defaults to 256.
        seed: seed of the randomized SVD. Defaults to 0.

    Returns:
        A new `LabeledDataset` whose inputs are float32 arrays `(N, dim)` (fewer columns when
        the vocabulary is smaller than `dim`).

    Example:

    >>> data = LabeledDataset(x=np.array(["a cat", "a dog", "stocks fell", "bonds fell"]),
    ...                       labels={"label": [0, 0, 1, 1]})
    >>> tfidf_features(data, dim=2).x.shape
    (4, 2)
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    dim = check_positive_int("dim", dim)
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    counts = vectorizer.fit_transform([str(text) for text in dataset.x])
    svd = TruncatedSVD(n_components=max(1, min(dim, counts.shape[1] - 1)), random_state=seed)
    svd.fit(counts)

    def transform(texts):
        if texts is None:
            return None
        return svd.transform(vectorizer.transform([str(t) for t in texts])).astype("float32")

    return dataclasses.replace(
        dataset,
        x=transform(dataset.x),
        x_test=transform(dataset.x_test),
        x_val=transform(dataset.x_val),
    )


def _training_arguments(params):
    """Splits a candidate into `train_and_evaluate`'s `temperature` and `model_options`."""
    options = {name: value for name, value in params.items() if name != "temperature"}
    return params.get("temperature", DEFAULT_TEMPERATURE), options


def select_hyperparameters(
    dataset,
    method,
    candidates,
    epochs,
    seed=0,
    validation_fraction=VALIDATION_FRACTION,
    verbose=0,
    **training,
):
    """Chooses `method`'s candidate with the best validation score.

    A stratified `validation_fraction` of `dataset` is held out; each candidate is trained on
    the rest and its frozen encoder scored on the held-out part (linear probe per level, as on
    test). The score is the mean over levels; ties go to the earlier candidate.

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
        temperature, options = _training_arguments(params)
        run = train_and_evaluate(
            held_out,
            method=method,
            epochs=epochs,
            fraction=1.0,
            seed=seed,
            temperature=temperature,
            model_options=options,
            out=None,
            verbose=verbose,
            **training,
        )
        scores = run["linear_probe"]
        trials.append(
            {
                "params": dict(params),
                "validation": {level: round(float(s), 4) for level, s in scores.items()},
                "score": round(float(np.mean(list(scores.values()))), 4),
            }
        )
    best = max(range(len(trials)), key=lambda i: (trials[i]["score"], -i))
    return dict(candidates[best]), trials


def summarize(values):
    """`{"mean", "std", "runs"}` of per-seed scores (sample std, 0 for a single run)."""
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {
        "mean": round(float(np.mean(values)), 4),
        "std": round(std, 4),
        "runs": [round(v, 4) for v in values],
    }


def _fraction_key(fraction):
    return repr(float(fraction))


def _check_fractions(fractions):
    if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    if isinstance(fractions, str):
        fractions = [part for part in fractions.split(",") if part.strip()]
    checked = []
    for value in list(fractions or []):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not 0 < number <= 1:
            raise ValueError(
                f"`fractions` should be in (0, 1]. Received: `fractions`={fractions!r}"
            )
        if number not in checked:
            checked.append(number)
    if not checked:
        raise ValueError(f"`fractions` should list at least one fraction. Received: {fractions!r}")
    return checked


def _check_seeds(seeds):
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(check_positive_int("seeds", seeds)))
    if isinstance(seeds, (list, tuple)) and seeds:
        if all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            return list(dict.fromkeys(seeds))
    raise ValueError(
        "`seeds` should be a positive int (that many seeds, 0, 1, ...) or a list of "
        f"non-negative int seeds. Received: `seeds`={seeds!r}"
    )


def _check_epochs(epochs, fractions):
    """`{fraction: epochs}` from an int, or from a dict with one entry per fraction."""
    if isinstance(epochs, dict):
        by_fraction = {float(k): v for k, v in epochs.items()}
        missing = [f for f in fractions if f not in by_fraction]
        if missing:
            raise ValueError(
                f"`epochs` should be an int, or a dict with one entry per fraction {fractions}. "
                f"Received: `epochs`={epochs!r}"
            )
        return {f: check_positive_int("epochs", by_fraction[f]) for f in fractions}
    return {f: check_positive_int("epochs", epochs) for f in fractions}


def _check_methods(methods, dataset):
    if methods is None:
        return default_methods(dataset)
    if isinstance(methods, str):
        methods = [part.strip() for part in methods.split(",") if part.strip()]
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError(f"`methods` should name at least one method. Received: {methods!r}")
    for method in methods:
        check_method_for_dataset(method, dataset)
    return methods


def command_line():
    """This process's command line, as a shell would take it (`keras-mlcl ...` for the CLI)."""
    argv = list(sys.argv) or ["python"]
    if os.path.basename(argv[0]) in ("keras-mlcl", "__main__.py"):
        return shlex.join(["keras-mlcl", *argv[1:]])
    return shlex.join(argv)


def machine_description():
    """A dict describing the machine and software of this run."""
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "processor": processor,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def level_metrics(dataset):
    """`{level: "accuracy" | "macro-F1"}`: the figure reported for each level."""
    return {
        level: "macro-F1" if dataset.is_multi_hot(level) else "accuracy" for level in dataset.levels
    }


def results_table(results, meta):
    """The results as Markdown: one row per method, `mean ± std` per fraction and level.

    The best mean of each column is in bold.

    Args:
        results: the `run_quality_bench` results.
        meta: the run's metadata (as written to `meta.json`).

    Returns:
        A Markdown string.
    """
    levels = meta["levels"]
    fractions = list(next(iter(results.values())))
    columns = [(fraction, level) for fraction in fractions for level in levels]
    best = {
        column: max(results[m][column[0]][column[1]]["mean"] for m in results) for column in columns
    }
    header = [f"{level} @ {fraction}" for fraction, level in columns]
    lines = [
        "| method | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for method, by_fraction in results.items():
        cells = []
        for fraction, level in columns:
            entry = by_fraction[fraction][level]
            cell = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
            cells.append(f"**{cell}**" if entry["mean"] == best[(fraction, level)] else cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _chosen_table(meta):
    lines = ["| method | fraction | chosen | validation score per candidate |", "|---|---|---|---|"]
    for method, by_fraction in meta["chosen"].items():
        for fraction, record in by_fraction.items():
            chosen = ", ".join(f"{k}={v:g}" for k, v in record["params"].items()) or "defaults"
            trials = "; ".join(
                (", ".join(f"{k}={v:g}" for k, v in t["params"].items()) or "defaults")
                + f": {t['score']:.3f}"
                for t in record["trials"]
            )
            lines.append(f"| {method} | {fraction} | {chosen} | {trials or '(no grid)'} |")
    return "\n".join(lines)


def write_markdown(results, meta, path):
    """Writes `results.md`: the settings, the results table and the chosen hyper-parameters."""
    metrics = ", ".join(f"{level}: {metric}" for level, metric in meta["level_metrics"].items())
    machine = meta["machine"]
    counts = sorted(set(meta["epochs"].values()))
    epochs = (
        str(counts[0])
        if len(counts) == 1
        else ", ".join(f"{e} at fraction {f}" for f, e in meta["epochs"].items())
    )
    text = [
        f"# Quality benchmark: {meta['dataset']}",
        "",
        f"Test figure per level ({metrics}) of a linear probe on the frozen encoder, "
        f"mean ± std over seeds {meta['seeds']}.",
        "",
        results_table(results, meta),
        "",
        f"- Inputs: {meta['inputs']}; test split: {meta['test_split']}; training samples "
        f"per fraction: {meta['train_sizes']}.",
        f"- Training, the same for every method: epochs {epochs}, batch {meta['batch_size']}, "
        f"{meta['views']} views, Adam learning rate {meta['learning_rate']}.",
        f"- Hyper-parameters chosen on a stratified {meta['validation_fraction']:g} validation "
        "split of each fraction's training samples (seed "
        f"{meta['seeds'][0]}), by the mean validation score over levels; grid: "
        f"`{json.dumps(meta['grid'])}`.",
        f"- Backend {machine['backend']} (Keras {machine['keras']}), {machine['processor']}, "
        f"{machine['cpu_count']} CPUs; {meta['date']}; {meta['seconds']:.0f} s.",
        f"- Command: `{meta['command']}`",
        "",
        "## Chosen hyper-parameters",
        "",
        _chosen_table(meta),
        "",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(text))


def plot_results(results, meta, path):
    """Writes a PNG: one panel per level, bars per method and fraction, std as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    levels = meta["levels"]
    methods = list(results)
    fractions = list(next(iter(results.values())))
    figure = Figure(figsize=(4.2 * len(levels) + 1.5, 3.6), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(levels), squeeze=False)[0]
    width = 0.8 / len(methods)
    positions = np.arange(len(fractions))
    colors = [f"C{i % 10}" for i in range(len(methods))]
    for axis, level in zip(axes, levels, strict=True):
        lowest = 1.0
        for i, method in enumerate(methods):
            means = [results[method][f][level]["mean"] for f in fractions]
            stds = [results[method][f][level]["std"] for f in fractions]
            lowest = min(lowest, *(m - s for m, s in zip(means, stds, strict=True)))
            axis.bar(
                positions + (i - (len(methods) - 1) / 2) * width,
                means,
                width,
                yerr=stds,
                capsize=2,
                label=method,
                color=colors[i],
            )
        axis.set_xticks(positions, [f"fraction {f}" for f in fractions])
        axis.set_ylim(max(0.0, lowest - 0.05), 1.0)
        axis.set_title(f"{level} ({meta['level_metrics'][level]})")
        axis.grid(axis="y", alpha=0.3)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    figure.suptitle(f"{meta['dataset']}: linear probe on the frozen encoder, test split")
    figure.savefig(path, format="png", dpi=110)


def run_quality_bench(
    data,
    methods,
    fractions=(0.1, 1.0),
    seeds=3,
    epochs=15,
    out=None,
    grid=None,
    data_dir=None,
    verbose=0,
    batch_size=256,
    views=2,
    learning_rate=1e-3,
    validation_fraction=VALIDATION_FRACTION,
    text_features="tfidf",
    command=None,
    overwrite=False,
    protected=(),
):
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
            hyper-parameters, in (0, 1). Defaults to 0.2.
        text_features: for text inputs, `"tfidf"` (TF-IDF + SVD vectors, `tfidf_features`, and
            the MLP encoder) or `"encoder"` (the default keras-hub text encoder).
        command: the command line recorded in `meta.json`; defaults to `sys.argv`.
        overwrite: whether a finished earlier bench in `out` may be replaced (`out` is written
            beside, then swapped in: see `keras_mlcl.experiments.run_folder`).
        protected: paths `out` must not contain (the input data).

    Returns:
        `{method: {fraction: {level: {"mean": float, "std": float, "runs": [float, ...]}}}}`,
        fractions written as text (`"0.1"`, `"1.0"`).

    Example:

    >>> results = run_quality_bench("fashion_mnist", ["ce", "mlcl"], fractions=[0.1],
    ...                             seeds=2, epochs=5, out="bench/fashion_mnist")
    >>> results["mlcl"]["0.1"]["fine"]["mean"]  # test accuracy, mean of 2 seeds
    """
    started = time.time()
    if isinstance(data, LabeledDataset):
        dataset = data
    else:
        dataset = load_dataset(data, data_dir=data_dir)
    methods = _check_methods(methods, dataset)
    fractions = _check_fractions(fractions)
    seeds = _check_seeds(seeds)
    epochs = _check_epochs(epochs, fractions)
    grid, candidates = parse_grid(grid, methods)
    text_features = check_choice("text_features", text_features, TEXT_FEATURES)
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
        training = {"batch_size": batch_size, "views": views, "learning_rate": learning_rate}
        results = {method: {} for method in methods}
        chosen = {method: {} for method in methods}
        train_sizes = {}
        total = len(methods) * len(fractions) * len(seeds)
        done = 0
        for fraction in fractions:
            key = _fraction_key(fraction)
            training_only = dataclasses.replace(
                subsample(dataset, fraction, seed=seeds[0]), x_test=None, test_labels=None
            )
            train_sizes[key] = int(len(training_only.x))
            for method in methods:
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
                temperature, options = _training_arguments(params)
                scores = {level: [] for level in dataset.levels}
                for seed in seeds:
                    run = train_and_evaluate(
                        dataset,
                        method=method,
                        epochs=epochs[fraction],
                        fraction=fraction,
                        seed=seed,
                        temperature=temperature,
                        model_options=options,
                        out=None,
                        verbose=verbose,
                        **training,
                    )
                    for level, score in run["linear_probe"].items():
                        scores[level].append(score)
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
                results[method][key] = {
                    level: summarize(values) for level, values in scores.items()
                }
        meta = {
            "dataset": dataset.name,
            "levels": dataset.levels,
            "level_metrics": level_metrics(dataset),
            "methods": methods,
            "fractions": [_fraction_key(f) for f in fractions],
            "seeds": seeds,
            "epochs": {_fraction_key(f): e for f, e in epochs.items()},
            "batch_size": batch_size,
            "views": views,
            "learning_rate": learning_rate,
            "validation_fraction": validation_fraction,
            "grid": grid,
            "chosen": chosen,
            "selection": "per method and fraction, on a stratified validation split of the "
            "first seed's training subsample; score = mean over levels of the validation "
            "linear-probe figure; the test split is not used",
            "inputs": inputs,
            "test_split": test_split,
            "train_sizes": train_sizes,
            "test_size": int(len(dataset.x_test)),
            "machine": machine_description(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command if command is not None else command_line(),
            "seconds": round(time.time() - started, 1),
        }
        if out is None:
            return results
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
        write_markdown(results, meta, os.path.join(folder, "results.md"))
        plot_results(results, meta, os.path.join(folder, "results.png"))
        return results
