"""One run: train a method on a dataset, evaluate it per level, save and export."""

import json
import os
import shutil
import time

import keras
import numpy as np

from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.evaluation import knn_accuracy_per_level
from keras_mlcl.evaluation import linear_probe_per_level
from keras_mlcl.evaluation import plot_embeddings
from keras_mlcl.experiments.encoders import Preprocessing
from keras_mlcl.experiments.encoders import build_encoder
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.methods import check_method_for_dataset
from keras_mlcl.utils.validation import check_positive_int

SERVING_CHECK = "serving_check.npz"


def start_run_folder(out):
    """Creates and returns `<out>.partial`, or raises a `ValueError` naming `out`.

    The run is written there and renamed to `out` when complete, so a folder
    named `out` is never half-written.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"`out` should be a folder. Received a file: {out!r}")
    partial = out.rstrip("/") + ".partial"
    try:
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        probe = os.path.join(partial, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(
            f"`out` should be a writable folder. Cannot write to {out!r}: {error.strerror}"
        ) from None
    return partial


def evaluate_embeddings(model, preprocessing, dataset, knn_k=20, batch_size=256):
    """Linear-probe and kNN scores per level of `model`'s encoder embeddings."""
    train = model.embed(preprocessing(dataset.x), batch_size=batch_size)
    test = model.embed(preprocessing(dataset.x_test), batch_size=batch_size)
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
    export=True,
    plots=True,
    verbose="auto",
    model_options=None,
):
    """Trains `method` on `dataset`, evaluates per level and writes the run.

    The run folder `out` gets `results.json`, `model.keras`, `saved_model/`
    (with `serving_check.npz`: inputs and the outputs they gave), and
    `embeddings.png`. It is written to `<out>.partial` and renamed at the
    end, so a folder named `out` is always a finished run.

    Args:
        dataset: a `LabeledDataset`; without a test split, a stratified 20%
            is held out (recorded in the results).
        method: a method name of `keras_mlcl.experiments.methods`.
        epochs, batch_size, views, temperature, learning_rate: training.
        fraction: fraction of the training data used, stratified, in (0, 1].
        seed: seeds the subsample, the weights and the views.
        out: the run folder, or None to write nothing.
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
    partial = start_run_folder(out) if out is not None else None
    try:
        started = time.time()
        test_split = "given"
        if not dataset.has_test:
            dataset = train_test_split(dataset, test_fraction=0.2, seed=seed)
            test_split = "held out: stratified 20% of the training data"
        dataset = subsample(dataset, fraction, seed=seed)

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
            **scores,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "train_seconds": round(time.time() - started, 1),
        }
        if out is None:
            return results

        results["preprocessing"] = preprocessing.record(partial)
        model.save(os.path.join(partial, "model.keras"))
        if export:
            export_path = os.path.join(partial, "saved_model")
            model.export(export_path, verbose=False)
            sample = x[:8]
            outputs = model.predict(sample, verbose=0)
            np.savez(os.path.join(export_path, SERVING_CHECK), inputs=sample, **outputs)
        if plots:
            plot_embeddings(
                test_embeddings,
                dataset.test_labels,
                os.path.join(partial, "embeddings.png"),
                title=f"{dataset.name}, {method}: test embeddings (t-SNE)",
                class_names=dataset.class_names,
            )
        results["total_seconds"] = round(time.time() - started, 1)
        with open(os.path.join(partial, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
        return results

    except BaseException:
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        raise


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
    model = keras.saving.load_model(model_path)
    if not dataset.has_test:
        dataset = train_test_split(dataset, test_fraction=0.2, seed=0)
    scores, _ = evaluate_embeddings(model, preprocessing, dataset, knn_k=knn_k)
    return {"model": model_path, "dataset": dataset.name, **scores}
