import numpy as np
import pytest
import sklearn.neighbors

from keras_mlcl.evaluation import knn
from keras_mlcl.evaluation import knn_accuracy
from keras_mlcl.evaluation import knn_accuracy_per_level
from keras_mlcl.search import exact_top_k
from tests.evaluation.synthetic import clusters
from tests.evaluation.synthetic import split

pytestmark = pytest.mark.backend_independent


def numpy_knn_predict(train_x, train_y, test_x, k):
    """Brute-force cosine kNN, majority vote, ties to the smallest class id."""
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    b = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    nearest = np.argsort(-(b @ a.T), axis=1, kind="stable")[:, :k]
    return np.array([np.argmax(np.bincount(train_y[row])) for row in nearest])


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
def test_separated_clusters_are_perfect(metric):
    train_x, train_y, test_x, test_y = split(*clusters(seed=0))
    scores = knn_accuracy_per_level(train_x, train_y, test_x, test_y, k=5, metric=metric)
    assert scores == {"coarse": 1.0, "fine": 1.0}


def test_random_labels_are_near_chance():
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(600, 16)), rng.normal(size=(500, 16))
    train_y, test_y = rng.integers(0, 5, 600), rng.integers(0, 5, 500)
    accuracy = knn_accuracy(train_x, train_y, test_x, test_y, k=20)
    assert abs(accuracy - 0.2) < 0.06


@pytest.mark.parametrize("k", [1, 4, 7])
def test_matches_direct_computation(k):
    rng = np.random.default_rng(k)
    train_x, test_x = rng.normal(size=(40, 6)), rng.normal(size=(15, 6))
    train_y, test_y = rng.integers(0, 3, 40), rng.integers(0, 3, 15)
    expected = np.mean(numpy_knn_predict(train_x, train_y, test_x, k) == test_y)
    direct = sklearn.neighbors.KNeighborsClassifier(k, metric="cosine", algorithm="brute")
    direct_score = direct.fit(train_x, train_y).score(test_x, test_y)
    accuracy = knn_accuracy(train_x, train_y, test_x, test_y, k=k)
    assert accuracy == pytest.approx(expected, abs=1e-12)
    assert accuracy == pytest.approx(direct_score, abs=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_other_metrics_match_scikit_learn(metric):
    rng = np.random.default_rng(5)
    train_x, test_x = rng.normal(size=(50, 6)) * 3, rng.normal(size=(20, 6)) * 3
    train_y, test_y = rng.integers(0, 3, 50), rng.integers(0, 3, 20)
    direct = sklearn.neighbors.KNeighborsClassifier(5, metric=metric, algorithm="brute")
    expected = direct.fit(train_x, train_y).score(test_x, test_y)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5, metric=metric) == expected


def test_equal_distances_go_to_the_lower_training_row():
    # Rows 1 and 2 are the same point with different classes: row 1 is the neighbour.
    train_x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    test_x = np.array([[1.0, 0.1]])
    for metric in ("cosine", "euclidean"):
        for first, others, expected in ((4, 9, 1.0), (9, 4, 0.0)):
            train_y = np.array([0, first, others, others])
            score = knn_accuracy(train_x, train_y, test_x, np.array([4]), k=1, metric=metric)
            assert score == expected, (metric, first)


def test_multi_hot_is_micro_f1_of_neighbour_vote():
    rng = np.random.default_rng(3)
    train_x, test_x = rng.normal(size=(30, 5)), rng.normal(size=(12, 5))
    train_y = (rng.random((30, 4)) < 0.4).astype("int32")
    test_y = (rng.random((12, 4)) < 0.4).astype("int32")
    k = 4
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    b = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    nearest = np.argsort(-(b @ a.T), axis=1)[:, :k]
    predicted = (train_y[nearest].sum(axis=1) * 2 >= k).astype("int32")
    tp = np.sum(predicted * test_y)
    fp = np.sum(predicted * (1 - test_y))
    fn = np.sum((1 - predicted) * test_y)
    expected = 2 * tp / (2 * tp + fp + fn)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=k) == pytest.approx(expected)


def unlabelled_case():
    e1, e2, e3 = np.eye(3)
    train_x = np.stack([e1, e1, e2, e2, e3, e3])
    train_y = np.array([0, 0, 1, 1, -1, -1])
    # Labelled test rows: right, right only if the -1 training rows are ignored, wrong.
    test_x = np.stack([e1, e3 + 0.1 * e1, e1, e2, e3])
    test_y = np.array([0, 0, 1, -1, -1])
    return train_x, train_y, test_x, test_y


def test_unlabelled_rows_are_excluded(monkeypatch):
    sizes = {}

    def recording(queries, references, k):
        sizes.update(references=len(references), queries=len(queries))
        return exact_top_k(queries, references, k)

    monkeypatch.setattr(knn, "exact_top_k", recording)
    accuracy = knn_accuracy(*unlabelled_case(), k=1)
    # 2 of 3 labelled test rows; counting -1 rows would give 1/3, 2/5 or 1/5.
    assert accuracy == pytest.approx(2 / 3)
    assert sizes == {"references": 4, "queries": 3}


def test_unlabelled_multi_hot_rows_are_excluded():
    train_x = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    train_y = np.array([[1, 0], [0, 1], [-1, -1]])
    test_x = np.array([[1.0, 0.05], [0.05, 1.0], [1.0, 0.0]])
    test_y = np.array([[1, 0], [0, 1], [-1, -1]])
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=1) == 1.0


@pytest.mark.parametrize("dtype", ["float16", "int32", "bool"])
def test_embedding_dtypes(dtype):
    train_x = np.array([[1, 0], [1, 0], [0, 1]]).astype(dtype)
    test_x = np.array([[0, 1], [1, 0]]).astype(dtype)
    assert knn_accuracy(train_x, np.array([2, 2, 5]), test_x, np.array([5, 2]), k=1) == 1.0


def test_k_larger_than_training_set_uses_all_rows():
    train_x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    train_y = np.array([2, 2, 5])
    test_x = np.array([[0.0, 1.0], [1.0, 0.0]])
    # All three rows vote: class 2 wins for both test rows.
    assert knn_accuracy(train_x, train_y, test_x, np.array([5, 2]), k=50) == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "`k` should be a positive integer"),
        ({"metric": "hamming"}, "`metric` should be one of"),
        ({"test_embeddings": np.ones((2, 3))}, "same width"),
        ({"train_labels": np.array([0, 1, 1])}, "`train_labels` should have one row"),
        ({"train_labels": np.array([-1, -1])}, "at least one labelled row"),
        ({"test_labels": np.array([[0, 1], [1, 0]])}, "same format"),
        ({"train_embeddings": np.ones(2)}, "`train_embeddings` should be a non-empty 2-D"),
        ({"train_labels": np.array([0.5, 1.0])}, "integer values"),
        ({"train_embeddings": np.array([["a", "b"], ["c", "d"]])}, "real numbers"),
    ],
)
def test_invalid_inputs_raise(kwargs, message):
    arguments = {
        "train_embeddings": np.eye(2),
        "train_labels": np.array([0, 1]),
        "test_embeddings": np.eye(2),
        "test_labels": np.array([0, 1]),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        knn_accuracy(**arguments)


def test_per_level_needs_the_same_levels():
    labels = {"coarse": np.array([0, 1])}
    with pytest.raises(ValueError, match="same levels"):
        knn_accuracy_per_level(np.eye(2), labels, np.eye(2), {"fine": np.array([0, 1])})
