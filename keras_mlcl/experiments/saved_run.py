"""A finished run folder read back: search its stored items, embed new ones.

`train_and_evaluate` stores, in the run folder's `index/`, one `EmbeddingIndex` of its training
rows per output: `index/embedding` (the encoder) and `index/<head>` (one per head, that level's
embedding), each row with its id and its label's name at every level (`build_indexes`).
`SavedRun` reads a run folder back (its model, preprocessing, table columns and indexes), and
`search_table` / `embed_table` answer the `keras-mlcl search` and `embed` commands.
"""

import csv
import json
import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_mlcl.data import TableColumns
from keras_mlcl.data import is_table
from keras_mlcl.data import read_table
from keras_mlcl.data import table_inputs
from keras_mlcl.experiments.encoders import Preprocessing
from keras_mlcl.search import EmbeddingIndex
from keras_mlcl.utils.atomic_write import write_beside
from keras_mlcl.utils.names import file_name_part

RESULTS_FILE = "results.json"
INDEX_FOLDER = "index"
ENCODER_OUTPUT = "embedding"
MULTI_LABEL_JOIN = "|"


def index_path(output: str) -> str:
    """The folder of `output`'s index in a run, `index/<output>` (a level name that is no
    plain short identifier gets a bounded, safe folder name: `utils.names.file_name_part`)."""
    return os.path.join(INDEX_FOLDER, file_name_part(output))


def label_names(labels: np.ndarray, names: Sequence[str] | None, separator: str) -> np.ndarray:
    """Each row's label at one level as text: its class name (its id when the level has no
    names), `""` when unlabelled; a multi-hot row's names joined with `separator`.

    Example:

    >>> label_names(np.array([1, -1, 0]), ["cat", "dog"], "|").tolist()
    ['dog', '', 'cat']
    >>> label_names(np.array([[1, 1], [0, 1]]), ["cat", "dog"], "|").tolist()
    ['cat|dog', 'dog']
    """
    labels = np.asarray(labels)
    width = labels.shape[1] if labels.ndim == 2 else int(labels.max(initial=-1)) + 1
    names = list(names) if names else [str(i) for i in range(width)]
    if labels.ndim == 2:
        text = [separator.join(names[j] for j in np.flatnonzero(row > 0)) for row in labels]
    else:
        text = [names[i] if i >= 0 else "" for i in labels.tolist()]
    return np.asarray(text, dtype=str)


def build_indexes(
    outputs: Mapping[str, np.ndarray],
    ids: np.ndarray,
    labels: Mapping[str, np.ndarray],
    class_names: Mapping[str, Sequence[str]] | None,
    separator: str = MULTI_LABEL_JOIN,
) -> dict[str, EmbeddingIndex]:
    """One `EmbeddingIndex` per model output (`"embedding"` and each head) of the same rows.

    Args:
        outputs: `{output name: (N, D) embeddings}`, e.g. a `ContrastiveModel`'s `predict`.
        ids: the rows' ids `(N,)`.
        labels: `{level: (N,) class ids or (N, K) multi-hot}`, stored as names
            (`label_names`).
        class_names: `{level: names}` for the levels that have them.
        separator: joins a multi-hot row's names.

    Returns:
        `{output name: EmbeddingIndex}`.
    """
    text = {
        level: label_names(values, (class_names or {}).get(level), separator)
        for level, values in labels.items()
    }
    indexes = {}
    for name, embeddings in outputs.items():
        head = None if name == ENCODER_OUTPUT else name
        indexes[name] = EmbeddingIndex(head=head).add(embeddings, ids=ids, labels=text)
    return indexes


