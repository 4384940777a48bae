"""One run: train a method on a dataset, evaluate it per level, save and export."""

import json
import os
import time
import zipfile
from contextlib import nullcontext

import keras
import numpy as np

from keras_mlcl.data import dense_class_ids
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.evaluation import knn_accuracy_per_level
from keras_mlcl.evaluation import linear_probe_per_level
from keras_mlcl.evaluation import plot_embeddings
from keras_mlcl.experiments.encoders import Preprocessing
from keras_mlcl.experiments.encoders import build_encoder
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.methods import check_method_for_dataset
from keras_mlcl.experiments.run_folder import run_folder
from keras_mlcl.utils.validation import check_positive_int

SERVING_CHECK = "serving_check.npz"
EMBEDDINGS_PLOT = "embeddings.png"


def evaluate_embeddings(model, preprocessing, dataset, knn_k=20, batch_size=256):
    """Linear-probe and kNN scores per level of `model`'s encoder embeddings."""
    train = model.embed(preprocessing(dataset.x), batch_size=batch_size)
    test = model.embed(preprocessing(dataset.x_test), batch_size=batch_size)
    for name, embeddings in (("x", train), ("x_test", test)):
        if not np.all(np.isfinite(embeddings)):
            raise ValueError(
                f"The model's embeddings of `{name}` hold NaN or Inf: the model diverged "
                "(try a lower learning rate) or was saved with NaN weights."
            )
    return {
        "linear_probe": linear_probe_per_level(train, dataset.labels, test, dataset.test_labels),
        "knn": knn_accuracy_per_level(train, dataset.labels, test, dataset.test_labels, k=knn_k),
    }, test


