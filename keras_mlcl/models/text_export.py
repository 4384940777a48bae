"""TF SavedModel export of a text model that serves raw strings.

The `serve` endpoint takes a `tf.string` tensor `(None,)` and returns the
model's outputs (the dict of `predict`: `embedding`, one embedding per head,
and any classifier logits). Tokenization and packing run inside the served
function as TensorFlow ops (keras-hub's WordPiece tokenizer is built on
tensorflow-text), so a client sends text, not token ids. A second endpoint,
`serve_token_ids`, takes the int32 token ids `(None, sequence_length)` that
`TextPreprocessor` gives. With `search_indexes`, search endpoints (`search`,
`search_<head>`, see `keras_mlcl.models.export`) take raw strings too.

The SavedModel holds tensorflow-text ops: a serving process runs
`import tensorflow_text` before `tf.saved_model.load` (TF Serving needs a
build with those ops). From the JAX and PyTorch backends the export runs in
a TensorFlow-backend child process from a `.keras` copy of the model, as in
`keras_mlcl.models.export`.
"""

import argparse
import json
import os
import tempfile
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras

from keras_mlcl.data.text_preprocessor import TextPreprocessor
from keras_mlcl.models.export import check_search_indexes
from keras_mlcl.models.export import check_tensorflow_installed
from keras_mlcl.models.export import load_in_child
from keras_mlcl.models.export import load_search_indexes
from keras_mlcl.models.export import run_export_child
from keras_mlcl.models.search_endpoints import SearchIndexes
from keras_mlcl.models.search_endpoints import add_search_endpoints
from keras_mlcl.utils.validation import check_positive_int


def export_text_saved_model(
    model: keras.Model,
    preprocessor: TextPreprocessor,
    filepath: str | os.PathLike[str],
    modules: Sequence[str] = (),
    verbose: bool = False,
    search_indexes: Mapping[str, Any] | None = None,
    search_k: int = 10,
) -> None:
    """Writes `model` as a TF SavedModel whose `serve` endpoint takes raw strings.

    ```
    serve(texts)           = model(preprocessor.pack(texts))   texts: tf.string (None,)
    serve_token_ids(ids)   = model(ids)                         ids: int32 (None, sequence_length)
    search_<head>(texts)   = top-k stored rows of serve(texts)[head]   (one per search index)
    ```

    Args:
        model: a built Keras model taking token ids `(B, sequence_length)`,
            e.g. a `ContrastiveModel` with a text encoder.
        preprocessor: the `TextPreprocessor` that made the model's training
            ids.
        filepath: the SavedModel folder to write.
        modules: modules a child process imports to register custom objects
            (JAX and PyTorch backends only).
        verbose: print Keras' export summary.
        search_indexes: optional `{output name: (embeddings, ids)}`
            (`"embedding"` or a head name; see
            `keras_mlcl.models.export.check_search_indexes`): one search
            endpoint per entry, `search` for `"embedding"` and
            `search_<head>` for a head, taking raw strings and returning
            `{"ids", "scores", "rows"}` `(B, k)`.
        search_k: positive int, the most results a search returns.
            Defaults to 10.

    Raises:
        MissingTensorFlowError: TensorFlow is not installed (checked first).

    Example (a trained text model; tests/encoders/test_text_export.py runs it):

    ```python
    export_text_saved_model(model, preprocessor, "saved_model")
    # In a serving process (tensorflow_text registers the tokenizer ops):
    import tensorflow as tf, tensorflow_text
    tf.saved_model.load("saved_model").serve(tf.constant(["book a table for two"]))
    ```
    """
    if not isinstance(preprocessor, TextPreprocessor):
        raise ValueError(
            "`preprocessor` should be a `keras_mlcl.data.TextPreprocessor`. "
            f"Received: `preprocessor`={preprocessor!r}"
        )
    check_tensorflow_installed()
    indexes = None
    if search_indexes is not None:
        indexes = check_search_indexes(model, search_indexes)
        check_positive_int("search_k", search_k)
    if keras.backend.backend() == "tensorflow":
        _write_archive(model, preprocessor, filepath, verbose, indexes, search_k)
        return
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "model.keras")
        config = os.path.join(folder, "text_preprocessor.json")
        model.save(source)
        with open(config, "w", encoding="utf-8") as f:
            json.dump(preprocessor.get_config(), f)
        run_export_child(
            "keras_mlcl.models.text_export", [source, config, os.fspath(filepath)], folder,
            indexes, search_k, modules, verbose, "Exporting the text model",
        )  # fmt: skip


def _write_archive(
    model: Any,
    preprocessor: Any,
    filepath: Any,
    verbose: bool,
    indexes: SearchIndexes | None = None,
    search_k: int = 10,
) -> None:
    """The export itself; TensorFlow backend only."""
    import tensorflow as tf

    preprocessor.pack(tf.constant([""]))  # builds the tokenizer and packer layers
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor.tokenizer)
    archive.track(preprocessor.packer)

    def serve(texts: Any) -> Any:
        return model(preprocessor.pack(texts), training=False)

    def serve_token_ids(token_ids: Any) -> Any:
        return model(token_ids, training=False)

    texts_signature = [tf.TensorSpec((None,), tf.string, name="texts")]
    archive.add_endpoint("serve", serve, input_signature=texts_signature)
    archive.add_endpoint(
        "serve_token_ids",
        serve_token_ids,
        input_signature=[
            tf.TensorSpec((None, preprocessor.sequence_length), tf.int32, name="token_ids")
        ],
    )
    if indexes is not None:
        add_search_endpoints(archive, serve, texts_signature, indexes, search_k)
    archive.write_out(os.fspath(filepath), verbose=verbose)


def main(argv: Sequence[str] | None = None) -> None:
    """Child-process entry: load a `.keras` model and a preprocessor config, export (TF)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("source")
    parser.add_argument("preprocessor")
    parser.add_argument("target")
    parser.add_argument("--search")
    parser.add_argument("--search-k", type=int, default=10)
    parser.add_argument("--modules", nargs="*", default=[])
    args = parser.parse_args(argv)
    model = load_in_child(args.source, args.modules)
    with open(args.preprocessor, encoding="utf-8") as f:
        preprocessor = TextPreprocessor.from_config(json.load(f))
    indexes = None if args.search is None else load_search_indexes(args.search)
    _write_archive(model, preprocessor, args.target, False, indexes, args.search_k)


if __name__ == "__main__":
    main()
