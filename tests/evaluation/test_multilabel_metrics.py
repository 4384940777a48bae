import math
from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score

from keras_mlcl.evaluation import f1_thresholds
from keras_mlcl.evaluation import multilabel_metrics
from keras_mlcl.evaluation import threshold_scores

pytestmark = pytest.mark.backend_independent

# Four rows, four labels; label 3 has no positive anywhere.
Y_TRUE = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
Y_SCORE = np.array(
    [
        [0.9, 0.35, 0.4, 0.1],
        [0.1, 0.8, 0.6, 0.1],
        [0.7, 0.3, 0.2, 0.1],
        [0.2, 0.1, 0.55, 0.1],
    ]
)


def test_hand_computed_case():
    # Predictions at 0.5: [1,0,0,0], [0,1,1,0], [1,0,0,0], [0,0,1,0].
    # label 0: TP 2, FP 0, FN 0 -> F1 1
    # label 1: TP 1, FP 0, FN 1 -> F1 2/3
    # label 2: TP 0, FP 2, FN 1 -> F1 0
    # label 3: no positive in truth or prediction -> left out of macro-F1
    micro = 2 * 3 / (2 * 3 + 2 + 2)
    macro = (1 + 2 / 3 + 0) / 3
    # Average precision, ranking by score:
    # label 0: T T -> 1; label 1: T (P=1) F T (P=2/3) -> 5/6; label 2: F F T (P=1/3) -> 1/3
    mean_ap = (1 + 5 / 6 + 1 / 3) / 3
    hamming = (0 + 1 + 3 + 0) / 16
    result = multilabel_metrics(Y_TRUE, Y_SCORE)
    assert result == pytest.approx(
        {"micro_f1": micro, "macro_f1": macro, "map": mean_ap, "hamming_loss": hamming}
    )


def test_threshold():
    # At 0.3 (inclusive) the predictions gain (0,1), (0,2) and (2,1), scored exactly 0.3:
    # [1,1,1,0], [0,1,1,0], [1,1,0,0], [0,0,1,0].
    result = multilabel_metrics(Y_TRUE, Y_SCORE, threshold=0.3)
    # TP 5 (all), FP 3 ((0,1), (1,2), (3,2)), FN 0.
    assert result["micro_f1"] == pytest.approx(10 / 13)
    assert result["hamming_loss"] == pytest.approx(3 / 16)
    # label 0: 1, label 1: 2*2/(4+1) = 0.8, label 2: 2/(2+2) = 0.5
    assert result["macro_f1"] == pytest.approx((1 + 0.8 + 0.5) / 3)


def test_unlabelled_rows_are_excluded():
    y_true = np.concatenate([Y_TRUE, -np.ones((2, 4), int)])
    y_score = np.concatenate([Y_SCORE, np.full((2, 4), 0.9)])
    assert multilabel_metrics(y_true, y_score) == pytest.approx(multilabel_metrics(Y_TRUE, Y_SCORE))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((50, 6)) < 0.3).astype(int)
    y_true[:, 5] = 0
    y_score = rng.random((50, 6))
    with_positive = [k for k in range(6) if y_true[:, k].any()]
    per_label = [average_precision_score(y_true[:, k], y_score[:, k]) for k in with_positive]
    expected = np.mean(per_label)
    macro = average_precision_score(
        y_true[:, with_positive], y_score[:, with_positive], average="macro"
    )
    result = multilabel_metrics(y_true, y_score)
    assert result["map"] == pytest.approx(expected, abs=1e-12)
    assert result["map"] == pytest.approx(macro, abs=1e-12)


def test_no_positive_gives_nan_map():
    result = multilabel_metrics(np.zeros((3, 2), int), np.full((3, 2), 0.1))
    assert math.isnan(result["map"])
    assert result["micro_f1"] == 0.0 and result["hamming_loss"] == 0.0


@pytest.mark.parametrize(
    "y_true, y_score, message",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "`y_score` should have the shape of `y_true`"),
        (np.zeros(3), np.zeros(3), "`y_true` should be multi-hot"),
        (np.full((2, 2), 2), np.zeros((2, 2)), "multi-hot"),
        (np.zeros((2, 2)), np.full((2, 2), np.nan), "finite"),
    ],
)
def test_invalid_inputs_raise(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(y_true, y_score)


def brute_force_thresholds(y_true, y_score):
    """For each label, the best of its distinct scores by F1, the highest on ties."""
    thresholds = []
    for k in range(y_true.shape[1]):
        labels, scores = y_true[:, k], y_score[:, k]
        if labels.sum() == 0:
            thresholds.append(0.5)
            continue
        best, best_f1 = None, -1.0
        for candidate in sorted(set(scores.tolist()), reverse=True):
            predicted = scores >= candidate
            true_positives = int(np.sum(predicted & (labels == 1)))
            f1 = Fraction(2 * true_positives, int(labels.sum()) + int(predicted.sum()))
            if f1 > best_f1:
                best, best_f1 = candidate, f1
        thresholds.append(best)
    return np.array(thresholds)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_f1_thresholds_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((60, 7)) < 0.3).astype(int)
    # Rounded scores make ties between rows and between equal-F1 candidates.
    y_score = np.round(rng.random((60, 7)) * 0.5 + 0.4 * y_true, 1)
    y_true[:, 6] = 0
    thresholds = f1_thresholds(y_true, y_score)
    np.testing.assert_array_equal(thresholds, brute_force_thresholds(y_true, y_score))
    assert thresholds[6] == 0.5
    # The chosen threshold is the best per-label F1 among all candidates.
    for k in range(6):
        best = max(f1_score(y_true[:, k], y_score[:, k] >= t) for t in np.unique(y_score[:, k]))
        assert f1_score(y_true[:, k], y_score[:, k] >= thresholds[k]) == pytest.approx(best)


