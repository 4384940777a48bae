"""Every contrastive loss takes variables (`keras.Variable`, `tf.Variable`) as inputs."""

import keras
import numpy as np
import pytest

from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import MultiSupCon
from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows

RNG = np.random.default_rng(0)
Z = unit_rows(RNG, 8, 4)
CLASS_IDS = np.array([0, 0, 1, 1, 2, 2, 3, 3], "int32")
MULTI_HOT = np.array(
    [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0]],
    "int32",
)
LEVELS = np.stack([CLASS_IDS // 2, CLASS_IDS], axis=1)
HEADS = ("coarse", "fine")

CASES = {
    "supcon": (SupCon(), CLASS_IDS),
    "simdis": (SimDisLoss(), MULTI_HOT),
    "multi_supcon": (MultiSupCon(), MULTI_HOT),
    "himulcon": (HiMulCon(), LEVELS),
}


def multi_level_case(make_variable):
    loss = MultiLevelSupCon.hierarchical(levels=HEADS, temperatures=[0.5, 0.1])
    labels = {"coarse": CLASS_IDS // 2, "fine": CLASS_IDS}
    z = {"coarse": Z, "fine": unit_rows(RNG, 8, 6)}
    return loss, labels, z, {name: make_variable(value) for name, value in z.items()}


def keras_variable(value):
    return keras.Variable(value, trainable=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_variable_embeddings_give_the_array_loss(name):
    loss, labels = CASES[name]
    expected = to_numpy(loss(labels, Z))
    assert np.isfinite(expected) and expected > 0
    assert_allclose(loss(labels, keras_variable(Z)), expected, atol=1e-6)


def test_keras_variable_labels_give_the_array_loss():
    loss = SupCon()
    labels = keras.Variable(CLASS_IDS, dtype="int32", trainable=False)
    assert_allclose(loss(labels, Z), loss(CLASS_IDS, Z), atol=1e-6)


def test_multi_level_keras_variable_embeddings():
    loss, labels, z, variables = multi_level_case(keras_variable)
    assert_allclose(loss(labels, variables), loss(labels, z), atol=1e-6)
    per_head = loss.head_losses(labels, variables)
    for name, value in loss.head_losses(labels, z).items():
        assert_allclose(per_head[name], value, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.Variable")
@pytest.mark.parametrize("name", sorted(CASES))
def test_tf_variable_embeddings_give_the_array_loss_and_gradient(name):
    import tensorflow as tf

    loss, labels = CASES[name]
    constant = tf.constant(Z)
    with tf.GradientTape() as tape:
        tape.watch(constant)
        expected = loss(labels, constant)
    expected_gradient = tape.gradient(expected, constant)

    variable = tf.Variable(Z)
    with tf.GradientTape() as tape:
        value = loss(labels, variable)
    gradient = tape.gradient(value, variable)
    assert_allclose(value, expected, atol=1e-6)
    assert gradient is not None
    assert_allclose(gradient, expected_gradient, atol=1e-6)
    assert np.abs(to_numpy(gradient)).max() > 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.Variable")
def test_multi_level_tf_variable_embeddings():
    import tensorflow as tf

    loss, labels, z, variables = multi_level_case(tf.Variable)
    assert_allclose(loss(labels, variables), loss(labels, z), atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.Variable")
def test_tf_variable_embeddings_in_a_tf_function():
    import tensorflow as tf

    variable = tf.Variable(Z)
    traced = tf.function(lambda: SupCon()(CLASS_IDS, variable))
    assert_allclose(traced(), SupCon()(CLASS_IDS, Z), atol=1e-6)
