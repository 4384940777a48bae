import keras
import numpy as np
import pytest

from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import MultiSupCon
from keras_mlcl.losses import SupCon
from keras_mlcl.losses.temperature import MIN_TEMPERATURE
from tests import reference
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows
from tests.testing import value_and_grad


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("normalization", ["count", "weight"])
@pytest.mark.parametrize("rule", ["equal", "any", "exact", "jaccard", "simdis"])
def test_value_matches_reference(seed, normalization, rule):
    rng = np.random.default_rng(seed)
    n = [8, 64, 256][seed]
    if rule == "equal":
        labels = rng.integers(-1, 6, size=n)
    else:
        labels = (rng.random((n, 5)) < 0.3).astype("int32")
        labels[: n // 10] = 0
    z = unit_rows(rng, n, 12)
    loss = SupCon(temperature=0.2, positives=rule, normalization=normalization)
    expected = reference.supcon_loss(labels, z, 0.2, rule, normalization)
    assert_allclose(loss(labels, z), expected)


def test_closed_form_two_pairs():
    z = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], "float32")
    assert_allclose(SupCon(temperature=1.0)(np.array([0, 0, 1, 1]), z), 0.551445)


def test_any_positives_closed_form():
    # Closed form, tau = 1: anchor 0's positives share a label (samples 1 and 2), so its loss is
    # -(1/2)(log p01 + log p02) with p0j = exp(z0.zj) / sum_{k != 0} exp(z0.zk) = 0.907606.
    z = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], "float32")
    labels = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    per_anchor = SupCon(temperature=1.0, positives="any", reduction="none")(labels, z)
    assert_allclose(per_anchor[0], 0.907606)


def test_mean_is_over_valid_anchors_only():
    rng = np.random.default_rng(0)
    z = unit_rows(rng, 6, 4)
    labels = np.array([0, 0, 1, 1, 2, 3])  # anchors 4 and 5 have no positive
    per_anchor, valid = reference.supcon(z, reference.weights(labels, "equal"), 0.1)
    assert_allclose(SupCon()(labels, z), per_anchor[:4].mean())
    assert_allclose(SupCon(reduction="sum")(labels, z), per_anchor.sum())
    assert_allclose(SupCon(reduction="none")(labels, z), per_anchor)


def test_sample_weight():
    rng = np.random.default_rng(1)
    z = unit_rows(rng, 8, 4)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 4])
    sw = np.array([1, 2, 0, 1, 3, 1, 5, 5], "float32")
    per_anchor, valid = reference.supcon(z, reference.weights(labels, "equal"), 0.1)
    assert_allclose(
        SupCon()(labels, z, sample_weight=sw), reference.valid_mean(per_anchor, valid, sw)
    )
    weighted = (per_anchor * sw * valid).sum() / (sw * valid).sum()
    loss = SupCon(reduction="mean_with_sample_weight")
    assert_allclose(loss(labels, z, sample_weight=sw), weighted)


def test_normalize_option_matches_prenormalised_input():
    rng = np.random.default_rng(2)
    raw = rng.normal(size=(10, 6)).astype("float32") * 3.0
    labels = rng.integers(0, 3, size=10)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert_allclose(SupCon(normalize=True)(labels, raw), to_numpy(SupCon()(labels, unit)))


def test_thresholded_jaccard_matches_reference():
    rng = np.random.default_rng(3)
    labels = (rng.random((48, 6)) < 0.4).astype("int32")
    z = unit_rows(rng, 48, 8)
    expected = reference.supcon_loss(labels, z, 0.1, "jaccard", min_weight=0.3)
    assert_allclose(MultiSupCon(temperature=0.1, min_weight=0.3)(labels, z), expected)
    zero = reference.supcon_loss(labels, z, 0.1, "jaccard")
    assert_allclose(MultiSupCon(min_weight=0.0)(labels, z), zero)
    assert_allclose(SupCon(positives="jaccard")(labels, z), zero)


@pytest.mark.parametrize(
    "loss",
    [
        SupCon(temperature=0.3, positives="jaccard", normalization="weight", min_weight=0.2),
        MultiSupCon(temperature=0.05, min_weight=0.5),
    ],
)
def test_config_round_trip(loss):
    config = loss.get_config()
    restored = loss.__class__.from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(loss)
    again = keras.saving.deserialize_keras_object(serialized)
    assert type(again) is type(loss) and again.get_config() == config


def test_fit_with_the_loss_lowers_it():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 16)) * 3
    labels = rng.integers(0, 4, size=256)
    x = (centers[labels] + rng.normal(size=(256, 16))).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(8),
            keras.layers.UnitNormalization(),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SupCon(temperature=0.2))
    before = model.evaluate(x, labels, batch_size=64, verbose=0)
    history = model.fit(x, labels, batch_size=64, epochs=5, verbose=0, shuffle=False)
    after = model.evaluate(x, labels, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert after < before
    # The loss cannot go below the mean log(number of positives) (about 2.7
    # here), so check what it was for: classes pulled apart.
    z = model.predict(x, verbose=0)
    cos = z @ z.T
    same = labels[:, None] == labels[None, :]
    assert cos[same].mean() > cos[~same].mean() + 0.5


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), "warm"])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="`temperature` should be a positive float"):
        SupCon(temperature=temperature)


