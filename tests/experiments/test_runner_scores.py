"""A run's scores: the rows that choose multi-hot thresholds, and the classifier's own figures."""

import keras
import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.evaluation import threshold_scores
from keras_mlcl.experiments.encoders import build_encoder
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.runner import classifier_scores
from keras_mlcl.experiments.runner import threshold_split
from keras_mlcl.experiments.runner import train_and_evaluate
from tests.experiments.test_methods import multi_label_dataset
from tests.experiments.test_phase_timer import check_timings


def class_id_dataset(n=80):
    rng = np.random.default_rng(1)
    fine = np.arange(n) % 4
    x = (rng.normal(size=(n, 8)) + 3 * np.eye(8)[fine]).astype("float32")
    return LabeledDataset(x=x, labels={"coarse": fine // 2, "fine": fine}, name="ids")


def test_threshold_rows_are_held_out_for_multi_hot_levels_only():
    ids = class_id_dataset()
    assert threshold_split(ids, 0.2, seed=0) == (ids, None)
    multi = multi_label_dataset(n=60)
    assert threshold_split(multi, None, seed=0) == (multi, None)
    fit, held_out = threshold_split(multi, 0.2, seed=0)
    assert len(fit.x) == 48 and len(held_out.x) == 12
    rows = {row.tobytes() for row in fit.x}
    assert not rows & {row.tobytes() for row in held_out.x}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype="float64")))


@pytest.mark.parametrize("method", ["ce", "bce"])
def test_classifier_scores_are_the_classifiers_own_figures(method):
    data = class_id_dataset() if method == "ce" else multi_label_dataset(n=60)
    level = data.levels[-1]
    keras.utils.set_random_seed(0)
    _, encoder, augment = build_encoder(data.x)
    model, to_y = build_model(method, data, encoder, augment=augment)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data.x, to_y(data.labels), batch_size=40, epochs=3, verbose=0)
    val_x, test_x = data.x[:20], data.x[20:]
    val_labels = {k: v[:20] for k, v in data.labels.items()}
    test_labels = {k: v[20:] for k, v in data.labels.items()}
    scores = classifier_scores(model, test_x, test_labels, x_val=val_x, val_labels=val_labels)
    assert list(scores) == [level]
    val_logits, test_logits = (
        model.predict(x, verbose=0)[f"{level}_logits"] for x in (val_x, test_x)
    )
    if method == "ce":
        expected = np.mean(np.argmax(test_logits, axis=1) == test_labels[level])
        assert scores[level] == {"accuracy": pytest.approx(expected)}
    else:
        expected = threshold_scores(
            val_labels[level], sigmoid(val_logits), test_labels[level], sigmoid(test_logits)
        )
        assert scores[level] == pytest.approx(expected)


def test_a_run_with_threshold_rows_records_them():
    data = multi_label_dataset(n=60)
    test = multi_label_dataset(n=30, seed=1)
    data = LabeledDataset(
        x=data.x, labels=data.labels, x_test=test.x, test_labels=test.labels, name="toy"
    )
    run = train_and_evaluate(data, method="bce", epochs=1, validation_fraction=0.2, verbose=0)
    assert run["train_size"] == 48 and run["threshold_rows"] == 12
    assert run["probe_rows"]["validation_fraction"] == 0.2
    metrics = run["probe_metrics"]["labels"]
    assert set(metrics) == {"macro_f1", "micro_f1", "map"}
    assert run["linear_probe"]["labels"] == metrics["macro_f1"]
    assert set(run["classifier"]["labels"]) == {"macro_f1", "micro_f1", "map"}
    phases = ["prepare", "train", "classifier_refit", "embed", "probe", "knn", "retrieval"]
    check_timings(run["timings_s"], [*phases, "classifier"])  # no `out`: nothing saved


@pytest.mark.backend_independent
@pytest.mark.parametrize("method", ["ce", "bce"])
def test_a_temperature_for_a_method_without_one_is_refused(method):
    # As the command refuses `--method ce --temperature 0.5`; the default passes (and is
    # recorded as None, tests/cli/test_cli.py).
    data = multi_label_dataset(n=20)
    if method == "ce":
        data = LabeledDataset(x=data.x, labels={"fine": np.arange(20) % 2}, name="toy")
    with pytest.raises(ValueError, match=f"Method '{method}' uses no temperature"):
        train_and_evaluate(data, method=method, temperature=0.5, epochs=1, verbose=0)
