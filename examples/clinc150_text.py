"""CLINC150 intents and domains with a keras-hub text encoder and joint cross-entropy.

The MLCL paper's recipe for text: a `domain` head (10 domains) and an `intent`
head (150 intents), each with its own SupCon loss, plus cross-entropy on the
intents. The encoder is a small keras-hub BERT-style backbone built from a
config, with a WordPiece vocabulary computed from the training texts (no
download); views drop 10% of the tokens.

    python examples/clinc150_text.py --data-dir DIR --epochs 10   # DIR holds clinc150/
    python examples/clinc150_text.py --smoke   # one epoch on 2% of the data

The data folder is `--data-dir`, else `$KERAS_MLCL_DATA`. `--smoke` without either runs on the
tiny synthetic CLINC150 in `examples/smoke_data/` (offline, a fresh clone is enough). It needs
keras-hub: `pip install '.[hub]'` in a clone.
"""

# ruff: noqa: E402 (TensorFlow is imported quietly before Keras)
import argparse
import os
import sys

from keras_mlcl_launcher import import_tensorflow_quietly

import_tensorflow_quietly()  # as the keras-mlcl command: no TensorFlow start-up logging

import keras

import keras_mlcl
from keras_mlcl.data import load_dataset
from keras_mlcl.data import subsample
from keras_mlcl.data.data_dirs import data_root
from keras_mlcl.encoders import text_encoder
from keras_mlcl.evaluation import linear_probe_per_level
from keras_mlcl.layers import TokenDropout

SMOKE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smoke_data")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="data folder holding clinc150/ ($KERAS_MLCL_DATA)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--ce-weight", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true", help="tiny run: 2%% of the data, 1 epoch")
    args = parser.parse_args(argv)
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        sys.exit("this example needs the `hub` extra (keras-hub): pip install '.[hub]'")
    if args.smoke:
        args.epochs = 1
        if data_root(args.data_dir) is None:
            args.data_dir = SMOKE_DATA
        else:
            args.fraction = 0.02

    data = subsample(load_dataset("clinc150", data_dir=args.data_dir), args.fraction, seed=0)
    keras.utils.set_random_seed(0)
    preprocessor, encoder = text_encoder(list(data.x), sequence_length=32, hidden_dim=64)
    model = keras_mlcl.ContrastiveModel(
        encoder,
        heads={"domain": 64, "intent": 64},
        loss=keras_mlcl.MultiLevelSupCon.hierarchical(
            ["domain", "intent"], temperatures=[0.5, 0.1]
        ),
        views=2,
        augment=TokenDropout(0.1, padding_id=preprocessor.padding_id),
        classifier={"intent": data.num_classes("intent")},
        ce_weight=args.ce_weight,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ids, test_ids = preprocessor(data.x), preprocessor(data.x_test)
    model.fit(ids, data.labels, batch_size=128, epochs=args.epochs, verbose=2)

    probe = linear_probe_per_level(
        model.embed(ids), data.labels, model.embed(test_ids), data.test_labels
    )
    for level in data.levels:
        print(f"{level}: linear probe {probe[level]:.4f}")
    return probe


if __name__ == "__main__":
    main()