def test_f1_thresholds_hand_cases():
    y_true = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    y_score = np.array([[0.9, 0.7, 0.8], [0.6, 0.2, 0.8], [0.3, 0.1, 0.4], [0.1, 0.3, 0.4]])
    thresholds = f1_thresholds(y_true, y_score)
    # Label 0 is separable: the lowest positive score gives F1 1.
    # Label 1 has no positive: 0.5.
    # Label 2: t=0.8 -> TP 1 of 2 predicted, F1 2/4; t=0.4 -> TP 2 of 4, F1 4/6 (best).
    np.testing.assert_array_equal(thresholds, [0.6, 0.5, 0.4])
    assert f1_score(y_true[:, 0], y_score[:, 0] >= thresholds[0]) == 1.0


def test_f1_thresholds_tie_keeps_highest():
    # t=0.9: TP 1, predicted 1, F1 2/3; t=0.5: TP 2, predicted 4, F1 4/6: equal, keep 0.9.
    y_true = np.array([[1], [1], [0], [0], [0]])
    y_score = np.array([[0.9], [0.5], [0.5], [0.5], [0.1]])
    assert f1_thresholds(y_true, y_score).tolist() == [0.9]


def test_f1_thresholds_ignore_unlabelled_rows():
    y_true = np.array([[1, 0], [0, 1], [-1, -1], [0, 0]])
    y_score = np.array([[0.7, 0.2], [0.4, 0.6], [0.95, 0.9], [0.1, 0.3]])
    np.testing.assert_array_equal(f1_thresholds(y_true, y_score), [0.7, 0.6])
    all_unlabelled = f1_thresholds(-np.ones((3, 2), int), np.zeros((3, 2)))
    np.testing.assert_array_equal(all_unlabelled, [0.5, 0.5])


def test_per_label_threshold_matches_hand_computation():
    thresholds = np.array([0.5, 0.3, 0.6, 0.05])
    # Predictions: [1,1,0,1], [0,1,1,1], [1,1,0,1], [0,0,0,1].
    # label 0: F1 1; label 1: TP 2, FP 1 -> 4/5; label 2: TP 0, FP 1, FN 1 -> 0;
    # label 3: TP 0, FP 4 -> 0 (a prediction, so it counts in macro-F1).
    result = multilabel_metrics(Y_TRUE, Y_SCORE, threshold=thresholds)
    assert result["macro_f1"] == pytest.approx((1 + 0.8 + 0 + 0) / 4)
    # TP 4, FP 1 + 1 + 4 = 6, FN 1.
    assert result["micro_f1"] == pytest.approx(8 / (8 + 6 + 1))
    assert result["hamming_loss"] == pytest.approx(7 / 16)
    assert result["map"] == multilabel_metrics(Y_TRUE, Y_SCORE)["map"]
    # An array of one repeated value equals that float.
    assert multilabel_metrics(Y_TRUE, Y_SCORE, np.full(4, 0.3)) == multilabel_metrics(
        Y_TRUE, Y_SCORE, 0.3
    )


@pytest.mark.parametrize(
    "threshold, message",
    [
        (np.full(3, 0.5), r"one threshold per label \(4,\)"),
        (np.full((1, 4), 0.5), r"one threshold per label \(4,\)"),
        (np.array([0.5, np.nan, 0.5, 0.5]), "finite real numbers"),
        ("high", "finite float"),
    ],
)
def test_invalid_threshold_raises(threshold, message):
    with pytest.raises(ValueError, match=message):
        multilabel_metrics(Y_TRUE, Y_SCORE, threshold=threshold)


def test_threshold_scores_choose_on_validation():
    rng = np.random.default_rng(8)
    val_true = (rng.random((40, 5)) < 0.4).astype(int)
    val_score = rng.random((40, 5)) * 0.6 + 0.3 * val_true
    test_true = (rng.random((30, 5)) < 0.4).astype(int)
    test_score = rng.random((30, 5)) * 0.6 + 0.3 * test_true
    expected = multilabel_metrics(test_true, test_score, f1_thresholds(val_true, val_score))
    result = threshold_scores(val_true, val_score, test_true, test_score)
    assert result == {k: expected[k] for k in ("macro_f1", "micro_f1", "map")}
    no_val = multilabel_metrics(test_true, test_score, 0.5)
    assert threshold_scores(None, None, test_true, test_score) == {
        k: no_val[k] for k in ("macro_f1", "micro_f1", "map")
    }
    with pytest.raises(ValueError, match="`val_true` and `val_score` should be given together"):
        threshold_scores(val_true, None, test_true, test_score)
    with pytest.raises(ValueError, match="same number of labels"):
        threshold_scores(val_true[:, :4], val_score[:, :4], test_true, test_score)
