"""TF SavedModel export for every backend, with optional search endpoints.

`keras.Model.export(format="tf_saved_model")` works from the TensorFlow and
JAX backends. From the torch backend Keras 3.15 goes through `torch.export`
and `torch_xla` (not installable here) and fails on dict outputs, so
`keras_mlcl.backend` saves the model as `.keras` and runs this module as a
TensorFlow-backend child process (`main`) that loads and exports it. Custom
objects must be registered when `keras_mlcl` (and any module named in
`modules`) is imported.

Search endpoints: given stored embeddings of reference items (an index per
model output, `search_indexes`), the SavedModel also serves an exact top-k
search of each, all in the graph:

```
search(x) = top_k(normalize(model(x)[output]) . E^T)   E: the unit stored rows (N, D)
```

returning `{"ids", "scores", "rows"}` `(B, k)`, `k = min(search_k, N)`,
scores (cosines) descending, ties broken by the lower row. The endpoint is
`search` for the encoder's `embedding` and `search_<head>` for a head.
These endpoints are written by the TensorFlow backend: the other backends
export through the TensorFlow child process, with the indexes in a
temporary `.npz` file.

A SavedModel is a TensorFlow format: without TensorFlow installed the export
raises `MissingTensorFlowError` (one line that says what to install) before
doing any work.
"""

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl import backend
from keras_mlcl.models.search_endpoints import SearchIndexes
from keras_mlcl.models.search_endpoints import add_search_endpoints
from keras_mlcl.utils.validation import check_positive_int

EXPORT_NEEDS_TENSORFLOW = (
    "exporting a SavedModel needs TensorFlow: pip install 'keras-mlcl[export]' or tensorflow"
)

# `{output name: (unit embeddings float32 (N, D), ids int64 or str (N,))}`.


class MissingTensorFlowError(ImportError):
    """Raised when a SavedModel export is asked for and TensorFlow is not installed."""


def check_tensorflow_installed() -> None:
    """Raises `MissingTensorFlowError` unless TensorFlow can be imported.

    Only looks the module up (no import), so it is cheap under every backend.
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise MissingTensorFlowError(EXPORT_NEEDS_TENSORFLOW)


def input_signature_of(model: keras.Model) -> list[keras.InputSpec]:
    """`[keras.InputSpec]` from a model's encoder inputs, batch left open."""
    encoder = getattr(model, "encoder", model)
    inputs = getattr(encoder, "inputs", None)
    if not inputs:
        raise ValueError(
            "`input_signature` is needed to export a model whose encoder has no "
            "symbolic inputs, e.g. [keras.InputSpec(shape=(None, 32), dtype='float32')]."
        )
    return [keras.InputSpec(shape=(None,) + tuple(t.shape[1:]), dtype=str(t.dtype)) for t in inputs]


def check_search_indexes(model: keras.Model, search_indexes: Mapping[str, Any]) -> SearchIndexes:
    """The search indexes as unit float32 rows and int64 or str ids, or raises.

    Args:
        model: the model to export; its outputs that can be searched are
            `embedding` and its heads (`model.heads.head_names`).
        search_indexes: `{output name: (embeddings, ids)}`: `embeddings` a
            float `(N, D)` array of finite, non-zero rows, `ids` an `(N,)`
            array of ints or strings, or None for the row numbers.

    Returns:
        `{output name: (embeddings, ids)}`, each row scaled to unit length.

    Example:

    >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model = keras_mlcl.ContrastiveModel(encoder, heads={"fine": 2})
    >>> indexes = check_search_indexes(model, {"fine": (np.array([[3.0, 4.0]]), ["a"])})
    >>> indexes["fine"][0], indexes["fine"][1]
    (array([[0.6, 0.8]], dtype=float32), array(['a'], dtype='<U1'))
    """
    if not isinstance(search_indexes, Mapping):
        raise ValueError(
            "`search_indexes` should be a dict {output name: (embeddings, ids)}. "
            f"Received: `search_indexes`={search_indexes!r}"
        )
    widths = _output_widths(model)
    checked = {}
    for output, entry in search_indexes.items():
        name = f"search_indexes[{output!r}]"
        if output not in widths:
            raise ValueError(
                f"`search_indexes` keys should be among {list(widths)}. Received: {output!r}"
            )
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ValueError(f"`{name}` should be a pair (embeddings, ids). Received: {entry!r}")
        rows = _unit_rows(name, entry[0])
        if widths[output] not in (None, rows.shape[1]):
            raise ValueError(
                f"`{name}` embeddings should have {widths[output]} columns, the width of "
                f"the model's {output!r} output. Received: shape {rows.shape}"
            )
        checked[output] = (rows, _ids(name, entry[1], len(rows)))
    return checked


