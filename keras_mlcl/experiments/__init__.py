"""Experiments: default encoders, methods by name, and one train-evaluate-export run."""

from keras_mlcl.experiments.methods import METHODS
from keras_mlcl.experiments.methods import build_model
from keras_mlcl.experiments.methods import parse_method
from keras_mlcl.experiments.runner import evaluate_saved_run
from keras_mlcl.experiments.runner import train_and_evaluate

__all__ = ["METHODS", "build_model", "evaluate_saved_run", "parse_method", "train_and_evaluate"]
