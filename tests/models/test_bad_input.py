import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import MultiLevelSupCon
from keras_mlcl import SupCon
from tests.models import problems


class Steps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.steps += 1


def fails_before_first_step(model, x, y, match, **kwargs):
    model.compile(optimizer="adam")
    steps = Steps()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[steps], **kwargs)
    assert steps.steps == 0


def test_labels_missing_for_a_head():
    x, y = problems.clustered(n=64)
    fails_before_first_step(
        problems.model(), x, {"fine": y["fine"]}, r"Labels are missing for \['coarse'\]"
    )


def test_label_rows_differ_from_input_rows():
    x, y = problems.clustered(n=64)
    y["fine"] = y["fine"][:60]
    fails_before_first_step(problems.model(), x, y, r"y\['fine'\].* has 60 rows but `x` has 64")


def test_label_batch_size_differs_in_a_dataset():
    import tensorflow as tf

    x, y = problems.clustered(n=64)
    batches = tf.data.Dataset.zip(
        (
            tf.data.Dataset.from_tensor_slices(x).batch(16),
            tf.data.Dataset.from_tensor_slices(y).batch(8),
        )
    )
    fails_before_first_step(problems.model(), batches, None, "have 8 rows but the inputs have 16")


def test_views_below_one():
    with pytest.raises(ValueError, match="`views` should be a positive integer"):
        problems.model(views=0)


class DropHalf(keras.layers.Layer):
    def call(self, x, training=False):
        return x[: keras.ops.shape(x)[0] // 2]


def test_augment_that_changes_the_batch_size():
    x, y = problems.clustered(n=64)
    model = problems.model(augment=DropHalf())
    fails_before_first_step(model, x, y, "`augment` should keep the batch size", batch_size=32)


def test_loss_head_names_must_match_the_heads():
    loss = MultiLevelSupCon.hierarchical(["coarse", "middle"])
    with pytest.raises(ValueError, match=r"head names of `loss` \['coarse', 'middle'\]"):
        problems.model(loss=loss)
    with pytest.raises(ValueError, match="should have one head"):
        problems.model(loss=SupCon())


def test_classifier_needs_ce_weight_and_labels():
    with pytest.raises(ValueError, match="`classifier` and `ce_weight` go together"):
        problems.model(classifier={"fine": 8})
    with pytest.raises(ValueError, match="`classifier` and `ce_weight` go together"):
        problems.model(ce_weight=1.0)
    x, y = problems.clustered(n=64)
    model = problems.model(classifier={"genre": 3}, ce_weight=1.0)
    fails_before_first_step(model, x, y, r"Labels are missing for \['genre'\]")


def test_unused_labels_are_not_silently_dropped():
    x, y = problems.clustered(n=64)
    y["extra"] = y["fine"]
    fails_before_first_step(problems.model(), x, y, r"labels \['extra'\] that no head")


def test_levels_array_of_the_wrong_width():
    x, y = problems.clustered(n=64)
    three = np.stack([y["coarse"], y["fine"], y["fine"]], axis=1)
    fails_before_first_step(problems.model(), x, three, r"or an \(N, 2\) array of levels")


def test_heads_and_loss_types():
    with pytest.raises(ValueError, match="`heads` should be a `MultiProjectionHead`"):
        ContrastiveModel(problems.encoder(), heads=keras.layers.Dense(3))
    with pytest.raises(ValueError, match="`loss` should be a keras_mlcl contrastive loss"):
        ContrastiveModel(problems.encoder(), heads={"z": 4}, loss="mse")


def test_compile_loss_is_refused_not_ignored():
    # Training uses the constructor's loss: a loss given to `compile` would be ignored.
    model = problems.model()
    with pytest.raises(ValueError, match=r"takes no `loss`.*Received: `loss`='mse'"):
        model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="takes no `loss`"):
        model.compile("adam", SupCon())
    model.compile(optimizer="adam")  # and the model still compiles without one
    assert model.optimizer is not None
