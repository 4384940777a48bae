"""Datasets: the `LabeledDataset` container, the `.npz` format, tables, splits and loaders."""

from keras_mlcl.data.balanced_batches import BalancedBatches
from keras_mlcl.data.cifar100 import load_cifar100
from keras_mlcl.data.clinc150 import load_clinc150
from keras_mlcl.data.fashion_mnist import COARSE_OF_FINE
from keras_mlcl.data.fashion_mnist import load_fashion_mnist
from keras_mlcl.data.label_groups import label_groups
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.labels import dense_class_ids
from keras_mlcl.data.mulan import load_mulan
from keras_mlcl.data.mulan import load_mulan_medical_icd
from keras_mlcl.data.mulan import parse_arff
from keras_mlcl.data.npz import load_npz
from keras_mlcl.data.npz import save_npz
from keras_mlcl.data.registry import dataset_names
from keras_mlcl.data.registry import load_dataset
from keras_mlcl.data.registry import register_dataset
from keras_mlcl.data.splits import subsample
from keras_mlcl.data.splits import train_test_split
from keras_mlcl.data.splits import validation_split
from keras_mlcl.data.tables import TableColumns
from keras_mlcl.data.tables import is_table
from keras_mlcl.data.tables import load_table
from keras_mlcl.data.tables import read_table
from keras_mlcl.data.tables import table_inputs
from keras_mlcl.data.text_preprocessor import TextPreprocessor

__all__ = [
    "BalancedBatches",
    "COARSE_OF_FINE",
    "LabeledDataset",
    "TableColumns",
    "is_table",
    "TextPreprocessor",
    "dataset_names",
    "dense_class_ids",
    "label_groups",
    "load_cifar100",
    "load_clinc150",
    "load_dataset",
    "load_fashion_mnist",
    "load_mulan",
    "load_mulan_medical_icd",
    "load_npz",
    "load_table",
    "parse_arff",
    "read_table",
    "register_dataset",
    "save_npz",
    "subsample",
    "table_inputs",
    "train_test_split",
    "validation_split",
]
