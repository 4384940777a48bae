"""Datasets: the `LabeledDataset` container, the `.npz` format, splits and real loaders."""

from keras_mlcl.data.cifar100 import load_cifar100
from keras_mlcl.data.clinc150 import load_clinc150
from keras_mlcl.data.datasets import LabeledDataset
from keras_mlcl.data.datasets import dataset_names
from keras_mlcl.data.datasets import dense_class_ids
from keras_mlcl.data.datasets import load_dataset
from keras_mlcl.data.datasets import load_npz
from keras_mlcl.data.datasets import save_npz
from keras_mlcl.data.datasets import subsample
from keras_mlcl.data.datasets import train_test_split
from keras_mlcl.data.datasets import validation_split
from keras_mlcl.data.fashion_mnist import COARSE_OF_FINE
from keras_mlcl.data.fashion_mnist import load_fashion_mnist
from keras_mlcl.data.mulan import load_mulan
from keras_mlcl.data.mulan import parse_arff
from keras_mlcl.data.text import TextPreprocessor
from keras_mlcl.data.text import text_encoder
from keras_mlcl.data.views import FeatureDropout
from keras_mlcl.data.views import FeatureNoise
from keras_mlcl.data.views import TokenDropout
from keras_mlcl.data.views import image_views

__all__ = [
    "COARSE_OF_FINE",
    "FeatureDropout",
    "FeatureNoise",
    "LabeledDataset",
    "TextPreprocessor",
    "TokenDropout",
    "dataset_names",
    "dense_class_ids",
    "image_views",
    "load_cifar100",
    "load_clinc150",
    "load_dataset",
    "load_fashion_mnist",
    "load_mulan",
    "load_npz",
    "parse_arff",
    "save_npz",
    "subsample",
    "text_encoder",
    "train_test_split",
    "validation_split",
]
