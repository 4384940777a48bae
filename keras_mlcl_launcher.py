"""Entry point of the `keras-mlcl` console script.

It lives outside the `keras_mlcl` package so that it runs before Keras and
TensorFlow are imported: TensorFlow's C++ start-up logging (which no
setting fully silences) goes to a muted stderr during that import, so the
command's own messages, errors included, stand alone on stderr. TensorFlow,
when installed, is imported then under every backend, since Keras imports
it later anyway (tf.data input, SavedModel export).
"""

import os
import sys


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        from keras_mlcl.cli.main import main as cli_main

        try:  # imported later under jax/torch too (tf.data, export): log its start-up now
            import tensorflow  # noqa: F401
        except ImportError:
            pass
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
    sys.exit(cli_main())
