"""Evaluation of embeddings on host (NumPy in, floats out).

kNN accuracy, linear probes and retrieval metrics (Recall@k, mAP@R) per
label level, multi-label metrics (with per-label thresholds chosen on
validation), 2-D plots, and callbacks that log `val_knn_<level>_acc`
(`KNNCallback`) or `val_<level>_recall_at_<k>` and `val_<level>_map_at_r`
(`RetrievalCallback`) during `fit`. Uses scikit-learn and, for plots,
matplotlib (both imported when first used).
"""

from keras_mlcl.evaluation.callbacks import KNNCallback
from keras_mlcl.evaluation.callbacks import RetrievalCallback
from keras_mlcl.evaluation.knn import knn_accuracy
from keras_mlcl.evaluation.knn import knn_accuracy_per_level
from keras_mlcl.evaluation.linear_probe import linear_probe
from keras_mlcl.evaluation.linear_probe import linear_probe_per_level
from keras_mlcl.evaluation.linear_probe import probe_scores
from keras_mlcl.evaluation.multilabel_metrics import f1_thresholds
from keras_mlcl.evaluation.multilabel_metrics import multilabel_metrics
from keras_mlcl.evaluation.multilabel_metrics import threshold_scores
from keras_mlcl.evaluation.plots import EmbeddingPlot
from keras_mlcl.evaluation.plots import plot_embeddings
from keras_mlcl.evaluation.retrieval import retrieval_metrics
from keras_mlcl.evaluation.retrieval import retrieval_metrics_per_level

__all__ = [
    "EmbeddingPlot",
    "KNNCallback",
    "RetrievalCallback",
    "f1_thresholds",
    "knn_accuracy",
    "knn_accuracy_per_level",
    "linear_probe",
    "linear_probe_per_level",
    "multilabel_metrics",
    "plot_embeddings",
    "probe_scores",
    "retrieval_metrics",
    "retrieval_metrics_per_level",
    "threshold_scores",
]