def read_run_record(folder: str) -> dict[str, Any] | None:
    """The record (`results.json`) of the run in `folder`, or None when there is none.

    Raises a one-line `ValueError` naming the file when it cannot be read, is not JSON, is not
    a JSON object, or records a preprocessing other than `{"kind": "image" | "vector" |
    "text", ...}`.
    """
    path = os.path.join(folder, RESULTS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the run's record {path!r}: {error}") from None
    if not isinstance(record, dict):
        raise ValueError(
            f"The run's record {path!r} should be a JSON object written by `keras-mlcl train`. "
            f"Received: a JSON {type(record).__name__}"
        )
    preprocessing = record.get("preprocessing")
    if preprocessing is not None and (
        not isinstance(preprocessing, dict)
        or preprocessing.get("kind") not in ("image", "vector", "text")
        or (preprocessing["kind"] == "text" and not isinstance(preprocessing.get("text"), str))
    ):
        received = repr(preprocessing)[:200]
        raise ValueError(
            f"The run's record {path!r} should give `preprocessing` as {{'kind': 'image', "
            f"'vector' or 'text', ...}}. Received: {received}"
        )
    return record


def check_output_file(out: str, suffixes: Sequence[str]) -> str:
    """`out`, checked: a new file (never replaced) with one of `suffixes`, in a folder that
    exists."""
    out = os.fspath(out)
    if not out.lower().endswith(tuple(suffixes)):
        raise ValueError(f"`--out` should end in {' or '.join(suffixes)}. Received: {out!r}")
    if os.path.lexists(out):
        raise ValueError(f"`--out` {out!r} exists; it is never replaced: choose a new file.")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"`--out` {out!r}: the folder {folder!r} does not exist.")
    return out


