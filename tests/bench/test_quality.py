"""The quality benchmark on a tiny synthetic `.npz`, in the active backend."""

import json
import os

import numpy as np
import pytest

from keras_mlcl.bench import quality
from keras_mlcl.bench import selection
from keras_mlcl.bench.grid import parse_grid
from keras_mlcl.bench.quality import run_quality_bench
from keras_mlcl.bench.quality import summarize
from keras_mlcl.bench.report import results_table
from keras_mlcl.bench.selection import select_hyperparameters
from keras_mlcl.bench.text_features import tfidf_features
from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import load_npz
from keras_mlcl.evaluation import linear_probe

pytestmark = pytest.mark.backend_independent

GRID = {"mlcl": {"coarse_weight": [0.5, 1.0]}}


def write_npz(path, n=160, n_test=60, seed=0):
    """Two levels (2 groups of 2 kinds), well-separated clusters, continuous (unique) rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 10)) * 4

    def split(size):
        fine = np.arange(size) % 4
        return (centres[fine] + rng.normal(size=(size, 10))).astype("float32"), fine

    x, fine = split(n)
    x_test, fine_test = split(n_test)
    np.savez(
        path,
        x=x,
        y_group=fine // 2,
        y_kind=fine,
        x_test=x_test,
        y_test_group=fine_test // 2,
        y_test_kind=fine_test,
    )
    return path


def rows(x):
    return {row.tobytes() for row in np.asarray(x, dtype="float32")}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One bench run (2 methods, 1 seed, 1 epoch) with every `train_and_evaluate` call recorded."""
    folder = tmp_path_factory.mktemp("bench")
    data = write_npz(os.path.join(folder, "toy.npz"))
    out = os.path.join(folder, "out")
    results, calls = recorded_bench(
        data, ["ce", "mlcl"], fractions=[1.0], seeds=1, epochs=1, out=out, grid=GRID
    )
    return {"data": data, "out": out, "results": results, "calls": calls}


