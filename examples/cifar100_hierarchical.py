"""CIFAR-100 with two heads: 20 superclasses and 100 classes (MLCL).

Loads CIFAR-100 through tensorflow-datasets (prepare it once with network, or
point `--data-dir` at a prepared tfds folder), trains a small ResNet-style
encoder with a `coarse` head (tau = 0.5, as the MLCL paper found best on the
superclass head) and a `fine` head (tau = 0.1), and reports the linear-probe
and kNN accuracy of the frozen encoder per level.

    KERAS_BACKEND=jax python examples/cifar100_hierarchical.py --epochs 30
    python examples/cifar100_hierarchical.py --smoke   # offline, tfds mock data

`--smoke` runs end to end on a few mock images (tfds.testing.mock_data) in
seconds: a check that the pipeline works, not a result. It needs tensorflow-datasets and
TensorFlow: `pip install '.[data,tensorflow]'` in a clone.
"""

# ruff: noqa: E402 (TensorFlow is imported quietly before Keras)
import argparse
import contextlib
import sys
import tempfile

from keras_mlcl_launcher import import_tensorflow_quietly

import_tensorflow_quietly()  # as the keras-mlcl command: no TensorFlow start-up logging

import keras

import keras_mlcl
from keras_mlcl.data import load_cifar100
from keras_mlcl.evaluation import knn_accuracy_per_level
from keras_mlcl.evaluation import linear_probe_per_level
from keras_mlcl.layers import image_views


def residual_block(x, filters, stride):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.ReLU()(y + shortcut)


def resnet_encoder(widths=(32, 64, 128)):
    """A small ResNet: a stem, one residual block per width, global pooling."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for i, width in enumerate(widths):
        x = residual_block(x, width, stride=1 if i == 0 else 2)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="resnet_encoder")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--data-dir", help="tensorflow-datasets data folder")
    parser.add_argument("--smoke", action="store_true", help="tiny offline run on mock data")
    args = parser.parse_args(argv)
    try:
        import tensorflow  # noqa: F401
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        sys.exit(
            "this example needs the `data` extra (tensorflow-datasets) and TensorFlow: "
            "pip install '.[data,tensorflow]'"
        )

    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir
        if args.smoke:
            import tensorflow_datasets as tfds

            data_dir = stack.enter_context(tempfile.TemporaryDirectory())
            stack.enter_context(tfds.testing.mock_data(num_examples=64, data_dir=data_dir))
            args.epochs, args.batch_size = 1, 32
        data = load_cifar100(source="tfds", data_dir=data_dir)

    keras.utils.set_random_seed(0)
    model = keras_mlcl.ContrastiveModel(
        resnet_encoder(),
        heads=keras_mlcl.MultiProjectionHead({"coarse": 128, "fine": 128}, hidden_dims=(512,)),
        loss=keras_mlcl.MultiLevelSupCon.hierarchical(["coarse", "fine"], temperatures=[0.5, 0.1]),
        views=2,
        augment=image_views(32, 32, crop_padding=4, flip=True, value_range=(0.0, 255.0)),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, x_test = data.x.astype("float32"), data.x_test.astype("float32")
    model.fit(x, data.labels, batch_size=args.batch_size, epochs=args.epochs, verbose=2)

    train, test = model.embed(x), model.embed(x_test)
    probe = linear_probe_per_level(train, data.labels, test, data.test_labels)
    knn = knn_accuracy_per_level(train, data.labels, test, data.test_labels)
    for level in data.levels:
        print(f"{level}: linear probe {probe[level]:.4f}, kNN {knn[level]:.4f}")
    return probe


if __name__ == "__main__":
    main()
