"""Writes the bundled Fashion-MNIST subset as two CSV tables, the way your own data may look.

One row per image: an `item` id, the labels as names at two levels (`category`: upper body,
lower body, full body, footwear, bags; `product`: T-shirt/top, Trouser, ...) and the 784 pixels
as columns `p0` ... `p783`. `train.csv` holds the 6,000 training images, `test.csv` the 2,000
test images. Then, as in the README's "Your own data":

    python examples/fashion_table.py tables/
    keras-mlcl train --data tables/train.csv --test-data tables/test.csv \\
        --label-columns category,product --id-column item --out runs/fashion_table
    keras-mlcl search --run runs/fashion_table --data tables/test.csv --head product --k 5 \\
        --out neighbours.csv

The folder is made if needed; files already there are never replaced. Writing the tables needs
pandas, the `tables` extra (`pip install '.[tables]'` in a clone).
"""

# ruff: noqa: E402 (TensorFlow is imported quietly before Keras)
import argparse
import os
import sys

from keras_mlcl_launcher import import_tensorflow_quietly

import_tensorflow_quietly()  # as the keras-mlcl command: no TensorFlow start-up logging

import numpy as np

from keras_mlcl.data import load_dataset


def write_table(path, x, labels, class_names, prefix):
    """One CSV: `item`, `category`, `product`, then one column per pixel."""
    import pandas as pd

    pixels = x.reshape(len(x), -1)
    frame = pd.DataFrame(pixels, columns=[f"p{j}" for j in range(pixels.shape[1])])
    frame.insert(0, "product", np.asarray(class_names["fine"])[labels["fine"]])
    frame.insert(0, "category", np.asarray(class_names["coarse"])[labels["coarse"]])
    frame.insert(0, "item", [f"{prefix}-{i:05d}" for i in range(len(x))])
    with open(path, "x", newline="", encoding="utf-8") as f:  # "x": never replaces a file
        frame.to_csv(f, index=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="where to write train.csv and test.csv")
    args = parser.parse_args(argv)
    try:
        import pandas  # noqa: F401
    except ImportError:
        sys.exit("this example needs the `tables` extra (pandas): pip install '.[tables]'")
    data = load_dataset("fashion_mnist")
    os.makedirs(args.folder, exist_ok=True)
    paths = [os.path.join(args.folder, name) for name in ("train.csv", "test.csv")]
    write_table(paths[0], data.x, data.labels, data.class_names, "train")
    write_table(paths[1], data.x_test, data.test_labels, data.class_names, "test")
    print("written: " + ", ".join(paths))
    return paths


if __name__ == "__main__":
    main()