def recorded_bench(*args, **kwargs):
    """`(results, calls)`: `run_quality_bench` with every `train_and_evaluate` call recorded."""
    calls = []
    real = quality.train_and_evaluate

    def recording(dataset, **kwargs):
        calls.append((dataset, kwargs))
        return real(dataset, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(quality, "train_and_evaluate", recording)
    patch.setattr(selection, "train_and_evaluate", recording)
    try:
        return run_quality_bench(*args, **kwargs), calls
    finally:
        patch.undo()


def test_results_json_has_the_documented_shape_and_scores_in_0_1(bench):
    with open(os.path.join(bench["out"], "results.json")) as f:
        written = json.load(f)
    assert written == bench["results"]
    assert list(written) == ["raw", "ce", "mlcl"]  # the `raw` baseline always comes first
    for method in written:
        assert list(written[method]) == ["1.0"]
        assert list(written[method]["1.0"]) == ["group", "kind"]
        for level, entry in written[method]["1.0"].items():
            own = method == "ce" and level == "kind"  # ce's classifier is on the finest level
            assert set(entry) == {"mean", "std", "runs", "metrics"} | (
                {"classifier"} if own else set()
            )
            assert len(entry["runs"]) == 1
            assert entry["mean"] == entry["runs"][0] and entry["std"] == 0.0
            assert entry["metrics"] == {"accuracy": {k: entry[k] for k in ("mean", "std", "runs")}}
            assert 0.0 <= entry["mean"] <= 1.0
            assert entry["mean"] > 0.9  # clusters 4 standard deviations apart
    assert 0.25 < written["ce"]["1.0"]["kind"]["classifier"]["mean"] <= 1.0  # above chance


def test_raw_is_the_probe_on_the_inputs(bench):
    data = load_npz(bench["data"])
    for level in ("group", "kind"):
        expected = linear_probe(data.x, data.labels[level], data.x_test, data.test_labels[level])
        assert bench["results"]["raw"]["1.0"][level]["mean"] == round(expected, 4)


def test_meta_records_grid_choice_and_settings(bench):
    with open(os.path.join(bench["out"], "meta.json")) as f:
        meta = json.load(f)
    assert meta["grid"] == GRID
    assert meta["epochs"] == {"1.0": 1} and meta["seeds"] == [0]
    assert meta["level_metrics"] == {"group": "accuracy", "kind": "accuracy"}
    assert meta["train_sizes"] == {"1.0": 160} and meta["test_size"] == 60
    assert meta["chosen"]["ce"]["1.0"] == {"params": {}, "trials": []}
    assert meta["chosen"]["raw"]["1.0"] == {"params": {}, "trials": []}
    trials = meta["chosen"]["mlcl"]["1.0"]["trials"]
    assert [t["params"] for t in trials] == [{"coarse_weight": 0.5}, {"coarse_weight": 1.0}]
    for trial in trials:
        assert trial["score"] == pytest.approx(
            np.mean(list(trial["validation"].values())), abs=1e-4
        )
    best = max(trials, key=lambda t: t["score"])  # the first of equal scores
    assert meta["chosen"]["mlcl"]["1.0"]["params"] == best["params"]
    for key in ("machine", "date", "command"):
        assert meta[key]
    table = open(os.path.join(bench["out"], "results.md"), encoding="utf-8").read()
    assert "| method | group @ 1.0 | kind @ 1.0 |" in table and "±" in table
    assert "| ce (classifier) | – |" in table
    with open(os.path.join(bench["out"], "results.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_selection_sees_training_rows_only_and_never_test_labels(bench):
    data = load_npz(bench["data"])
    train_rows, test_rows = rows(data.x), rows(data.x_test)
    label_of = {row.tobytes(): data.labels["kind"][i] for i, row in enumerate(data.x)}
    selection = [c for c in bench["calls"] if rows(c[0].x_test) != test_rows]
    final = [c for c in bench["calls"] if rows(c[0].x_test) == test_rows]
    assert len(selection) == 2  # the two mlcl candidates; ce has no grid
    assert len(final) == 2  # one per method and seed
    for dataset, kwargs in selection:
        fit, held_out = rows(dataset.x), rows(dataset.x_test)
        assert not fit & held_out
        assert fit | held_out == train_rows  # fraction 1.0: every training row, no test row
        assert not (fit | held_out) & test_rows
        assert len(held_out) == 32  # the 0.2 validation split of 160
        expected = [label_of[row.tobytes()] for row in dataset.x_test]
        np.testing.assert_array_equal(dataset.test_labels["kind"], expected)
        assert kwargs["fraction"] == 1.0 and kwargs["out"] is None
        assert kwargs.get("validation_fraction") is None


def test_selection_refuses_a_dataset_with_a_test_split(bench):
    data = load_npz(bench["data"])
    with pytest.raises(ValueError, match="`dataset` should hold training samples only"):
        select_hyperparameters(data, "mlcl", [{"coarse_weight": 0.5}, {}], epochs=1)


def test_parse_grid_expands_products_in_order():
    grid, candidates = parse_grid(
        '{"mlcl+ce": {"temperature": [0.1, 0.2], "ce_weight": [1, 2]}}', ["ce", "mlcl+ce"]
    )
    assert grid == {"mlcl+ce": {"temperature": [0.1, 0.2], "ce_weight": [1.0, 2.0]}}
    assert candidates["ce"] == [{}]
    assert candidates["mlcl+ce"] == [
        {"temperature": 0.1, "ce_weight": 1.0},
        {"temperature": 0.1, "ce_weight": 2.0},
        {"temperature": 0.2, "ce_weight": 1.0},
        {"temperature": 0.2, "ce_weight": 2.0},
    ]
    assert parse_grid(None, ["mlcl"])[1]["mlcl"] == [
        {"coarse_temperature": 0.1},
        {"coarse_temperature": 0.5},
    ]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"supcon": {"ce_weight": [1.0]}}, "should only set parameters of that method"),
        ({"ce": {"temperature": [0.1]}}, "should only set parameters of that method"),
        ({"supcon": {"temperature": [0.0]}}, "should hold positive numbers"),
        ({"supcon": {"temperature": []}}, "non-empty list"),
        ({"triplet": {}}, "`method` should be one of"),
        ("{not json", "not JSON"),
    ],
)
def test_parse_grid_rejects_bad_grids(grid, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_grid(grid, ["supcon"])


def test_bad_arguments_raise_before_training(tmp_path):
    data = write_npz(os.path.join(tmp_path, "toy.npz"), n=40, n_test=8)
    with pytest.raises(ValueError, match=r"`fractions` should be in \(0, 1\]"):
        run_quality_bench(data, ["ce"], fractions=[1.5], seeds=1, epochs=1)
    with pytest.raises(ValueError, match="needs a multi-hot label level"):
        run_quality_bench(data, ["ce", "jaccard"], fractions=[1.0], seeds=1, epochs=1)
    with pytest.raises(ValueError, match="`seeds` should be a positive int"):
        run_quality_bench(data, ["ce"], fractions=[1.0], seeds=0, epochs=1)


def test_summarize_uses_the_sample_standard_deviation():
    entry = summarize([0.5, 0.7, 0.9])
    assert entry == {"mean": 0.7, "std": 0.2, "runs": [0.5, 0.7, 0.9]}
    assert summarize([0.25]) == {"mean": 0.25, "std": 0.0, "runs": [0.25]}


def test_results_table_bolds_the_best_mean_of_each_column():
    results = {
        "ce": {"0.1": {"fine": {**summarize([0.6, 0.8]), "classifier": summarize([0.8])}}},
        "mlcl": {"0.1": {"fine": summarize([0.75])}},
    }
    table = results_table(results, {"levels": ["fine"]})
    assert table.splitlines()[2] == "| ce | 0.700 ± 0.141 |"
    assert table.splitlines()[3] == "| ce (classifier) | **0.800 ± 0.000** |"
    assert table.splitlines()[4] == "| mlcl | 0.750 ± 0.000 |"


def multi_label_data(n=150, n_test=60, seed=0):
    """Two multi-hot levels: 3 blocks (coarse) over 6 labels, 2 per block; separable inputs."""
    rng = np.random.default_rng(seed)

    def split(size):
        block = np.arange(size) % 3
        fine = np.zeros((size, 6), "int32")
        fine[np.arange(size), 2 * block] = 1
        fine[np.arange(size), 2 * block + 1] = rng.random(size) < 0.5
        rows = np.arange(size)
        x = rng.normal(size=(size, 12))
        x[rows, 2 * block] += 4
        x[rows, 6 + block] += 4 * fine[rows, 2 * block + 1]
        return x.astype("float32"), {"block": np.eye(3, dtype="int32")[block], "labels": fine}

    x, labels = split(n)
    x_test, test_labels = split(n_test)
    return LabeledDataset(x=x, labels=labels, x_test=x_test, test_labels=test_labels, name="ml")


def test_multi_label_bench_thresholds_classifier_and_label_heads(tmp_path):
    out = os.path.join(tmp_path, "out")
    results, calls = recorded_bench(
        multi_label_data(),
        ["bce", "mlcl-labels", "mlcl-groups", "mlcl"],
        fractions=[1.0],
        seeds=1,
        epochs=2,
        out=out,
        grid={"mlcl-labels": {"temperature": [0.1, 0.2]}},
    )
    assert list(results) == ["raw", "bce", "mlcl-labels", "mlcl-groups", "mlcl"]
    for method, by_fraction in results.items():
        for level, entry in by_fraction["1.0"].items():
            assert set(entry["metrics"]) == {"macro_f1", "micro_f1", "map"}
            assert entry["mean"] == entry["metrics"]["macro_f1"]["mean"]  # the headline
            # Separable inputs: well above predicting every label (macro-F1 0.5 on `block`,
            # 0.39 on `labels`); 0.83 to 0.91 measured.
            assert entry["mean"] > 0.7, (method, level, entry["mean"])
            assert ("classifier" in entry) == (method == "bce" and level == "labels")
    own = results["bce"]["1.0"]["labels"]["classifier"]
    assert set(own["metrics"]) == {"macro_f1", "micro_f1", "map"}
    final = [kwargs for _, kwargs in calls if kwargs["fraction"] == 1.0 and len(_.x) == 150]
    assert [kwargs["method"] for kwargs in final] == ["bce", "mlcl-labels", "mlcl-groups", "mlcl"]
    assert all(kwargs["validation_fraction"] == 0.2 for kwargs in final)
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    assert meta["level_metrics"] == {"block": "macro-F1", "labels": "macro-F1"}
    assert "threshold" in meta["thresholds"]
    trials = meta["chosen"]["mlcl-labels"]["1.0"]["trials"]
    assert [t["params"] for t in trials] == [{"temperature": 0.1}, {"temperature": 0.2}]
    table = open(os.path.join(out, "results.md"), encoding="utf-8").read()
    assert "| bce (classifier) | – |" in table
    assert "macro-F1 / micro-F1 / mAP" in table


def test_bench_selection_scores_multi_hot_levels_by_map(monkeypatch):
    def fake(dataset, **kwargs):
        scale = kwargs["temperature"]
        metrics = {"macro_f1": 0.9 - scale, "micro_f1": 0.5, "map": scale}
        return {"probe_metrics": {"labels": metrics}}

    monkeypatch.setattr(selection, "train_and_evaluate", fake)
    data = multi_label_data()
    data = LabeledDataset(x=data.x, labels={"labels": data.labels["labels"]}, name="ml")
    best, trials = select_hyperparameters(
        data, "bce", [{"temperature": 0.1}, {"temperature": 0.3}], epochs=1
    )
    assert best == {"temperature": 0.3}  # higher mAP, though lower macro-F1
    assert [t["score"] for t in trials] == [0.1, 0.3]


def test_tfidf_features_are_fitted_on_training_texts_only():
    data = LabeledDataset(
        x=np.array(["red apple pie", "green apple tart", "stock market fell", "bond market rose"]),
        labels={"label": [0, 0, 1, 1]},
        x_test=np.array(["apple market", "zebra quokka"]),
        test_labels={"label": [0, 1]},
    )
    features = tfidf_features(data, dim=3)
    assert features.x.shape == (4, 3) and features.x_test.shape == (2, 3)
    assert features.x.dtype == np.float32
    # Words never seen in training have no TF-IDF column, so their text maps to zero.
    np.testing.assert_array_equal(features.x_test[1], np.zeros(3))
    assert np.abs(features.x_test[0]).sum() > 0


def test_encoder_width_and_epochs_are_checked_before_training(tmp_path):
    data = write_npz(os.path.join(tmp_path, "toy.npz"), n=40, n_test=8)
    with pytest.raises(ValueError, match="should hold whole numbers >= 2"):
        run_quality_bench(data, ["ce"], grid={"ce": {"encoder_width": [1]}}, seeds=1, epochs=1)
    with pytest.raises(ValueError, match="one entry per fraction"):
        run_quality_bench(data, ["ce"], fractions=[1.0], seeds=1, epochs={1.0: 1, 0.5: 2})
    images = LabeledDataset(
        x=np.zeros((20, 8, 8), "float32"), labels={"label": np.arange(20) % 2}, name="images"
    )
    with pytest.raises(ValueError, match="gets the image encoder"):
        run_quality_bench(images, ["ce"], grid={"ce": {"encoder_width": [64]}}, seeds=1, epochs=1)
