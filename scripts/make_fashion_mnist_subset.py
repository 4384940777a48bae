"""Writes the bundled Fashion-MNIST subset, `keras_mlcl/data/bundled/fashion_mnist_subset.npz`.

The subset is drawn from the official splits, stratified per class with a fixed seed, so
re-running the script on the same source files writes the same arrays:

- `x` (N, 28, 28) uint8, `y_coarse`, `y_fine` (int32): `--train-per-class` images of each of
  the 10 classes from the official training split (default 600 -> 6,000 images);
- `x_test`, `y_test_coarse`, `y_test_fine`: `--test-per-class` images per class from the
  official test split (default 200 -> 2,000 images);
- `class_names_coarse`, `class_names_fine`: the class names.

Within a split the chosen images keep their original order. The coarse level groups the
classes as `keras_mlcl.data.fashion_mnist.COARSE_OF_FINE` says.

Source: the IDX files of Debian's `dataset-fashion-mnist` package (`apt-get install
dataset-fashion-mnist`, files under /usr/share/datasets/fashion-mnist/) or of Keras' cache
(~/.keras/datasets/fashion-mnist/). Fashion-MNIST is (c) 2017 Zalando SE under the MIT licence;
its notice sits beside the output as `LICENSE-fashion-mnist.txt`.

Usage (from the repository root):

    python scripts/make_fashion_mnist_subset.py [--source DIR] [--out FILE]
"""

import argparse
import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from keras_mlcl.data.fashion_mnist import COARSE_CLASS_NAMES  # noqa: E402
from keras_mlcl.data.fashion_mnist import COARSE_OF_FINE  # noqa: E402
from keras_mlcl.data.fashion_mnist import FINE_CLASS_NAMES  # noqa: E402
from keras_mlcl.data.fashion_mnist import read_fashion_mnist_idx  # noqa: E402

SEED = 20170825  # Fashion-MNIST's release date; any fixed value gives a deterministic subset.
DEFAULT_OUT = os.path.join(REPO_ROOT, "keras_mlcl", "data", "bundled", "fashion_mnist_subset.npz")


def stratified_indices(labels, per_class, rng):
    """Indices of `per_class` random samples of each class, in increasing order."""
    chosen = []
    for class_id in np.unique(labels):
        members = np.flatnonzero(labels == class_id)
        if len(members) < per_class:
            raise ValueError(
                f"Class {class_id} has {len(members)} samples, fewer than the {per_class} asked."
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def make_subset(source, train_per_class, test_per_class, seed=SEED):
    """The subset's arrays, keyed as in the keras-mlcl `.npz` format."""
    full = read_fashion_mnist_idx(source)
    rng = np.random.default_rng(seed)
    train = stratified_indices(full["y"], train_per_class, rng)
    test = stratified_indices(full["y_test"], test_per_class, rng)
    coarse_of_fine = np.asarray(COARSE_OF_FINE, dtype="int32")
    fine = full["y"][train].astype("int32")
    fine_test = full["y_test"][test].astype("int32")
    return {
        "x": full["x"][train],
        "y_coarse": coarse_of_fine[fine],
        "y_fine": fine,
        "x_test": full["x_test"][test],
        "y_test_coarse": coarse_of_fine[fine_test],
        "y_test_fine": fine_test,
        "class_names_coarse": np.asarray(COARSE_CLASS_NAMES, dtype=str),
        "class_names_fine": np.asarray(FINE_CLASS_NAMES, dtype=str),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        default=None,
        help="folder of the Fashion-MNIST IDX files (default: Keras' cache, then "
        "/usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output .npz path")
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    arrays = make_subset(args.source, args.train_per_class, args.test_per_class, args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    size = os.path.getsize(args.out)
    print(
        f"Wrote {args.out}: {len(arrays['x'])} train + {len(arrays['x_test'])} test images, "
        f"{size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
