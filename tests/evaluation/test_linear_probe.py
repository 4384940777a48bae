import numpy as np
import pytest
import sklearn.linear_model
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler

from keras_mlcl.evaluation import linear_probe
from keras_mlcl.evaluation import linear_probe_per_level
from keras_mlcl.evaluation import multilabel_metrics
from keras_mlcl.evaluation import probe_scores
from tests.evaluation.synthetic import clusters
from tests.evaluation.synthetic import split

pytestmark = pytest.mark.backend_independent


def test_separated_clusters_are_perfect():
    train_x, train_y, test_x, test_y = split(*clusters(seed=0))
    assert linear_probe_per_level(train_x, train_y, test_x, test_y) == {
        "coarse": 1.0,
        "fine": 1.0,
    }


def test_multi_hot_separated_clusters_have_macro_f1_one():
    x, labels = clusters(seed=2)
    fine = labels["fine"]
    # Label 0: classes {0, 1}; label 1: classes {1, 2, 3}; label 2: class 5.
    multi_hot = np.stack([fine <= 1, (fine >= 1) & (fine <= 3), fine == 5], axis=1)
    train_x, train_y, test_x, test_y = split(x, {"aspects": multi_hot.astype("int32")})
    score = linear_probe(train_x, train_y["aspects"], test_x, test_y["aspects"])
    assert score == 1.0


def test_random_labels_are_near_chance():
    rng = np.random.default_rng(4)
    train_x, test_x = rng.normal(size=(800, 16)), rng.normal(size=(800, 16))
    train_y, test_y = rng.integers(0, 4, 800), rng.integers(0, 4, 800)
    accuracy = linear_probe(train_x, train_y, test_x, test_y)
    assert abs(accuracy - 0.25) < 0.06


def test_matches_direct_sklearn_computation():
    rng = np.random.default_rng(5)
    train_x, test_x = rng.normal(size=(200, 5)), rng.normal(size=(100, 5))
    train_y = (train_x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int) + (train_x[:, 1] > 0)
    test_y = (test_x[:, 0] > 0).astype(int) + (test_x[:, 1] > 0)
    scaler = StandardScaler().fit(train_x)
    direct = LogisticRegression(C=0.3, max_iter=500, random_state=0)
    direct.fit(scaler.transform(train_x), train_y)
    expected = np.mean(direct.predict(scaler.transform(test_x)) == test_y)
    score = linear_probe(train_x, train_y, test_x, test_y, C=0.3, max_iter=500)
    assert score == pytest.approx(expected, abs=1e-12)
    assert 0.5 < score < 1.0


def test_multi_hot_matches_direct_sklearn_computation():
    rng = np.random.default_rng(6)
    train_x, test_x = rng.normal(size=(80, 4)), rng.normal(size=(40, 4))
    train_y = np.stack([train_x[:, j] + 0.7 * rng.normal(size=80) > 0 for j in range(3)], 1)
    test_y = np.stack([test_x[:, j] > 0 for j in range(3)], 1).astype(int)
    scaler = StandardScaler().fit(train_x)
    direct = OneVsRestClassifier(LogisticRegression(random_state=0, max_iter=1000))
    predicted = direct.fit(scaler.transform(train_x), train_y).predict(scaler.transform(test_x))
    expected = f1_score(test_y, predicted, average="macro")
    assert linear_probe(train_x, train_y, test_x, test_y) == pytest.approx(expected, abs=1e-12)


def test_unlabelled_rows_are_excluded(monkeypatch):
    sizes = {}

    class Recording(sklearn.linear_model.LogisticRegression):
        def fit(self, x, y, sample_weight=None):
            sizes["fit"] = len(x)
            sizes["classes"] = sorted(set(y.tolist()))
            return super().fit(x, y, sample_weight=sample_weight)

        def predict(self, x):
            sizes["predict"] = len(x)
            return super().predict(x)

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Recording)
    train_x = np.array([[-2.0, 0], [-1.5, 0], [1.5, 0], [2.0, 0], [9.0, 9.0], [9.0, 8.0]])
    train_y = np.array([0, 0, 1, 1, -1, -1])
    test_x = np.array([[-1.0, 0], [1.0, 0], [1.2, 0], [9.0, 9.0], [8.0, 9.0]])
    test_y = np.array([0, 1, 0, -1, -1])
    # 2 of the 3 labelled test rows; scoring -1 rows would give 2/5.
    assert linear_probe(train_x, train_y, test_x, test_y) == pytest.approx(2 / 3)
    assert sizes == {"fit": 4, "classes": [0, 1], "predict": 3}


def test_is_deterministic():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(100, 6)), rng.integers(0, 3, 100)
    assert linear_probe(x, y, x, y, max_iter=50) == linear_probe(x, y, x, y, max_iter=50)


def test_single_training_class_predicts_it():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    assert linear_probe(x, np.array([3, 3, -1]), x, np.array([3, 4, 3])) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"C": 0.0}, "`C` should be a positive float"), ({"max_iter": 0}, "`max_iter`")],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        linear_probe(np.eye(2), np.array([0, 1]), np.eye(2), np.array([0, 1]), **kwargs)


def multi_label_data(seed, rows, width=5, num_labels=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width))
    noise = rng.normal(size=(rows, num_labels))
    y = (x[:, :num_labels] + 0.8 * noise > 0.3).astype(int)
    return x, y


def test_probe_scores_class_ids_equal_linear_probe():
    x, labels = clusters(seed=3, spread=2.0)
    train_x, train_y, test_x, test_y = split(x, labels)
    result = probe_scores(train_x, train_y, test_x, test_y, C=0.5)
    for level in ("coarse", "fine"):
        expected = linear_probe(train_x, train_y[level], test_x, test_y[level], C=0.5)
        assert result[level] == {"accuracy": expected}
    assert 0.3 < result["fine"]["accuracy"] < 1.0


