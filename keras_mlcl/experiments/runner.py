"""One run: train a method on a dataset, evaluate it per level, save and export."""

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import time
import zipfile
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import dense_class_ids
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.data import validation_split
from keras_mlcl.evaluation import RetrievalCallback
from keras_mlcl.evaluation import knn_accuracy_per_level
from keras_mlcl.evaluation import plot_embeddings
from keras_mlcl.evaluation import probe_scores
from keras_mlcl.evaluation import retrieval_metrics_per_level
from keras_mlcl.evaluation import threshold_scores
from keras_mlcl.experiments.encoders import DEFAULT_ENCODER_WIDTH
from keras_mlcl.experiments.encoders import Preprocessing
from keras_mlcl.experiments.encoders import build_encoder
from keras_mlcl.experiments.history import plot_loss_curves
from keras_mlcl.experiments.history import write_history_csv
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.methods import check_method_for_dataset
from keras_mlcl.experiments.options import DEFAULTS
from keras_mlcl.experiments.options import options_for
from keras_mlcl.experiments.phase_timer import PhaseTimer
from keras_mlcl.experiments.run_folder import run_folder
from keras_mlcl.experiments.saved_run import ENCODER_OUTPUT
from keras_mlcl.experiments.saved_run import INDEX_FOLDER
from keras_mlcl.experiments.saved_run import MULTI_LABEL_JOIN
from keras_mlcl.experiments.saved_run import RESULTS_FILE
from keras_mlcl.experiments.saved_run import build_indexes
from keras_mlcl.experiments.saved_run import index_path
from keras_mlcl.experiments.saved_run import read_run_record
from keras_mlcl.models import ContrastiveModel
from keras_mlcl.models.export import MissingTensorFlowError
from keras_mlcl.models.text_export import export_text_saved_model
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

SERVING_CHECK = "serving_check.npz"
EMBEDDINGS_PLOT = "embeddings.png"
HISTORY_FILE = "history.csv"
TENSORBOARD_FOLDER = "tensorboard"
HELD_OUT = "held out: stratified 20% of the training data"
PLOT_NAMES = {"tsne": "t-SNE", "pca": "PCA", "none": None}
PLOTS = tuple(PLOT_NAMES)


def data_fingerprint(dataset: LabeledDataset) -> str:
    """A SHA-256 of a dataset's inputs and labels (every split), to recognise the same data.

    The levels are hashed in their order, coarse to fine, with their names: the split of
    `probe_split` stratifies on the finest class-id level, so the same arrays with the levels
    in another order are other data to it.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([str(level) for level in dataset.levels]).encode("utf-8"))
    splits = [(dataset.x, dataset.labels)]
    if dataset.x_test is not None and dataset.test_labels is not None:
        splits.append((dataset.x_test, dataset.test_labels))
    for x, labels in splits:
        for array in [x] + [labels[level] for level in dataset.levels]:
            array = np.asarray(array)
            if array.dtype.kind in "OUS":  # text: hash the strings, not object pointers
                digest.update("\0".join(str(v) for v in array.ravel()).encode("utf-8"))
            else:
                digest.update(np.ascontiguousarray(array).tobytes())
            digest.update(repr((array.dtype.str, array.shape)).encode())
    return digest.hexdigest()


def probe_split(
    dataset: LabeledDataset, fraction: float = 1.0, seed: int = 0
) -> tuple[LabeledDataset, str, dict[str, list[int]]]:
    """The rows a run trains (and probes, and kNN-references) on, and its test rows.

    A dataset without a test split gets a stratified 20% held out with `seed`; then a stratified
    `fraction` of the training rows is kept with `seed` and class ids are made dense. `train`
    and `evaluate` both call this, so the same model on the same data gets the same scores.

    Returns:
        `(dataset, test_split, class_ids)`: the split dataset, how its test rows were chosen,
        and the class-id mapping of `keras_mlcl.data.dense_class_ids`.
    """
    test_split = "given"
    if not dataset.has_test:
        dataset = train_test_split(dataset, test_fraction=0.2, seed=seed)
        test_split = HELD_OUT
    dataset = subsample(dataset, fraction, seed=seed)
    dataset, class_ids = dense_class_ids(dataset)
    return dataset, test_split, class_ids


def test_split_of(dataset: LabeledDataset) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`(x_test, test_labels)` of a dataset that has a test split (as `probe_split` returns)."""
    if dataset.x_test is None or dataset.test_labels is None:
        raise ValueError(f"The dataset {dataset.name!r} should have a test split.")
    return dataset.x_test, dataset.test_labels


