import numpy as np
import pytest
import sklearn.linear_model
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler

from keras_mlcl.evaluation import linear_probe
from keras_mlcl.evaluation import linear_probe_per_level
from tests.evaluation.synthetic import clusters
from tests.evaluation.synthetic import split


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
