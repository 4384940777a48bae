"""SimDis against SupCon on a MULAN multi-label dataset.

Same encoder, views, optimiser and epochs; only the positive rule differs:
`simdis` (similarity-dissimilarity weights), `supcon-any` (any shared label
is a positive) and `jaccard`, against `bce` (a sigmoid classifier). Scores are
macro-F1 of a one-vs-rest linear probe on the frozen encoder.

    python examples/multilabel_mulan.py --name emotions --epochs 30
    python examples/multilabel_mulan.py --smoke
"""

import argparse

from keras_mlcl.data import load_mulan
from keras_mlcl.experiments import train_and_evaluate

METHODS = ("simdis", "supcon-any", "jaccard", "bce")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="emotions", help="emotions, scene or medical")
    parser.add_argument("--data-dir", help="folder holding the MULAN dataset folders")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="one epoch per method")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 1

    data = load_mulan(args.name, args.data_dir)
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
