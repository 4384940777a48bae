"""`keras_mlcl.distribution` on one replica (the multi-replica paths run in
child processes, see test_scaling_docs.py)."""

import keras
import numpy as np
import pytest

from keras_mlcl import SupCon
from keras_mlcl.distribution import average_gradients_across_processes
from keras_mlcl.distribution import broadcast_variables
from keras_mlcl.distribution import gather_across_replicas
from keras_mlcl.distribution import local_rows
from keras_mlcl.distribution import loss_scale_for_replicas
from keras_mlcl.distribution import replica_count
from keras_mlcl.distribution import variable_scope
from tests import reference
from tests.testing import assert_allclose
from tests.testing import unit_rows


def test_one_replica_is_the_identity():
    assert replica_count() == 1
    assert loss_scale_for_replicas() == 1.0
    values = {"z": np.ones((3, 2), "float32"), "labels": np.arange(3), "weights": None}
    assert gather_across_replicas(values) is values
    rows = keras.ops.arange(5)
    assert local_rows(rows, 5) is rows
    with variable_scope(keras.Sequential([keras.layers.Dense(2)])):
        variable = keras.Variable(np.zeros(2, "float32"))
    assert tuple(variable.shape) == (2,)


def test_loss_on_one_replica_is_unchanged():
    rng = np.random.default_rng(0)
    z, labels = unit_rows(rng, 16, 4), rng.integers(0, 3, 16)
    expected = reference.supcon_loss(labels, z, 0.2)
    assert_allclose(SupCon(temperature=0.2)(labels, z), expected, atol=1e-5)
    per_anchor = SupCon(temperature=0.2, reduction="none")(labels, z)
    assert tuple(per_anchor.shape) == (16,)


def test_process_group_helpers_need_torch_and_a_group():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    if keras.backend.backend() != "torch":
        match = "need the torch backend"
    else:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            pytest.skip("a process group is already initialised")
        match = "No torch.distributed process group"
    with pytest.raises(ValueError, match=match):
        broadcast_variables(model)
    with pytest.raises(ValueError, match=match):
        average_gradients_across_processes(model)
    with pytest.raises(ValueError, match="`source` should be a process rank"):
        broadcast_variables(model, source=-1)
