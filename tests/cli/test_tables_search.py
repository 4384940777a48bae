"""Your own table end to end: train on a CSV with string labels, evaluate, search, embed.

One run is trained per backend (a module fixture) and every test reads it: its results name
the labels, its stored index answers `keras-mlcl search` with label names, `embed` writes
what the model gives, and the SavedModel's `search` endpoint, served in a fresh process,
gives what `EmbeddingIndex.search` gives.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_mlcl.experiments.saved_run import SavedRun
from keras_mlcl_launcher import run
from tests.cli.commands import command
from tests.cli.commands import one_error_line

# The command's plumbing above the backend: once per `make test` (the search itself is tested
# on every backend in tests/search/, the SavedModel endpoint in tests/models/).
pytestmark = pytest.mark.backend_independent

CATEGORIES = {"cat": "animal", "dog": "animal", "car": "vehicle", "bus": "vehicle"}


def write_table(path, n=120, seed=0, ids=True):
    """A CSV of `n` rows: `sku` ids, `kind` and `animal` string labels, 6 numeric features."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    fine_names = np.array(sorted(CATEGORIES))
    fine = rng.integers(0, len(fine_names), size=n)
    centres = rng.normal(size=(len(fine_names), 6)) * 3
    x = centres[fine] + rng.normal(size=(n, 6))
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(6)])
    frame.insert(0, "animal", fine_names[fine])
    frame.insert(0, "kind", [CATEGORIES[name] for name in fine_names[fine]])
    if ids:
        frame.insert(0, "sku", [f"item-{seed}-{i}" for i in range(n)])
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run trained by the command on a CSV with string hierarchical labels and ids."""
    folder = tmp_path_factory.mktemp("table")
    data = os.path.join(folder, "items.csv")
    frame = write_table(data)
    out = os.path.join(folder, "run")
    args = ["train", "--data", data, "--label-columns", "kind,animal", "--id-column", "sku"]
    args += ["--epochs", "2", "--batch-size", "32", "--plot", "pca", "--out", out, "--quiet"]
    assert run(args) == 0
    return {"folder": folder, "data": data, "frame": frame, "out": out}


def test_results_name_the_labels_and_the_table(table_run):
    """results.json records the string labels' mapping, the columns and the stored index."""
    with open(os.path.join(table_run["out"], "results.json")) as f:
        results = json.load(f)
    assert results["levels"] == ["kind", "animal"]
    assert results["class_names"] == {"kind": ["animal", "vehicle"], "animal": sorted(CATEGORIES)}
    assert results["table"]["labels"] == ["kind", "animal"]
    assert results["table"]["features"] == [f"f{j}" for j in range(6)]
    assert results["table"]["id"] == "sku"
    assert results["index"]["outputs"] == ["embedding", "kind", "animal"]
    assert results["index"]["rows"] == results["train_size"]
    assert results["plots"]["embeddings"]["file"] is not None
    model_names = SavedRun(table_run["out"]).model.class_names
    assert model_names["animal"] == sorted(CATEGORIES)


