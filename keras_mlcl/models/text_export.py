"""TF SavedModel export of a text model that serves raw strings.

The `serve` endpoint takes a `tf.string` tensor `(None,)` and returns the
model's outputs (the dict of `predict`: `embedding`, one embedding per head,
and any classifier logits). Tokenization and packing run inside the served
function as TensorFlow ops (keras-hub's WordPiece tokenizer is built on
tensorflow-text), so a client sends text, not token ids. A second endpoint,
`serve_token_ids`, takes the int32 token ids `(None, sequence_length)` that
`TextPreprocessor` gives.

The SavedModel holds tensorflow-text ops: a serving process runs
`import tensorflow_text` before `tf.saved_model.load` (TF Serving needs a
build with those ops). From the JAX and PyTorch backends the export runs in
a TensorFlow-backend child process from a `.keras` copy of the model, as in
`keras_mlcl.models.export`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import keras

from keras_mlcl.data.text_preprocessor import TextPreprocessor
from keras_mlcl.models.export import check_tensorflow_installed
from keras_mlcl.models.export import load_in_child


def export_text_saved_model(
    model: keras.Model,
    preprocessor: TextPreprocessor,
    filepath: str | os.PathLike[str],
    modules: Sequence[str] = (),
    verbose: bool = False,
) -> None:
    """Writes `model` as a TF SavedModel whose `serve` endpoint takes raw strings.

    ```
    serve(texts)           = model(preprocessor.pack(texts))   texts: tf.string (None,)
    serve_token_ids(ids)   = model(ids)                         ids: int32 (None, sequence_length)
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
    if keras.backend.backend() == "tensorflow":
        _write_archive(model, preprocessor, filepath, verbose)
        return
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "model.keras")
        config = os.path.join(folder, "text_preprocessor.json")
        model.save(source)
        with open(config, "w", encoding="utf-8") as f:
            json.dump(preprocessor.get_config(), f)
        command = [
            sys.executable,
            "-m",
            "keras_mlcl.models.text_export",
            source,
            config,
            os.fspath(filepath),
            "--modules",
            *modules,
        ]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"Exporting the text model from the {keras.backend.backend()} backend through a "
            "TensorFlow process failed:\n" + result.stderr[-4000:]
        )
    if verbose:
        print(result.stdout)


def _write_archive(model: Any, preprocessor: Any, filepath: Any, verbose: bool) -> None:
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

    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec((None,), tf.string, name="texts")]
    )
    archive.add_endpoint(
        "serve_token_ids",
        serve_token_ids,
        input_signature=[
            tf.TensorSpec((None, preprocessor.sequence_length), tf.int32, name="token_ids")
        ],
    )
    archive.write_out(os.fspath(filepath), verbose=verbose)


def main(argv: Sequence[str] | None = None) -> None:
    """Child-process entry: load a `.keras` model and a preprocessor config, export (TF)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("source")
    parser.add_argument("preprocessor")
    parser.add_argument("target")
    parser.add_argument("--modules", nargs="*", default=[])
    args = parser.parse_args(argv)
    model = load_in_child(args.source, args.modules)
    with open(args.preprocessor, encoding="utf-8") as f:
        preprocessor = TextPreprocessor.from_config(json.load(f))
    _write_archive(model, preprocessor, args.target, verbose=False)


if __name__ == "__main__":
    main()