def _output_widths(model: keras.Model) -> dict[str, int | None]:
    """`{output: width}` of the outputs that can be searched; None where unknown."""
    outputs = getattr(getattr(model, "encoder", None), "outputs", None)
    widths: dict[str, int | None] = {
        "embedding": outputs[0].shape[-1] if outputs and len(outputs) == 1 else None
    }
    configs = getattr(getattr(model, "heads", None), "head_configs", {})
    widths.update({head: config.get("output_dim") for head, config in configs.items()})
    return widths


def _unit_rows(name: str, embeddings: Any) -> np.ndarray:
    """`embeddings` `(N, D)` scaled to unit rows, float32; raises on bad values."""
    rows = np.asarray(embeddings)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.dtype.kind not in "fiu":
        raise ValueError(
            f"`{name}` embeddings should be a non-empty float array (N, D). "
            f"Received: shape {rows.shape}, dtype {rows.dtype}"
        )
    rows = rows.astype("float64")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError(f"`{name}` embeddings should be finite, non-zero rows.")
    return (rows / norms).astype("float32")


def _ids(name: str, ids: Any, count: int) -> np.ndarray:
    """`ids` as int64 or str `(count,)`; the row numbers when None; raises on bad values."""
    if ids is None:
        return np.arange(count, dtype="int64")
    values = np.asarray(ids)
    if values.dtype.kind == "O" and all(isinstance(v, str) for v in values.reshape(-1)):
        values = values.astype(str)
    if values.shape != (count,) or values.dtype.kind not in "iuU":
        raise ValueError(
            f"`{name}` ids should be None or an array ({count},) of ints or strings. "
            f"Received: shape {values.shape}, dtype {values.dtype}"
        )
    return values if values.dtype.kind == "U" else values.astype("int64")


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike[str],
    input_signature: Sequence[keras.InputSpec],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: Mapping[str, Any] | None = None,
    search_k: int = 10,
) -> None:
    """Writes `model` as a TF SavedModel with a `serve` endpoint, and search endpoints.

    Under the torch backend (and, with `search_indexes`, the JAX backend)
    the export runs in a TensorFlow-backend child process from a `.keras`
    copy of the model (see the module docstring).

    Args:
        model: a built Keras model.
        filepath: the SavedModel folder to write.
        input_signature: a list of `keras.InputSpec`.
        modules: modules the child process imports to register custom
            objects (torch and JAX backends only).
        verbose: print Keras' export summary.
        search_indexes: optional `{output name: (embeddings, ids)}` (see
            `check_search_indexes`): one search endpoint per entry.
        search_k: positive int, the most results a search returns.
            Defaults to 10.

    Raises:
        MissingTensorFlowError: TensorFlow is not installed (checked first).
    """
    check_tensorflow_installed()
    indexes = None
    if search_indexes is not None:
        indexes = check_search_indexes(model, search_indexes)
        check_positive_int("search_k", search_k)
    backend.export_saved_model(
        model, filepath, input_signature, modules, verbose, indexes, search_k
    )


