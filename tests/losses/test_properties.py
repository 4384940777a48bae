"""Property tests (hypothesis): invariances and identities of the losses."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from keras_mlcl.ops import positive_weights
from keras_mlcl.ops import supcon_from_weights
from tests.testing import assert_allclose
from tests.testing import to_numpy
from tests.testing import unit_rows

RULES = ("equal", "any", "exact", "jaccard", "simdis")


@st.composite
def batches(draw, rules=RULES):
    # Few distinct shapes: JAX compiles every op once per shape.
    n = draw(st.sampled_from([2, 5, 16]))
    seed = draw(st.integers(0, 2**31 - 1))
    rule = draw(st.sampled_from(rules))
    temperature = draw(st.sampled_from([0.05, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    if rule == "equal":
        labels = rng.integers(-1, draw(st.integers(1, 6)), size=n)
    else:
        labels = (rng.random((n, draw(st.sampled_from([1, 4])))) < 0.4).astype("int32")
    return rule, temperature, labels, unit_rows(rng, n, 6), rng


@given(batches())
def test_invariant_to_permuting_the_batch(batch):
    """25 examples over 3 batch sizes and 5 rules (JAX compiles each new shape once)."""
    rule, temperature, labels, z, rng = batch
    loss = SupCon(temperature=temperature, positives=rule)
    order = rng.permutation(len(z))
    assert_allclose(loss(labels[order], z[order]), to_numpy(loss(labels, z)), atol=1e-5)


@given(batches(rules=("equal",)))
def test_invariant_to_relabelling_class_ids(batch):
    _, temperature, labels, z, rng = batch
    mapping = rng.permutation(100) * 7 + 3  # any injective map to other ids
    relabelled = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    loss = SupCon(temperature=temperature)
    assert_allclose(loss(relabelled, z), to_numpy(loss(labels, z)), atol=1e-5)


@given(batches(rules=("any", "exact", "jaccard", "simdis")))
def test_invariant_to_permuting_label_columns(batch):
    rule, temperature, labels, z, rng = batch
    loss = SupCon(temperature=temperature, positives=rule)
    columns = rng.permutation(labels.shape[1])
    assert_allclose(loss(labels[:, columns], z), to_numpy(loss(labels, z)), atol=1e-5)


@given(batches(), st.sampled_from(["count", "weight"]))
def test_per_anchor_loss_is_non_negative(batch, normalization):
    rule, temperature, labels, z, _ = batch
    loss, valid = supcon_from_weights(z, positive_weights(labels, rule), temperature, normalization)
    loss = to_numpy(loss)
    assert np.isfinite(loss).all()
    assert (loss >= -1e-6).all()
    assert (loss[~to_numpy(valid)] == 0).all()


@given(batches(rules=("equal",)))
def test_simdis_equals_supcon_on_single_label_data(batch):
    _, temperature, ids, z, _ = batch
    ids = np.maximum(ids, 0)
    one_hot = np.eye(int(ids.max()) + 1, dtype="int32")[ids]
    expected = to_numpy(SupCon(temperature=temperature)(ids, z))
    assert_allclose(SimDisLoss(temperature=temperature)(one_hot, z), expected, atol=1e-5)


@given(batches(rules=("equal",)))
def test_one_head_multi_level_equals_supcon(batch):
    _, temperature, labels, z, _ = batch
    loss = MultiLevelSupCon(heads={"h": {"temperature": temperature}})
    expected = to_numpy(SupCon(temperature=temperature)(labels, z))
    assert_allclose(loss({"h": labels}, {"h": z}), expected, atol=1e-5)


@given(st.integers(0, 2**31 - 1), st.integers(2, 4))
def test_batched_heads_equal_per_head_sum(seed, n_heads):
    """25 examples of 2 to 4 heads (JAX compiles each new shape once)."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 16]))
    names = [f"h{i}" for i in range(n_heads)]
    heads = {
        name: {
            "temperature": float(rng.choice([0.05, 0.2, 1.0])),
            "weight": float(rng.random() * 2),
            "positives": "equal",
        }
        for name in names
    }
    labels = {name: rng.integers(0, 4, size=n) for name in names}
    z = {name: unit_rows(rng, n, int(rng.choice([2, 8]))) for name in names}
    expected = sum(
        heads[name]["weight"]
        * to_numpy(SupCon(temperature=heads[name]["temperature"])(labels[name], z[name]))
        for name in names
    )
    assert_allclose(MultiLevelSupCon(heads=heads)(labels, z), expected, atol=1e-5)