def threshold_split(
    dataset: LabeledDataset, validation_fraction: float | None, seed: int
) -> tuple[LabeledDataset, LabeledDataset | None]:
    """`(training rows, validation rows or None)`: the rows that choose multi-hot thresholds.

    When `validation_fraction` is given and a level of `dataset` is multi-hot, a
    `validation_fraction` of the training rows is held out (`keras_mlcl.data.validation_split`
    with `seed`: stratified by the finest class-id level, at random when every level is
    multi-hot): the model and the probe never see them; they choose each label's decision
    threshold. Otherwise every training row is kept and thresholds stay at 0.5.
    """
    multi_hot = any(dataset.is_multi_hot(level) for level in dataset.levels)
    if validation_fraction is None or not multi_hot:
        return dataset, None
    return validation_split(dataset, fraction=validation_fraction, seed=seed)


def headline(metrics: Mapping[str, float]) -> float:
    """A level's headline figure: the accuracy, or the macro-F1 of a multi-hot level."""
    return metrics["accuracy"] if "accuracy" in metrics else metrics["macro_f1"]


def evaluate_embeddings(
    model: ContrastiveModel,
    preprocessing: Preprocessing,
    dataset: LabeledDataset,
    knn_k: int = 20,
    batch_size: int = 256,
    verbose: Any = 0,
    validation: LabeledDataset | None = None,
    timer: PhaseTimer | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Linear-probe, kNN and retrieval scores per level of `model`'s encoder embeddings.

    The probe, the kNN references and the retrieval references are `dataset`'s training rows;
    the scores are on its test rows (the queries). `retrieval` has the class-id levels only
    (`keras_mlcl.evaluation.retrieval_metrics_per_level`). `probe_metrics` holds every probe
    figure (`keras_mlcl.evaluation.probe_scores`: accuracy; macro-F1, micro-F1 and mAP of a
    multi-hot level, with per-label thresholds chosen on `validation`'s rows when given, else
    0.5) and `linear_probe` the headline of each level (`headline`). With `verbose`, each
    phase is reported on stderr; `timer`, when given, records them (`embed`, `probe`, `knn`,
    `retrieval`) and reports them as its own `verbose` says.
    """
    timer = timer or PhaseTimer(verbose)
    x_test, test_labels = test_split_of(dataset)
    with timer.phase("embed", "embedding"):
        train = model.embed(preprocessing(dataset.x), batch_size=batch_size)
        test = model.embed(preprocessing(x_test), batch_size=batch_size)
        held_out = None
        if validation is not None:
            held_out = model.embed(preprocessing(validation.x), batch_size=batch_size)
    for name, embeddings in (("x", train), ("x_test", test)):
        if not np.all(np.isfinite(embeddings)):
            raise ValueError(
                f"The model's embeddings of `{name}` hold NaN or Inf: the model diverged "
                "(try a lower learning rate) or was saved with NaN weights."
            )
    with timer.phase("probe", f"linear probe ({len(dataset.levels)} levels)"):
        metrics = probe_scores(
            train,
            dataset.labels,
            test,
            test_labels,
            val_embeddings=held_out,
            val_labels=None if validation is None else validation.labels,
        )
    with timer.phase("knn", f"kNN, k={knn_k}"):
        knn = knn_accuracy_per_level(train, dataset.labels, test, test_labels, k=knn_k)
    with timer.phase("retrieval", "retrieval (Recall@k, mAP@R)"):
        retrieval = retrieval_metrics_per_level(test, test_labels, train, dataset.labels)
    probe = {level: headline(values) for level, values in metrics.items()}
    scores = {"linear_probe": probe, "probe_metrics": metrics, "knn": knn, "retrieval": retrieval}
    return scores, test


def classifier_scores(
    model: ContrastiveModel,
    x_test: np.ndarray,
    test_labels: Mapping[str, np.ndarray],
    x_val: np.ndarray | None = None,
    val_labels: Mapping[str, np.ndarray] | None = None,
    batch_size: int = 256,
) -> dict[str, dict[str, float]]:
    """The test figures of `model`'s own classifier outputs, `{level: {metric: value}}`.

    A class-id level gives `{"accuracy"}` (arg-max of the logits, unlabelled rows left out); a
    multi-hot level the sigmoid's `{"macro_f1", "micro_f1", "map"}`, with per-label thresholds
    chosen on `x_val` when given, else 0.5 (`keras_mlcl.evaluation.threshold_scores`). Empty
    for a model without a classifier.
    """
    if not model.classifier:
        return {}
    test = model.predict(x_test, batch_size=batch_size, verbose=0)
    val = None if x_val is None else model.predict(x_val, batch_size=batch_size, verbose=0)
    scores = {}
    for level in model.classifier:
        logits = np.asarray(test[f"{level}_logits"], dtype="float64")
        labels = np.asarray(test_labels[level])
        if labels.ndim == 1:
            labelled = labels >= 0
            correct = np.argmax(logits[labelled], axis=1) == labels[labelled]
            scores[level] = {"accuracy": float(np.mean(correct))}
            continue
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        val_probabilities = val_true = None
        if val is not None and val_labels is not None:
            val_logits = np.asarray(val[f"{level}_logits"], dtype="float64")
            val_probabilities = 1.0 / (1.0 + np.exp(-val_logits))
            val_true = val_labels[level]
        scores[level] = threshold_scores(val_true, val_probabilities, labels, probabilities)
    return scores


def train_and_evaluate(
    dataset: LabeledDataset,
    method: str = "mlcl",
    epochs: int = 10,
    fraction: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    views: int = 2,
    temperature: float = 0.1,
    learning_rate: float = 1e-3,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    protected: Sequence[str | None] = (),
    export: bool = True,
    plot: str = "tsne",
    tensorboard: bool = False,
    verbose: Any = "auto",
    model_options: Mapping[str, Any] | None = None,
    encoder_width: int = DEFAULT_ENCODER_WIDTH,
    validation_fraction: float | None = None,
    timer: PhaseTimer | None = None,
) -> dict[str, Any]:
    """Trains `method` on `dataset`, evaluates it per level and writes the run.

    The run folder `out` gets `results.json`, `model.keras`, `saved_model/`
    (`serve`, and `search` / `search_<head>`: the top-k training rows of an
    input, exact, in the graph; with `serving_check.npz`: inputs and the
    outputs they gave), `index/` (an `EmbeddingIndex` of the training rows
    per output, `keras_mlcl.experiments.saved_run`), `embeddings.png`, the
    training history `history.csv` (one row per epoch) with
    `loss_<head>.png` for each head (with validation curves when the dataset
    has a validation split), and with `tensorboard=True` the TensorBoard
    logs in `tensorboard/`. It is written into a temporary sibling folder and moved
    to `out` when complete (`keras_mlcl.experiments.run_folder`): `out` must
    be new, empty, or (with `overwrite=True`) a finished earlier run; a
    folder holding anything else is refused before training starts.

    A model with a classifier (`ce`, `bce`, `<method>+ce`) has it refit on
    the frozen encoder after `fit` (`ContrastiveModel.fit_classifier`); the
    results record its loss before and after as `classifier_refit`.

    Class ids that are not `0..K-1` (e.g. `{3, 10**9}`) are re-mapped to
    dense ids first (`keras_mlcl.data.dense_class_ids`); the results record
    the mapping as `class_ids`. When the embedding plot cannot be drawn
    (e.g. all test embeddings identical, or fewer than 3 test rows), the run
    still completes and `results["plots"]` says why.

    The results hold the seconds each phase took as `timings_s` (`PhaseTimer.record`):
    `prepare` (splits, model), `train`, `classifier_refit` (a model with a classifier),
    `embed`, `probe`, `knn`, `retrieval`, `classifier` (its scores), then with `out`
    `save` (model, history, loss curves), `index`, `export` (when asked) and `plot`
    (unless `"none"`), and `total`; `timer`'s earlier phases (e.g. the CLI's `load`) first.

    Args:
        dataset: a `LabeledDataset`; without a test split, a stratified 20%
            is held out (recorded in the results).
        method: a method name of `keras_mlcl.experiments.methods`.
        epochs, batch_size, views, temperature, learning_rate: training (`ce` and `bce`
            use no temperature: the results record `None`).
        fraction: fraction of the training data used, stratified, in (0, 1].
        seed: seeds the subsample, the weights and the views.
        out: the run folder, or None to write nothing.
        overwrite: whether a finished earlier run in `out` may be replaced.
        protected: paths the run folder must not contain (the input data).
        export: write the TF SavedModel.
        plot: the 2-D plot of the test embeddings: `"tsne"`, `"pca"` or
            `"none"`.
        tensorboard: write TensorBoard logs (needs `out` and TensorFlow).
        verbose: Keras' `fit` verbosity; unless 0, the later phases (probe,
            kNN, export, plots) are reported on stderr too.
        model_options: optional dict of further `build_model` arguments
            (e.g. `ce_weight`, `coarse_temperature`, `coarse_weight`).
        encoder_width: feature vectors: the MLP's hidden width (its embedding is
            half as wide). Defaults to 512 (`DEFAULT_ENCODER_WIDTH`).
        validation_fraction: with a multi-hot level, the share of the training
            rows held out to choose each label's decision threshold for the
            probe and the classifier (`threshold_split`); `None` (the default)
            keeps every row and thresholds at 0.5.
        timer: the `PhaseTimer` that times the run, or None (the default) for a new one
            that reports as `verbose` says. One made before the run times its earlier
            phases (e.g. loading the data) and the total from then.

    Returns:
        The results dict (also `results.json`).
    """
    check_method_for_dataset(method, dataset)
    check_choice("plot", plot, PLOTS)
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("views", views)
    if tensorboard and out is None:
        raise ValueError("`tensorboard=True` needs a run folder `out` to write the logs to.")
    if "temperature" not in options_for(method) and temperature != DEFAULTS["temperature"]:
        raise ValueError(
            f"Method {method!r} uses no temperature (as `keras-mlcl train` refuses "
            f"--temperature for it). Received: `temperature`={temperature!r}"
        )
    writing = (
        contextlib.nullcontext() if out is None else run_folder(out, "train", overwrite, protected)
    )
    timer = timer or PhaseTimer(verbose)
    with writing as folder:
        started = time.time()
        with timer.phase("prepare"):
            fingerprint = data_fingerprint(dataset)
            if dataset.ids is None:  # the stored index names its rows by their number
                dataset = dataclasses.replace(dataset, ids=np.arange(len(dataset.x)))
            dataset, test_split, class_ids = probe_split(dataset, fraction, seed)
            dataset, validation = threshold_split(dataset, validation_fraction, seed)

            keras.utils.set_random_seed(seed)
            preprocessing, encoder, augment = build_encoder(dataset.x, encoder_width)
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
            callbacks = []
            validation_data = None
            if dataset.x_val is not None and dataset.val_labels is not None:
                x_val = preprocessing(dataset.x_val)
                validation_data = (x_val, to_y(dataset.val_labels))
                class_id_levels = {
                    level: labels
                    for level, labels in dataset.val_labels.items()
                    if not dataset.is_multi_hot(level)
                    and np.unique(labels[labels >= 0], return_counts=True)[1].max(initial=0) > 1
                }
                if class_id_levels:  # Recall@k and mAP@R per level, each epoch, into the logs
                    callbacks.append(RetrievalCallback(x_val, class_id_levels))
            if tensorboard and folder is not None:  # `out` is checked above
                log_dir = os.path.join(folder, TENSORBOARD_FOLDER)
                callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
        with timer.phase("train"):
            history = model.fit(
                x,
                to_y(dataset.labels),
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation_data=validation_data,
            )
        refit = {}
        if model.classifier:
            with timer.phase("classifier_refit", "classifier refit on the frozen encoder"):
                refit = model.fit_classifier(x, to_y(dataset.labels))
        scores, test_embeddings = evaluate_embeddings(
            model, preprocessing, dataset, batch_size=256, validation=validation, timer=timer
        )
        scores["classifier"] = {}
        if model.classifier:
            with timer.phase("classifier"):
                x_test, test_labels = test_split_of(dataset)
                scores["classifier"] = classifier_scores(
                    model,
                    preprocessing(x_test),
                    test_labels,
                    x_val=None if validation is None else preprocessing(validation.x),
                    val_labels=None if validation is None else validation.labels,
                )
        results = {
            "dataset": dataset.name,
            "method": method,
            "backend": keras.backend.backend(),
            "epochs": epochs,
            "fraction": fraction,
            "seed": seed,
            "batch_size": batch_size,
            "views": model.views,
            "temperature": temperature if "temperature" in options_for(method) else None,
            "learning_rate": learning_rate,
            "model_options": dict(model_options or {}),
            "encoder_width": encoder_width,
            "train_size": int(len(dataset.x)),
            "threshold_rows": 0 if validation is None else int(len(validation.x)),
            "test_size": int(len(dataset.x_test)),
            "test_split": test_split,
            "data_fingerprint": fingerprint,
            "probe_rows": {
                "split": "train",
                "fraction": fraction,
                "seed": seed,
                "validation_fraction": None if validation is None else validation_fraction,
                "count": int(len(dataset.x)),
            },
            "levels": dataset.levels,
            "class_ids": class_ids,
            "class_names": dict(dataset.class_names or {}),
            "table": None if dataset.columns is None else dataset.columns.get_config(),
            **scores,
            "classifier_refit": refit,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "train_seconds": round(time.time() - started, 1),
        }
        if folder is None:
            results["timings_s"] = timer.record()
            return results

        with timer.phase("save"):
            results["preprocessing"] = preprocessing.record(folder)
            model.save(os.path.join(folder, "model.keras"))
            write_history_csv(history.history, os.path.join(folder, HISTORY_FILE))
            results["history_file"] = HISTORY_FILE
            results["plots"] = {
                "loss": plot_loss_curves(history.history, folder, f"{dataset.name}, {method}")
            }
        with timer.phase("index", "index of the training rows"):
            indexes = store_indexes(model, x, dataset, folder)
        results["index"] = {"folder": INDEX_FOLDER, "outputs": list(indexes), "rows": len(x)}
        search_indexes = {name: (i.embeddings, i.ids) for name, i in indexes.items()}
        results["export"] = {"saved_model": None, "skipped": "not asked for (export=False)"}
        if export:
            export_path = os.path.join(folder, "saved_model")
            try:
                with timer.phase("export", "SavedModel export"):
                    if preprocessing.text is not None:
                        export_text_saved_model(
                            model,
                            preprocessing.text,
                            export_path,
                            search_indexes=search_indexes,
                        )
                    else:
                        model.export(export_path, verbose=False, search_indexes=search_indexes)
            except MissingTensorFlowError as error:
                if verbose:  # `--quiet` prints nothing; the results record the skip
                    print(f"keras-mlcl: {error}; export skipped", file=sys.stderr)
                results["export"] = {"saved_model": None, "skipped": str(error)}
            else:
                with timer.phase("export"):
                    sample = x[:8]
                    outputs = model.predict(sample, verbose=0)
                    if preprocessing.kind == "text":
                        sample = np.asarray(dataset.x[:8]).astype(str)  # `serve` takes strings
                    np.savez(os.path.join(export_path, SERVING_CHECK), inputs=sample, **outputs)
                results["export"] = {"saved_model": "saved_model"}
        if plot != "none":
            with timer.phase("plot", f"{PLOT_NAMES[plot]} plot of the test embeddings"):
                results["plots"]["embeddings"] = _plot(
                    dataset, method, test_embeddings, folder, plot
                )
        results["total_seconds"] = round(time.time() - started, 1)
        results["timings_s"] = timer.record()
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        return results


def store_indexes(
    model: ContrastiveModel, x: np.ndarray, dataset: LabeledDataset, folder: str
) -> dict[str, Any]:
    """Saves an `EmbeddingIndex` of the training rows `x` per model output (the encoder and
    each head) in `<folder>/index/<output>`, each row with its id and label names."""
    outputs = model.predict(x, batch_size=256, verbose=0)
    names = [ENCODER_OUTPUT, *model.head_names]
    indexes = build_indexes(
        {name: outputs[name] for name in names},
        dataset.ids,
        dataset.labels,
        dataset.class_names,
        separator=(dataset.columns.label_separator if dataset.columns else None)
        or MULTI_LABEL_JOIN,
    )
    os.makedirs(os.path.join(folder, INDEX_FOLDER))
    for name, index in indexes.items():
        index.save(os.path.join(folder, index_path(name)))
    return indexes


def _plot(
    dataset: LabeledDataset, method: str, test_embeddings: np.ndarray, folder: str, plot: str
) -> dict[str, str | None]:
    """`{"file": name, "method": plot, "note": a subsample's note or None}` of the plot
    written, or `{"file": None, "missing": why}`."""
    if len(test_embeddings) < 3:
        why = f"the test split has {len(test_embeddings)} row(s); a 2-D plot needs 3 or more"
        return {"file": None, "missing": why}
    if np.ptp(test_embeddings, axis=0).max() == 0:
        why = "every test embedding is the same point (constant inputs?): nothing to project"
        return {"file": None, "missing": why}
    try:
        drawn = plot_embeddings(
            test_embeddings,
            dataset.test_labels,
            os.path.join(folder, EMBEDDINGS_PLOT),
            method=plot,
            title=f"{dataset.name}, {method}: test embeddings ({PLOT_NAMES[plot]})",
            class_names=dataset.class_names,
        )
    except ValueError as error:
        return {"file": None, "missing": " ".join(str(error).split())}
    return {"file": EMBEDDINGS_PLOT, "method": plot, "note": drawn.note}


def evaluate_saved_run(
    model_path: str, dataset: LabeledDataset, knn_k: int = 20, verbose: Any = 0
) -> dict[str, Any]:
    """Scores a saved `model.keras` (and its run's preprocessing) on `dataset`.

    When the run's `results.json` is beside the model and `dataset` is the data the run was
    trained on (same `data_fingerprint`), the probe and the kNN references use the run's rows
    (its `probe_rows`: held-out split and fraction, with its seed), so the scores are the run's.
    Otherwise they use the whole training split (a held-out 20% test split with seed 0 when the
    dataset has none). The result's `probe_rows` says which.

    Args:
        model_path: path to a `model.keras` written by `train_and_evaluate`.
        dataset: a `LabeledDataset`.
        knn_k: neighbours of the kNN classifier.
        verbose: whether to report each phase on stderr.

    Returns:
        `{"model", "dataset", "probe_rows", "linear_probe", "knn", "retrieval"}`.
    """
    folder = os.path.dirname(os.path.abspath(model_path))
    run = read_run_record(folder) or {}
    record = run.get("preprocessing")
    if record is None:
        from keras_mlcl.experiments.encoders import input_kind

        record = {"kind": input_kind(dataset.x)}
        if record["kind"] == "text":
            raise ValueError(
                f"The text model {model_path!r} reads its vocabulary from its run's "
                f"{os.path.join(folder, RESULTS_FILE)!r}, which is missing: copy the whole run "
                "folder that `keras-mlcl train` wrote."
            )
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
    rows: dict[str, Any] = {
        "split": "train",
        "fraction": 1.0,
        "seed": 0,
        "validation_fraction": None,
    }
    if "probe_rows" in run and run.get("data_fingerprint") == data_fingerprint(dataset):
        rows = {key: run["probe_rows"][key] for key in ("split", "fraction", "seed")}
        rows["validation_fraction"] = run["probe_rows"].get("validation_fraction")
        rows["same_as"] = "the run that wrote the model"
    dataset, _, _ = probe_split(dataset, rows["fraction"], rows["seed"])
    dataset, validation = threshold_split(dataset, rows["validation_fraction"], rows["seed"])
    rows["count"] = int(len(dataset.x))
    scores, _ = evaluate_embeddings(
        model, preprocessing, dataset, knn_k=knn_k, verbose=verbose, validation=validation
    )
    return {"model": model_path, "dataset": dataset.name, "probe_rows": rows, **scores}


def load_model_file(path: str) -> ContrastiveModel:
    """Loads the `ContrastiveModel` of a `.keras` file, or raises a one-line `ValueError` that
    names the file."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"Cannot read model file {path!r}: it is not a .keras archive.")
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # any failure to read a user's file is reported, not raised
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(f"Cannot read model file {path!r}: {reason}") from None
    if not isinstance(model, ContrastiveModel):
        raise ValueError(
            f"The model file {path!r} should hold a keras_mlcl ContrastiveModel, as "
            f"`keras-mlcl train` writes. Received: a {type(model).__name__}"
        )
    return model