def write_with_search(
    model: keras.Model,
    filepath: str | os.PathLike[str],
    input_signature: Sequence[keras.InputSpec],
    indexes: SearchIndexes,
    search_k: int,
    verbose: bool = False,
) -> None:
    """Writes `serve` (as `keras.Model.export` does) and the search endpoints; TensorFlow only."""
    archive = keras.export.ExportArchive()
    archive.track_and_add_endpoint("serve", model, input_signature)
    add_search_endpoints(archive, model.__call__, input_signature, indexes, search_k)
    archive.write_out(os.fspath(filepath), verbose=verbose)


def save_search_indexes(indexes: SearchIndexes, path: str) -> None:
    """Writes checked indexes to a `.npz` file for an export child process."""
    arrays: dict[str, Any] = {"outputs": np.array(list(indexes), dtype=str)}
    for i, (embeddings, ids) in enumerate(indexes.values()):
        arrays[f"embeddings_{i}"], arrays[f"ids_{i}"] = embeddings, ids
    np.savez(path, **arrays)


def load_search_indexes(path: str) -> SearchIndexes:
    """The indexes `save_search_indexes` wrote."""
    with np.load(path, allow_pickle=False) as arrays:
        return {
            str(output): (arrays[f"embeddings_{i}"], arrays[f"ids_{i}"])
            for i, output in enumerate(arrays["outputs"])
        }


def export_in_tensorflow_process(
    model: keras.Model,
    filepath: str | os.PathLike[str],
    input_signature: Sequence[keras.InputSpec],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: SearchIndexes | None = None,
    search_k: int = 10,
) -> None:
    """Saves `model` as `.keras` and exports it in a TensorFlow-backend child process (`main`).

    The weights are the same; the SavedModel's graph is TensorFlow's trace of
    the same `keras.ops` code. Checked `search_indexes` travel in a `.npz`.
    """
    specs = [{"shape": list(s.shape), "dtype": s.dtype} for s in input_signature]
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "model.keras")
        model.save(source)
        arguments = [source, os.fspath(filepath), "--signature", json.dumps(specs)]
        run_export_child(
            "keras_mlcl.models.export", arguments, folder, search_indexes, search_k, modules,
            verbose, "Exporting",
        )  # fmt: skip


def run_export_child(
    module: str,
    arguments: Sequence[str],
    folder: str,
    search_indexes: SearchIndexes | None,
    search_k: int,
    modules: Sequence[str],
    verbose: bool,
    what: str,
) -> None:
    """Runs `python -m module arguments` under the TensorFlow backend, with the search
    indexes (saved into `folder`) and the modules to import; raises a `RuntimeError` with the
    child's stderr when it fails (`what` names the export in the message)."""
    command = [sys.executable, "-m", module, *arguments]
    if search_indexes is not None:
        indexes = os.path.join(folder, "search_indexes.npz")
        save_search_indexes(search_indexes, indexes)
        command += ["--search", indexes, "--search-k", str(search_k)]
    command += ["--modules", *modules]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} from the {keras.backend.backend()} backend through a TensorFlow process "
            "failed:\n" + result.stderr[-4000:]
        )
    if verbose:
        print(result.stdout)


def load_in_child(source: str, modules: Sequence[str]) -> keras.Model:
    """In an export child process: registers the custom objects, then loads `source`."""
    importlib.import_module("keras_mlcl")
    for module in modules:
        importlib.import_module(module)
    return keras.saving.load_model(source, compile=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Child-process entry: load a `.keras` file and export it (TF backend)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--signature", required=True)
    parser.add_argument("--search")
    parser.add_argument("--search-k", type=int, default=10)
    parser.add_argument("--modules", nargs="*", default=[])
    args = parser.parse_args(argv)
    model = load_in_child(args.source, args.modules)
    signature = [
        keras.InputSpec(shape=tuple(s["shape"]), dtype=s["dtype"])
        for s in json.loads(args.signature)
    ]
    if args.search is None:
        keras.Model.export(model, args.target, format="tf_saved_model", input_signature=signature)
    else:
        indexes = load_search_indexes(args.search)
        write_with_search(model, args.target, signature, indexes, args.search_k)


if __name__ == "__main__":
    main()
