import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from keras_mlcl.evaluation import multilabel_metrics

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
