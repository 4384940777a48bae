"""CLINC150 intents and domains with a keras-hub text encoder and joint cross-entropy.

The MLCL paper's recipe for text: a `domain` head (10 domains) and an `intent`
head (150 intents), each with its own SupCon loss, plus cross-entropy on the
intents. The encoder is a small keras-hub BERT-style backbone built from a
config, with a WordPiece vocabulary computed from the training texts (no
download); views drop 10% of the tokens.

    python examples/clinc150_text.py --data-dir ../shared/data/clinc150 --epochs 10
    python examples/clinc150_text.py --smoke   # a few hundred texts, one epoch
"""

import argparse

import keras

import keras_mlcl
from keras_mlcl.data import TokenDropout
from keras_mlcl.data import load_clinc150
from keras_mlcl.data import subsample
from keras_mlcl.data import text_encoder
from keras_mlcl.evaluation import linear_probe_per_level


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with data_full.json and domains.json")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--ce-weight", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true", help="tiny run: 2%% of the data, 1 epoch")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.fraction = 1, 0.02

    data = subsample(load_clinc150(args.data_dir), args.fraction, seed=0)
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