class SavedRun:
    """A run folder written by `keras-mlcl train`, read back.

    Args:
        folder: the run folder (holding `results.json`, `model.keras` and `index/`).

    Example (tests/cli/test_search.py runs it):

    ```python
    run = SavedRun("saved_models/my_table_mlcl")
    x, ids = run.inputs("queries.csv")
    ids, scores = run.index("fine").search(x, k=5)
    ```
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        from keras_mlcl.experiments.runner import load_model_file

        folder = os.fspath(folder)
        results = read_run_record(folder)
        if results is None:
            raise ValueError(
                f"`--run` {folder!r} should be a run folder written by `keras-mlcl train` "
                f"(no {RESULTS_FILE} in it)."
            )
        if "preprocessing" not in results:
            record = os.path.join(folder, RESULTS_FILE)
            raise ValueError(f"{record!r} is not a keras-mlcl run's results.json.")
        if not os.path.isdir(os.path.join(folder, INDEX_FOLDER)):
            raise ValueError(
                f"The run {folder!r} has no stored index ({INDEX_FOLDER}/): it was written by "
                "an older keras-mlcl; train it again, or pass --references."
            )
        self.folder = folder
        self.results = results
        self.preprocessing = Preprocessing.from_record(results["preprocessing"], folder)
        self.model = load_model_file(os.path.join(folder, "model.keras"))
        table = results.get("table")
        self.columns = None if table is None else TableColumns.from_config(table)

    @property
    def outputs(self) -> list[str]:
        """The outputs that can be searched: `"embedding"` and the heads' names."""
        return [ENCODER_OUTPUT] + list(self.model.head_names)

    def output_name(self, head: str | None) -> str:
        """`head` checked against the model's heads (`None`: the encoder, `"embedding"`)."""
        if head is None:
            return ENCODER_OUTPUT
        if head not in self.model.head_names:
            raise ValueError(
                f"`--head` should be one of the run's heads {list(self.model.head_names)} (or "
                f"left out for the encoder's embedding). Received: {head!r}"
            )
        return head

    def inputs(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """`(model inputs, ids)` of a table's rows (or an `.npz` file's `x`), as the run's
        model takes them; ids are the id column's values, else the rows' numbers."""
        if isinstance(data, (str, os.PathLike)) and not is_table(data):
            x, ids = self._npz_inputs(os.fspath(data))
        else:
            if self.columns is None:
                raise ValueError(
                    f"The run {self.folder!r} was not trained on a table; give the items as an "
                    ".npz file with `x`."
                )
            x, ids = table_inputs(data, self.columns)
        if ids is None:
            ids = np.arange(len(x))
        return self.preprocessing(x), np.asarray(ids)

    def _npz_inputs(self, path: str) -> tuple[np.ndarray, None]:
        if not path.endswith(".npz") or not os.path.isfile(path):
            raise ValueError(
                f"`--data` should be a table (.csv, .parquet, .jsonl) or an .npz file with `x`. "
                f"Received: {path!r}"
            )
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files:
                raise ValueError(f"The .npz file {path!r} should hold the inputs as `x`.")
            return arrays["x"], None

    def embed(self, x: np.ndarray, head: str | None = None, batch_size: int = 256) -> np.ndarray:
        """The run's embeddings of model inputs `x`: the encoder's, or `head`'s."""
        name = self.output_name(head)
        if name == ENCODER_OUTPUT:
            return self.model.embed(x, batch_size=batch_size)
        return self.model.predict(x, batch_size=batch_size, verbose=0)[name]

    def index(self, head: str | None = None) -> EmbeddingIndex:
        """The stored index of the run's training rows for `head` (`None`: the encoder)."""
        name = self.output_name(head)
        return EmbeddingIndex.load(os.path.join(self.folder, index_path(name)))

    def references(self, data: Any, head: str | None = None) -> EmbeddingIndex:
        """An index of other items: a table's rows (with its label columns' values, where the
        table has them), embedded by the run's model."""
        frame = read_table(data) if is_table(data) else None
        x, ids = self.inputs(frame if frame is not None else data)
        labels = {}
        if frame is not None and self.columns is not None:
            for level in self.columns.labels:
                if level in frame.columns:
                    labels[level] = frame[level].fillna("").astype(str).to_numpy()
        index = EmbeddingIndex(head=head)
        return index.add(self.embed(x, head), ids=ids, labels=labels or None)


def search_table(
    run: SavedRun,
    data: Any,
    k: int = 10,
    head: str | None = None,
    references: Any = None,
) -> tuple[list[str], list[list[Any]]]:
    """The `k` nearest items of each row of `data`, one row per (query, rank).

    Args:
        run: a `SavedRun`.
        data: the queries: a table (path, `DataFrame`) or an `.npz` path.
        k: neighbours per query.
        head: search with this head's embedding (that level's neighbours); `None` for the
            encoder's.
        references: a table of other items to search instead of the run's training rows.

    Returns:
        `(header, rows)`: `["query", "rank", "reference", "score", <level>...]` and the rows.
    """
    index = run.index(head) if references is None else run.references(references, head)
    if k > len(index):
        raise ValueError(f"`--k` should be at most the {len(index)} stored items. Received: {k}")
    x, query_ids = run.inputs(data)
    rows_found, scores = index.search_rows(run.embed(x, head), k)
    levels = list(index.labels)
    header = ["query", "rank", "reference", "score", *levels]
    rows = []
    for query, found, found_scores in zip(query_ids.tolist(), rows_found, scores, strict=True):
        for rank, row in enumerate(found.tolist(), start=1):
            rows.append(
                [query, rank, index.ids[row].item(), round(float(found_scores[rank - 1]), 6)]
                + [index.labels[level][row] for level in levels]
            )
    return header, rows


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], out: str) -> None:
    """Writes a CSV file beside `out`, then moves it there (`out` must not exist)."""
    out = check_output_file(out, (".csv",))
    with write_beside(out) as partial:
        with open(partial, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


def write_embeddings(ids: np.ndarray, embeddings: np.ndarray, out: str) -> None:
    """Writes `ids` and `embeddings` to a new `.npz` (`ids`, `embeddings`) or `.parquet` file
    (an `id` column and one float column per dimension, `e0`, `e1`, ...)."""
    out = check_output_file(out, (".npz", ".parquet"))
    with write_beside(out) as partial:
        if out.lower().endswith(".npz"):
            with open(partial, "wb") as f:
                np.savez(f, ids=ids, embeddings=embeddings)
            return
        import pandas as pd

        columns = {f"e{j}": embeddings[:, j] for j in range(embeddings.shape[1])}
        pd.DataFrame({"id": ids, **columns}).to_parquet(partial, index=False)
