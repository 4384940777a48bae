"""Data parallelism: a contrastive loss over the global batch on every backend.

See docs/scaling.md for JAX (`keras.distribution`), TensorFlow
(`tf.distribute`) and PyTorch (`torch.distributed`) set-ups.
"""

from keras_mlcl.distribution.cross_replica import gather_across_replicas
from keras_mlcl.distribution.cross_replica import local_rows
from keras_mlcl.distribution.cross_replica import loss_scale_for_replicas
from keras_mlcl.distribution.cross_replica import replica_count
from keras_mlcl.distribution.cross_replica import replica_offset
from keras_mlcl.distribution.cross_replica import variable_scope
from keras_mlcl.distribution.process_group import average_gradients_across_processes
from keras_mlcl.distribution.process_group import broadcast_variables

__all__ = [
    "average_gradients_across_processes",
    "broadcast_variables",
    "gather_across_replicas",
    "local_rows",
    "loss_scale_for_replicas",
    "replica_count",
    "replica_offset",
    "variable_scope",
]