def test_bad_rule_and_normalization_and_reduction():
    with pytest.raises(ValueError, match="`positives` should be one of"):
        SupCon(positives="overlap")
    with pytest.raises(ValueError, match="`normalization` should be one of"):
        SupCon(normalization="mean")
    with pytest.raises(ValueError, match="`reduction` should be one of"):
        SupCon(reduction="median")
    with pytest.raises(ValueError, match="`min_weight` should be a non-negative float"):
        MultiSupCon(min_weight=-0.1)


def test_batch_size_mismatch():
    z = unit_rows(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=r"`y_true` and `y_pred` should have the same batch size"):
        SupCon()(np.array([0, 1, 0]), z)


def test_embedding_rank_and_dtype():
    with pytest.raises(ValueError, match=r"`y_pred` should be embeddings of shape \(N, D\)"):
        SupCon()(np.array([0, 1]), np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="floating-point embeddings"):
        SupCon()(np.array([0, 1]), np.ones((2, 3), "int32"))


def test_label_form_wrong_for_rule():
    z = unit_rows(np.random.default_rng(0), 3, 3)
    with pytest.raises(ValueError, match=r"positives='any'.*multi-hot"):
        SupCon(positives="any")(np.array([0, 1, 0]), z)
    with pytest.raises(ValueError, match=r"positives='equal'.*\(N,\)"):
        SupCon()(np.eye(3, dtype="int32"), z)


def test_zero_norm_embeddings_when_normalising():
    z = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], "float32")
    with pytest.raises(ValueError, match=r"`y_pred` should have no zero-norm rows.*\[1\]"):
        SupCon(normalize=True)(np.array([0, 0, 1]), z)


def test_float_class_ids_must_be_whole_numbers():
    z = unit_rows(np.random.default_rng(0), 6, 3)
    ids = np.array([0, 0, 1, 1, 2, -1])
    # Whole-number floats (1.0, 2.0, -1.0) are class ids like their ints.
    assert_allclose(SupCon()(ids.astype("float32"), z), SupCon()(ids, z), atol=1e-6)
    assert_allclose(SupCon()(ids[:, None].astype("float64"), z), SupCon()(ids, z), atol=1e-6)
    halves = np.array([0, 0, 1, 1.5, 2, 2.5], "float32")
    with pytest.raises(
        ValueError,
        match=r"`y_true` should hold integer class ids.*Received: `y_true\[3\]`=1\.5 "
        r"\(2 non-integer values in all\)",
    ):
        SupCon()(halves, z)
    with pytest.raises(ValueError, match=r"Received: `y_true\[1\]`=nan"):
        SupCon()(np.array([0, np.nan, 1, 1, 2, 2], "float32"), z)


@pytest.mark.parametrize("temperature", [1e-40, 5e-5, float("inf")])
def test_temperatures_below_the_minimum_are_refused(temperature):
    """1 / 1e-40 overflows float32 (the loss was NaN); the bound is `MIN_TEMPERATURE`."""
    with pytest.raises(ValueError, match=r"`temperature` should be a positive float >= 0\.0001"):
        SupCon(temperature=temperature)
    with pytest.raises(ValueError, match=r"`temperature` should be a positive float >= 0\.0001"):
        HiMulCon(temperature=temperature)
    with pytest.raises(ValueError, match=r"`heads\['fine'\]\['temperature'\]` should be"):
        MultiLevelSupCon(heads={"fine": {"temperature": temperature}})


def test_the_smallest_temperature_gives_a_finite_loss_and_gradient():
    """At `MIN_TEMPERATURE` the loss and its gradient are finite, and the loss is NumPy's
    (float64, a stable log-sum-exp): 0 when each positive is aligned and the rest orthogonal
    (the closed form log(1 + 2 exp(-1 / tau))), thousands on random embeddings."""
    assert MIN_TEMPERATURE == 1e-4
    z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], "float32")
    labels = np.array([0, 0, 1, 1])
    value, grad = value_and_grad(lambda t: SupCon(temperature=MIN_TEMPERATURE)(labels, t), z)
    assert float(value) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(grad).all()
    rng = np.random.default_rng(0)
    z = unit_rows(rng, 16, 4)
    labels = rng.integers(0, 3, size=16)
    value, grad = value_and_grad(lambda t: SupCon(temperature=MIN_TEMPERATURE)(labels, t), z)
    logits = (z.astype("float64") @ z.T.astype("float64")) / MIN_TEMPERATURE
    np.fill_diagonal(logits, -np.inf)
    top = logits.max(axis=1, keepdims=True)
    log_denominator = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    positive = (labels[:, None] == labels[None, :]) & ~np.eye(16, dtype=bool)
    anchors = [
        log_denominator[i] - logits[i, positive[i]].mean() for i in range(16) if positive[i].any()
    ]
    expected = float(np.mean(anchors))
    assert float(value) == pytest.approx(expected, rel=1e-4) and expected > 1000
    assert np.isfinite(grad).all()