def test_search_writes_neighbours_with_label_names(table_run, tmp_path, capfd):
    """Each query's nearest stored rows, nearest first, with their ids and label names; a
    query that is a stored row finds itself first."""
    frame = table_run["frame"]
    queries = os.path.join(tmp_path, "queries.csv")
    frame.iloc[:20].to_csv(queries, index=False)
    out = os.path.join(tmp_path, "neighbours.csv")
    code, _, err = command(
        capfd, "search", "--run", table_run["out"], "--data", queries, "--head", "animal",
        "--k", "3", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["query", "rank", "reference", "score", "kind", "animal"]
    assert len(rows) == 20 * 3
    by_sku = frame.set_index("sku")
    stored = set(SavedRun(table_run["out"]).index("animal").ids.tolist())
    for row in rows:
        assert row["animal"] == by_sku.loc[row["reference"], "animal"]
        assert row["kind"] == by_sku.loc[row["reference"], "kind"]
    for query in frame["sku"][:20]:
        mine = [r for r in rows if r["query"] == query]
        assert [r["rank"] for r in mine] == ["1", "2", "3"]
        scores = [float(r["score"]) for r in mine]
        assert scores == sorted(scores, reverse=True)
        if query in stored:
            assert mine[0]["reference"] == query and scores[0] > 0.999


def test_search_matches_numpy_on_the_models_embeddings(table_run, tmp_path):
    """The command's neighbours are the NumPy top-k of the run's normalised head outputs."""
    run = SavedRun(table_run["out"])
    x, ids = run.inputs(table_run["data"])
    index = run.index("kind")
    queries = run.embed(x[:10], "kind")
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = queries @ index.embeddings.T
    found, found_scores = index.search(run.embed(x[:10], "kind"), k=4)
    for i in range(10):
        order = np.lexsort((np.arange(len(index)), -scores[i]))[:4]
        np.testing.assert_allclose(found_scores[i], scores[i][order], atol=1e-5)
    assert ids[:3].tolist() == table_run["frame"]["sku"][:3].tolist()


def test_references_and_embed(table_run, tmp_path, capfd):
    """`--references` searches other items; `embed` writes the model's embeddings."""
    other = os.path.join(tmp_path, "other.csv")
    frame = write_table(other, n=30, seed=5)
    out = os.path.join(tmp_path, "n.csv")
    code, _, err = command(
        capfd, "search", "--run", table_run["out"], "--data", table_run["data"],
        "--references", other, "--k", "2", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["reference"] for r in rows} <= set(frame["sku"])
    run = SavedRun(table_run["out"])
    x, _ = run.inputs(other)
    for name in ("e.npz", "e.parquet"):
        path = os.path.join(tmp_path, name)
        code, _, err = command(
            capfd, "embed", "--run", table_run["out"], "--data", other, "--out", path
        )
        assert code == 0, err
        if name.endswith(".npz"):
            written = np.load(path)
            ids, embeddings = written["ids"], written["embeddings"]
        else:
            import pandas as pd

            table = pd.read_parquet(path)
            ids, embeddings = table["id"].to_numpy(), table.drop(columns="id").to_numpy()
        assert ids.tolist() == frame["sku"].tolist()
        np.testing.assert_allclose(embeddings, run.embed(x), atol=1e-5)
    code, _, err = command(
        capfd, "embed", "--run", table_run["out"], "--data", other, "--out", path
    )
    assert code == 2 and "never replaced" in one_error_line(err)


def test_saved_model_search_endpoint_matches_the_index(table_run):
    """`search_animal` of the exported SavedModel, served by TensorFlow in a fresh process,
    gives the ids and scores of `EmbeddingIndex.search` on the same inputs (k = 10, the
    export's)."""
    pytest.importorskip("tensorflow")
    run = SavedRun(table_run["out"])
    x, _ = run.inputs(table_run["data"])
    ids, scores = run.index("animal").search(run.embed(x[:8], "animal"), k=10)
    np.save(os.path.join(table_run["folder"], "queries.npy"), x[:8])
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.search_animal(tf.constant(np.load(sys.argv[2])))\n"
        "np.savez(sys.argv[3], ids=out['ids'].numpy().astype(str), scores=out['scores'].numpy())\n"
    )
    served = os.path.join(table_run["folder"], "served.npz")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    saved_model = os.path.join(table_run["out"], "saved_model")
    queries = os.path.join(table_run["folder"], "queries.npy")
    result = subprocess.run(
        [sys.executable, "-c", script, saved_model, queries, served],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = np.load(served)
    assert got["ids"].tolist() == ids.astype(str).tolist()
    np.testing.assert_allclose(got["scores"], scores, atol=1e-4)


def test_evaluate_reads_the_table_with_the_runs_columns(table_run, tmp_path, capfd):
    """`evaluate` on the run's own CSV needs no column options: the run's are used."""
    out = os.path.join(tmp_path, "metrics.json")
    model = os.path.join(table_run["out"], "model.keras")
    code, _, err = command(
        capfd, "evaluate", "--model", model, "--data", table_run["data"], "--out", out, "--quiet"
    )
    assert code == 0, err
    with open(out) as f:
        metrics = json.load(f)
    assert metrics["probe_rows"]["same_as"] == "the run that wrote the model"
    assert set(metrics["linear_probe"]) == {"kind", "animal"}


@pytest.mark.parametrize(
    "change, args, expected",
    [
        ("none", ["--label-columns", "kind,species"], "species"),
        ("one_value", ["--label-columns", "kind,animal"], "one distinct value"),
        ("nan", ["--label-columns", "kind,animal"], "f2"),
        ("none", [], "--label-columns"),
        ("empty", ["--label-columns", "kind,animal"], "empty"),
    ],
)
def test_bad_tables_are_one_line(tmp_path, capfd, change, args, expected):
    """A missing column, a label column with one value, NaN in a feature, a table without
    `--label-columns` and an empty file are refused in one line, before training."""
    path = os.path.join(tmp_path, "bad.csv")
    frame = write_table(path, n=40)
    if change == "one_value":
        frame["kind"] = "animal"
    if change == "nan":
        frame.loc[7, "f2"] = np.nan
    frame.to_csv(path, index=False)
    if change == "empty":
        open(path, "w").close()
    code, _, err = command(capfd, "train", "--data", path, *args, "--out", str(tmp_path / "r"))
    assert code == 2
    line = one_error_line(err)
    assert expected in line
    assert not os.path.exists(tmp_path / "r")


def test_table_options_need_a_table_and_search_checks_its_arguments(table_run, tmp_path, capfd):
    """Table options with an `.npz` are refused; `search` refuses an unknown head, a `--k`
    above the stored rows, an existing `--out` and a folder that is not a run."""
    code, _, err = command(capfd, "train", "--data", "x.npz", "--label-columns", "a")
    assert code == 2 and "--label-columns" in one_error_line(err)
    base = ["search", "--run", table_run["out"], "--data", table_run["data"]]
    out = str(tmp_path / "n.csv")
    code, _, err = command(capfd, *base, "--head", "species", "--out", out)
    assert code == 2 and "species" in one_error_line(err)
    code, _, err = command(capfd, *base, "--k", "100000", "--out", out)
    assert code == 2 and "--k" in one_error_line(err)
    open(out, "w").close()
    code, _, err = command(capfd, *base, "--out", out)
    assert code == 2 and "never replaced" in one_error_line(err)
    code, _, err = command(
        capfd, "search", "--run", str(tmp_path), "--data", "q.csv", "--out", str(tmp_path / "a.csv")
    )
    assert code == 2 and "run folder" in one_error_line(err)