def test_probe_scores_multi_hot_without_val_thresholds_at_half():
    train_x, train_y = multi_label_data(9, 120)
    test_x, test_y = multi_label_data(10, 60)
    result = probe_scores(train_x, {"tags": train_y}, test_x, {"tags": test_y})["tags"]
    assert result["macro_f1"] == pytest.approx(linear_probe(train_x, train_y, test_x, test_y))
    scaler = StandardScaler().fit(train_x)
    direct = OneVsRestClassifier(LogisticRegression(random_state=0, max_iter=1000))
    direct.fit(scaler.transform(train_x), train_y)
    probabilities = direct.predict_proba(scaler.transform(test_x))
    expected = multilabel_metrics(test_y, probabilities, threshold=0.5)
    assert result == pytest.approx({k: expected[k] for k in ("macro_f1", "micro_f1", "map")})
    assert 0.4 < result["macro_f1"] < 1.0


def test_probe_scores_multi_hot_with_val_matches_sklearn():
    train_x, train_y = multi_label_data(11, 120)
    val_x, val_y = multi_label_data(12, 50)
    test_x, test_y = multi_label_data(13, 60)
    val_y[:3] = -1  # unlabelled validation rows are left out of the thresholds
    result = probe_scores(
        train_x, {"tags": train_y}, test_x, {"tags": test_y}, val_x, {"tags": val_y}, C=0.3
    )["tags"]
    scaler = StandardScaler().fit(train_x)
    direct = OneVsRestClassifier(LogisticRegression(C=0.3, random_state=0, max_iter=1000))
    direct.fit(scaler.transform(train_x), train_y)
    val_p = direct.predict_proba(scaler.transform(val_x[3:]))
    test_p = direct.predict_proba(scaler.transform(test_x))
    # Per label, the distinct validation probability with the best F1 (highest on ties).
    thresholds = []
    for k in range(train_y.shape[1]):
        candidates = np.unique(val_p[:, k])[::-1]
        f1s = [f1_score(val_y[3:, k], val_p[:, k] >= t) for t in candidates]
        thresholds.append(candidates[int(np.argmax(f1s))])
    predicted = test_p >= np.array(thresholds)
    assert result["macro_f1"] == pytest.approx(f1_score(test_y, predicted, average="macro"))
    assert result["micro_f1"] == pytest.approx(f1_score(test_y, predicted, average="micro"))
    assert result["map"] == pytest.approx(average_precision_score(test_y, test_p))
    without_val = probe_scores(train_x, {"tags": train_y}, test_x, {"tags": test_y}, C=0.3)
    assert result["map"] == pytest.approx(without_val["tags"]["map"])
    assert result["macro_f1"] != without_val["tags"]["macro_f1"]


def test_probe_scores_constant_training_label_is_predicted_constant():
    train_x, train_y = multi_label_data(14, 80, num_labels=3)
    test_x, test_y = multi_label_data(15, 40, num_labels=3)
    train_y[:, 1] = 1
    train_y[:, 2] = 0
    test_y[:, 2] = 0
    val_x, val_y = multi_label_data(16, 30, num_labels=3)
    val_y[:, 2] = 0  # so label 2 keeps threshold 0.5 and is never predicted
    result = probe_scores(
        train_x, {"tags": train_y}, test_x, {"tags": test_y}, val_x, {"tags": val_y}
    )["tags"]
    # Label 1 is predicted everywhere (probability 1 >= its threshold), label 2 nowhere.
    label_0 = probe_scores(
        train_x,
        {"tags": train_y[:, :1]},
        test_x,
        {"tags": test_y[:, :1]},
        val_x,
        {"tags": val_y[:, :1]},
    )["tags"]["macro_f1"]
    f1_label_1 = f1_score(test_y[:, 1], np.ones(40))
    assert result["macro_f1"] == pytest.approx((label_0 + f1_label_1) / 2)
    single = probe_scores(train_x, {"t": np.ones((80, 1), int)}, test_x, {"t": test_y[:, 1:2]})
    assert single["t"]["macro_f1"] == pytest.approx(f1_label_1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"val_embeddings": np.eye(2)}, "`val_embeddings` and `val_labels` should be given"),
        ({"val_embeddings": np.eye(3), "val_labels": {"t": np.eye(3)}}, "width"),
        (
            {"val_embeddings": np.eye(2), "val_labels": {"t": np.eye(2, 3)}},
            r"`val_labels\['t'\]` should be multi-hot",
        ),
        ({"val_embeddings": np.eye(2), "val_labels": {"u": np.eye(2)}}, "same levels"),
    ],
)
def test_probe_scores_invalid_validation_raises(kwargs, message):
    labels = {"t": np.eye(2, dtype=int)}
    with pytest.raises(ValueError, match=message):
        probe_scores(np.eye(2), labels, np.eye(2), labels, **kwargs)


def test_single_multi_hot_label_is_scored_as_a_label():
    train_x, train_y = multi_label_data(17, 80, num_labels=1)
    test_x, test_y = multi_label_data(18, 40, num_labels=1)
    scaler = StandardScaler().fit(train_x)
    direct = LogisticRegression(random_state=0, max_iter=1000)
    predicted = direct.fit(scaler.transform(train_x), train_y[:, 0]).predict(
        scaler.transform(test_x)
    )
    expected = f1_score(test_y[:, 0], predicted)  # F1 of the positive class
    assert linear_probe(train_x, train_y, test_x, test_y) == pytest.approx(expected)
    result = probe_scores(train_x, {"t": train_y}, test_x, {"t": test_y})["t"]
    assert result["macro_f1"] == pytest.approx(expected)
    assert result["micro_f1"] == pytest.approx(expected)
