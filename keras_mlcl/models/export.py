"""TF SavedModel export for every backend.

`keras.Model.export(format="tf_saved_model")` works from the TensorFlow and
JAX backends. From the torch backend Keras 3.15 goes through `torch.export`
and `torch_xla` (not installable here) and fails on dict outputs, so
`keras_mlcl.backend` saves the model as `.keras` and runs this module as a
TensorFlow-backend child process (`main`) that loads and exports it. Custom
objects must be registered when `keras_mlcl` (and any module named in
`modules`) is imported.

A SavedModel is a TensorFlow format: without TensorFlow installed the export
raises `MissingTensorFlowError` (one line that says what to install) before
doing any work.
"""

import argparse
import importlib
import importlib.util
import json
import os
from collections.abc import Sequence

import keras

from keras_mlcl import backend

EXPORT_NEEDS_TENSORFLOW = (
    "exporting a SavedModel needs TensorFlow: pip install 'keras-mlcl[export]' or tensorflow"
)


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


def export_saved_model(
    model: keras.Model,
    filepath: str | os.PathLike[str],
    input_signature: Sequence[keras.InputSpec],
    modules: Sequence[str] = (),
    verbose: bool = False,
) -> None:
    """Writes `model` as a TF SavedModel with a `serve` endpoint.

    Under the torch backend the export runs in a TensorFlow-backend child
    process from a `.keras` copy of the model (see the module docstring).

    Args:
        model: a built Keras model.
        filepath: the SavedModel folder to write.
        input_signature: a list of `keras.InputSpec`.
        modules: modules the child process imports to register custom
            objects (torch backend only).
        verbose: print Keras' export summary.

    Raises:
        MissingTensorFlowError: TensorFlow is not installed (checked first).
    """
    check_tensorflow_installed()
    backend.export_saved_model(model, filepath, input_signature, modules, verbose)


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
    parser.add_argument("--modules", nargs="*", default=[])
    args = parser.parse_args(argv)
    model = load_in_child(args.source, args.modules)
    signature = [
        keras.InputSpec(shape=tuple(s["shape"]), dtype=s["dtype"])
        for s in json.loads(args.signature)
    ]
    keras.Model.export(model, args.target, format="tf_saved_model", input_signature=signature)


if __name__ == "__main__":
    main()