def train_and_evaluate(
    dataset,
    method="mlcl",
    epochs=10,
    fraction=1.0,
    seed=0,
    batch_size=256,
    views=2,
    temperature=0.1,
    learning_rate=1e-3,
    out=None,
    overwrite=False,
    protected=(),
    export=True,
    plots=True,
    verbose="auto",
    model_options=None,
):
    """Trains `method` on `dataset`, evaluates it per level and writes the run.

    The run folder `out` gets `results.json`, `model.keras`, `saved_model/`
    (with `serving_check.npz`: inputs and the outputs they gave), and
    `embeddings.png`. It is written into a temporary sibling folder and moved
    to `out` when complete (`keras_mlcl.experiments.run_folder`): `out` must
    be new, empty, or (with `overwrite=True`) a finished earlier run; a
    folder holding anything else is refused before training starts.

    Class ids that are not `0..K-1` (e.g. `{3, 10**9}`) are re-mapped to
    dense ids first (`keras_mlcl.data.dense_class_ids`); the results record
    the mapping as `class_ids`. When the embedding plot cannot be drawn
    (e.g. all test embeddings identical, or fewer than 3 test rows), the run
    still completes and `results["plots"]` says why.

    Args:
        dataset: a `LabeledDataset`; without a test split, a stratified 20%
            is held out (recorded in the results).
        method: a method name of `keras_mlcl.experiments.methods`.
        epochs, batch_size, views, temperature, learning_rate: training.
        fraction: fraction of the training data used, stratified, in (0, 1].
        seed: seeds the subsample, the weights and the views.
        out: the run folder, or None to write nothing.
        overwrite: whether a finished earlier run in `out` may be replaced.
        protected: paths the run folder must not contain (the input data).
        export: write the TF SavedModel.
        plots: write the t-SNE plot of test embeddings.
        verbose: Keras' `fit` verbosity.
        model_options: optional dict of further `build_model` arguments
            (e.g. `ce_weight`, `coarse_temperature`, `coarse_weight`).

    Returns:
        The results dict (also `results.json`).
    """
    check_method_for_dataset(method, dataset)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("views", views)
    writing = nullcontext() if out is None else run_folder(out, "train", overwrite, protected)
    with writing as folder:
        started = time.time()
        test_split = "given"
        if not dataset.has_test:
            dataset = train_test_split(dataset, test_fraction=0.2, seed=seed)
            test_split = "held out: stratified 20% of the training data"
        dataset = subsample(dataset, fraction, seed=seed)
        dataset, class_ids = dense_class_ids(dataset)

        keras.utils.set_random_seed(seed)
        preprocessing, encoder, augment = build_encoder(dataset.x)
        model, to_y = build_model(
            method,
            dataset,
            encoder,
            augment=augment,
            views=views,
            temperature=temperature,
            **(model_options or {}),
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        x = preprocessing(dataset.x)
        history = model.fit(
            x, to_y(dataset.labels), batch_size=batch_size, epochs=epochs, verbose=verbose
        )
        scores, test_embeddings = evaluate_embeddings(model, preprocessing, dataset, batch_size=256)
        results = {
            "dataset": dataset.name,
            "method": method,
            "backend": keras.backend.backend(),
            "epochs": epochs,
            "fraction": fraction,
            "seed": seed,
            "batch_size": batch_size,
            "views": model.views,
            "temperature": temperature,
            "model_options": dict(model_options or {}),
            "train_size": int(len(dataset.x)),
            "test_size": int(len(dataset.x_test)),
            "test_split": test_split,
            "levels": dataset.levels,
            "class_ids": class_ids,
            **scores,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "train_seconds": round(time.time() - started, 1),
        }
        if folder is None:
            return results

        results["preprocessing"] = preprocessing.record(folder)
        model.save(os.path.join(folder, "model.keras"))
        if export:
            export_path = os.path.join(folder, "saved_model")
            model.export(export_path, verbose=False)
            sample = x[:8]
            outputs = model.predict(sample, verbose=0)
            np.savez(os.path.join(export_path, SERVING_CHECK), inputs=sample, **outputs)
        if plots:
            results["plots"] = {"embeddings": _plot(dataset, method, test_embeddings, folder)}
        results["total_seconds"] = round(time.time() - started, 1)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        return results


def _plot(dataset, method, test_embeddings, folder):
    """`{"file": name}` of the t-SNE plot written, or `{"file": None, "missing": why}`."""
    if len(test_embeddings) < 3:
        why = f"the test split has {len(test_embeddings)} row(s); a t-SNE plot needs 3 or more"
        return {"file": None, "missing": why}
    if np.ptp(test_embeddings, axis=0).max() == 0:
        why = "every test embedding is the same point (constant inputs?): nothing to project"
        return {"file": None, "missing": why}
    try:
        plot_embeddings(
            test_embeddings,
            dataset.test_labels,
            os.path.join(folder, EMBEDDINGS_PLOT),
            title=f"{dataset.name}, {method}: test embeddings (t-SNE)",
            class_names=dataset.class_names,
        )
    except ValueError as error:
        return {"file": None, "missing": " ".join(str(error).split())}
    return {"file": EMBEDDINGS_PLOT}


def evaluate_saved_run(model_path, dataset, knn_k=20):
    """Scores a saved `model.keras` (and its run's preprocessing) on `dataset`."""
    folder = os.path.dirname(os.path.abspath(model_path))
    record_path = os.path.join(folder, "results.json")
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f).get("preprocessing", {"kind": None})
    else:
        record = {"kind": None}
    if record["kind"] is None:
        from keras_mlcl.experiments.encoders import input_kind

        record = {"kind": input_kind(dataset.x)}
    preprocessing = Preprocessing.from_record(record, folder)
    model = load_model_file(model_path)
    expected = tuple(model.encoder.inputs[0].shape[1:])
    given = preprocessing(dataset.x[:1]).shape[1:]
    if len(given) != len(expected) or any(
        e not in (None, g) for e, g in zip(expected, given, strict=True)
    ):
        raise ValueError(
            f"The inputs `x` of {dataset.name!r} should have the sample shape the model was "
            f"trained on, {expected}. Received: {tuple(given)}"
        )
    if not dataset.has_test:
        dataset = train_test_split(dataset, test_fraction=0.2, seed=0)
    scores, _ = evaluate_embeddings(model, preprocessing, dataset, knn_k=knn_k)
    return {"model": model_path, "dataset": dataset.name, **scores}


def load_model_file(path):
    """Loads a `.keras` file, or raises a one-line `ValueError` that names it."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"Cannot read model file {path!r}: it is not a .keras archive.")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # any failure to read a user's file is reported, not raised
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(f"Cannot read model file {path!r}: {reason}") from None
