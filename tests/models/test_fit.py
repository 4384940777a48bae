import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import HiMulCon
from keras_mlcl import MultiLevelSupCon
from keras_mlcl import SupCon
from tests.models import problems
from tests.testing import assert_allclose


def fit_and_compare(model, x, y, fit_x=None, fit_y=None, epochs=4, **fit_kwargs):
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    history = model.fit(
        x if fit_x is None else fit_x,
        y if fit_x is None else fit_y,
        epochs=epochs,
        verbose=0,
        **fit_kwargs,
    )
    after = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    return before, history.history, after


def test_fit_lowers_every_head_loss_and_logs_them():
    x, y = problems.clustered()
    model = problems.model(augment=keras.layers.GaussianNoise(0.1))
    before, history, after = fit_and_compare(model, x, y, batch_size=64)
    assert {"loss", "coarse_loss", "fine_loss"} <= set(history)
    for key in ("loss", "coarse_loss", "fine_loss"):
        assert np.isfinite(history[key]).all()
        assert after[key] < before[key]
    # The total is the weighted sum of the heads (weights 1).
    assert_allclose(after["loss"], after["coarse_loss"] + after["fine_loss"], atol=1e-4)


def test_views_tile_labels_and_match_the_loss_on_the_concatenated_batch():
    x, y = problems.clustered(n=32)
    model = problems.model(views=3)
    model.compile(optimizer="sgd")
    out = model(x, training=True)
    assert tuple(out["fine"].shape) == (96, 8)
    tiled = {k: np.concatenate([v] * 3) for k, v in y.items()}
    expected = model.contrastive_loss(tiled, {k: out[k] for k in ("coarse", "fine")})
    got = model.compute_loss(x, y, out, training=True)
    assert_allclose(got, keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_joint_cross_entropy_and_accuracy():
    x, y = problems.clustered(1)
    model = problems.model(classifier={"fine": 8}, ce_weight=0.5, views=1)
    before, history, after = fit_and_compare(model, x, y, batch_size=64, epochs=6)
    assert after["fine_acc"] > 0.9 > before["fine_acc"]
    assert after["fine_ce"] < before["fine_ce"]
    total = after["coarse_loss"] + after["fine_loss"] + 0.5 * after["fine_ce"]
    assert_allclose(after["loss"], total, atol=1e-4)


def test_levels_array_maps_columns_onto_heads():
    x, y = problems.clustered(2)
    levels = np.stack([y["coarse"], y["fine"]], axis=1)
    model = problems.model()
    model.compile(optimizer="adam")
    from_dict = model.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
    from_array = model.evaluate(x, levels, batch_size=256, verbose=0, return_dict=True)
    for key in ("coarse_loss", "fine_loss"):
        assert_allclose(from_array[key], from_dict[key], atol=1e-6)


def test_tf_data_and_py_dataset_inputs():
    import tensorflow as tf

    x, y = problems.clustered(3)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            part = slice(64 * i, 64 * (i + 1))
            return x[part], {k: v[part] for k, v in y.items()}

    for data in (dataset, Batches()):
        model = problems.model()
        before, history, after = fit_and_compare(model, x, y, fit_x=data, fit_y=None, epochs=3)
        assert after["loss"] < before["loss"]


@pytest.mark.parametrize(
    "loss, labels",
    [
        (SupCon(temperature=0.2), "fine"),
        (HiMulCon(temperature=0.2), "levels"),
    ],
)
def test_single_head_losses(loss, labels):
    x, y = problems.clustered(4)
    target = y["fine"] if labels == "fine" else np.stack([y["coarse"], y["fine"]], 1)
    model = problems.model(heads={"z": 8}, loss=loss)
    before, history, after = fit_and_compare(model, x, target, batch_size=64)
    assert after["z_loss"] < before["z_loss"]


def test_multilabel_heads_from_one_multi_hot_array():
    x, y = problems.clustered(5)
    multi_hot = np.eye(8, dtype="int32")[y["fine"]]
    multi_hot[:, 7] = y["coarse"]  # a second label on half the samples
    loss = MultiLevelSupCon.multilabel({"low": [0, 1, 2, 3], "high": [4, 5, 6, 7]})
    model = problems.model(heads={"low": 8, "high": 8}, loss=loss)
    before, history, after = fit_and_compare(model, x, multi_hot, batch_size=64)
    assert after["loss"] < before["loss"]


def test_predict_and_embed():
    x, y = problems.clustered(6, n=20)
    model = problems.model(classifier={"coarse": 2}, ce_weight=1.0)
    out = model.predict(x, verbose=0)
    assert sorted(out) == ["coarse", "coarse_logits", "embedding", "fine"]
    assert_allclose(model.embed(x), out["embedding"], atol=1e-6)
    assert_allclose(model.encoder.predict(x, verbose=0), out["embedding"], atol=1e-6)
    assert_allclose(np.linalg.norm(out["fine"], axis=1), np.ones(20), atol=1e-5)


def test_sample_weight_reaches_the_loss():
    x, y = problems.clustered(7, n=64)
    model = problems.model(views=1)
    model.compile(optimizer="sgd")
    weights = np.zeros(64, "float32")
    weights[:32] = 1.0
    weighted = model.evaluate(
        x, y, sample_weight=weights, batch_size=64, verbose=0, return_dict=True
    )["loss"]
    out = model(x, training=False)
    per_head = model.contrastive_loss.head_losses(
        y, {k: out[k] for k in ("coarse", "fine")}, sample_weight=weights
    )
    assert_allclose(weighted, sum(keras.ops.convert_to_numpy(v) for v in per_head.values()), 1e-5)


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="torch.compile is opt-in (slow)")
def test_jit_compiled_step():
    x, y = problems.clustered(8)
    model = problems.model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_encoder_is_reusable():
    model = problems.model()
    assert isinstance(model.encoder, keras.Model)
    reuse = keras.Sequential([model.encoder, keras.layers.Dense(3)])
    x = problems.clustered(n=4)[0]
    assert tuple(reuse(x).shape) == (4, 3)
    assert_allclose(reuse.layers[0](x), model.embed(x), atol=1e-6)  # the same weights
    assert isinstance(model, ContrastiveModel)
