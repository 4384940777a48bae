"""SimDis against SupCon on a MULAN multi-label dataset.

Same encoder, views, optimiser and epochs; only the positive rule differs:
`simdis` (similarity-dissimilarity weights), `supcon-any` (any shared label
is a positive) and `jaccard`, against `bce` (a sigmoid classifier). Scores are
macro-F1 of a one-vs-rest linear probe on the frozen encoder.

    python examples/multilabel_mulan.py --data-dir DIR --name emotions --epochs 30
    python examples/multilabel_mulan.py --smoke

The data folder (holding `mulan/<name>/`) is `--data-dir`, else `$KERAS_MLCL_DATA`. `--smoke`
without either runs on the tiny synthetic MULAN set in `examples/smoke_data/` (offline).
"""

# ruff: noqa: E402 (TensorFlow is imported quietly before Keras)
import argparse
import os

from keras_mlcl_launcher import import_tensorflow_quietly

import_tensorflow_quietly()  # as the keras-mlcl command: no TensorFlow start-up logging

from keras_mlcl.data import load_mulan
from keras_mlcl.data.data_dirs import data_root
from keras_mlcl.data.data_dirs import dataset_folder
from keras_mlcl.experiments import train_and_evaluate

METHODS = ("simdis", "supcon-any", "jaccard", "bce")
SMOKE_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smoke_data")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="emotions", help="emotions, scene or medical")
    parser.add_argument("--data-dir", help="data folder holding mulan/<name>/ ($KERAS_MLCL_DATA)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="one epoch per method")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 1
        if data_root(args.data_dir) is None:
            args.data_dir, args.name = SMOKE_DATA, "smoke"

    folder = dataset_folder(f"mulan_{args.name}", f"mulan/{args.name}", args.data_dir)
    data = load_mulan(args.name, folder)
    scores = {}
    for method in METHODS:
        results = train_and_evaluate(
            data, method=method, epochs=args.epochs, seed=args.seed, batch_size=128, verbose=0
        )
        scores[method] = results["linear_probe"]["labels"]
        print(f"{method:<12} macro-F1 {scores[method]:.4f}")
    return scores


if __name__ == "__main__":
    main()
