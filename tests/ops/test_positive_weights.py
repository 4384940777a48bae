import numpy as np
import pytest

from keras_mlcl.ops import POSITIVE_RULES
from keras_mlcl.ops import positive_weights
from tests import reference
from tests.testing import assert_allclose

# Label sets over {a, b, c, d} as multi-hot columns.
A, B, C, D = range(4)


def multi_hot(*sets):
    rows = np.zeros((len(sets), 4), "int32")
    for i, s in enumerate(sets):
        rows[i, list(s)] = 1
    return rows


def test_simdis_closed_form_weights():
    # Closed form (the five SimDis relations of Huang et al., arXiv 2410.13439): anchor
    # S = {a, b}; T = {a, b} -> 1, {a} -> 0.5, {a, b, c} -> 0.5, {a, c} -> 0.25, {c} -> 0.
    labels = multi_hot({A, B}, {A, B}, {A}, {A, B, C}, {A, C}, {C})
    w = positive_weights(labels, "simdis")
    assert_allclose(w[0, 1:], [1.0, 0.5, 0.5, 0.25, 0.0])


def test_simdis_is_asymmetric():
    labels = multi_hot({A, B}, {A, B, C}, {D})
    w = positive_weights(labels, "simdis")
    assert_allclose(w[0, 1], 0.5)
    assert_allclose(w[1, 0], 2.0 / 3.0)


@pytest.mark.parametrize("rule", ["any", "exact", "jaccard"])
def test_multi_hot_rules_small_case(rule):
    labels = multi_hot({A, B}, {A, B}, {A}, {C}, set())
    expected = {
        "any": [1, 1, 1, 0, 0],
        "exact": [1, 1, 0, 0, 0],
        "jaccard": [1, 1, 0.5, 0, 0],
    }[rule]
    w = positive_weights(labels, rule)
    assert_allclose(w[0], expected)
    assert_allclose(w[4], np.zeros(5))  # an empty set is never an anchor


def test_equal_with_unlabelled_ids():
    w = positive_weights(np.array([3, 3, -1, -1, 7]), "equal")
    expected = np.array(
        [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
    )
    assert_allclose(w, expected)


def test_equal_accepts_column_vector_and_large_ids():
    ids = np.array([[2**30 + 1], [2**30], [2**30 + 1]], dtype="int64")
    w = positive_weights(ids, "equal")
    assert_allclose(w[0], [1, 0, 1])


@pytest.mark.parametrize("rule", POSITIVE_RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rules_match_reference(rule, seed):
    rng = np.random.default_rng(seed)
    if rule == "equal":
        labels = rng.integers(-1, 5, size=40)
    else:
        labels = (rng.random((40, 5)) < 0.35).astype("float32")
        labels[:3] = 0
        labels[3] = -1
    assert_allclose(positive_weights(labels, rule), reference.weights(labels, rule), atol=1e-6)


def test_two_views_of_a_labelled_sample_are_positives_under_every_rule():
    single = multi_hot({A}, {A, B, C}, {B, D})
    views = np.concatenate([single, single])
    for rule in ("any", "exact", "jaccard", "simdis"):
        w = positive_weights(views, rule)
        assert_allclose([w[i, i + 3] for i in range(3)], [1.0, 1.0, 1.0])
    ids = np.array([4, 9, 4, 9])
    assert_allclose(positive_weights(ids, "equal")[0, 2], 1.0)


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="`positives` should be one of"):
        positive_weights(np.array([0, 1]), "same")


def test_equal_rejects_multi_hot():
    with pytest.raises(ValueError, match=r"positives='equal'.*shape \(N,\)"):
        positive_weights(multi_hot({A}, {B}), "equal")


@pytest.mark.parametrize("rule", ["any", "exact", "jaccard", "simdis"])
def test_multi_hot_rules_reject_class_ids(rule):
    with pytest.raises(ValueError, match=r"multi-hot rows of shape \(N, K\)"):
        positive_weights(np.array([0, 1, 1]), rule)


def test_equal_rejects_bool_labels():
    with pytest.raises(ValueError, match="integer class ids"):
        positive_weights(np.array([True, False]), "equal")
