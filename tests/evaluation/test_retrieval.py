import numpy as np
import pytest

from keras_mlcl.evaluation import retrieval
from keras_mlcl.evaluation import retrieval_metrics
from keras_mlcl.evaluation import retrieval_metrics_per_level

pytestmark = pytest.mark.backend_independent


def brute_force(queries, query_labels, references=None, reference_labels=None, ks=(1, 5)):
    """Recall@k and mAP@R with Python loops, one query at a time."""
    leave_one_out = references is None
    if leave_one_out:
        references, reference_labels = queries, query_labels
    recalls = {k: [] for k in ks}
    average_precisions = []
    for i, (query, label) in enumerate(zip(queries, query_labels, strict=True)):
        if label < 0:
            continue
        candidates = [
            j
            for j in range(len(references))
            if reference_labels[j] >= 0 and not (leave_one_out and j == i)
        ]
        cosine = {
            j: float(np.dot(query, references[j]))
            / (np.linalg.norm(query) * np.linalg.norm(references[j]))
            for j in candidates
        }
        ranked = sorted(candidates, key=lambda j: -cosine[j])
        relevant = [reference_labels[j] == label for j in ranked]
        r = sum(relevant)
        if r == 0:
            continue
        for k in ks:
            recalls[k].append(any(relevant[:k]))
        precision_sum, found = 0.0, 0
        for rank in range(1, r + 1):
            if relevant[rank - 1]:
                found += 1
                precision_sum += found / rank
        average_precisions.append(precision_sum / r)
    result = {f"recall@{k}": float(np.mean(recalls[k])) for k in ks}
    result["map@r"] = float(np.mean(average_precisions))
    return result


def assert_metrics_close(actual, expected):
    assert list(actual) == list(expected)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-12, err_msg=key)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leave_one_out_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 5))
    y = rng.integers(0, 6, size=60)
    y[:3] = -1  # unlabelled rows are no query and no reference
    ks = (1, 3, 10)
    assert_metrics_close(retrieval_metrics(x, y, ks=ks), brute_force(x, y, ks=ks))


@pytest.mark.parametrize("seed", [0, 1])
def test_query_and_reference_sets_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    queries, references = rng.normal(size=(25, 4)), rng.normal(size=(70, 4))
    query_y, reference_y = rng.integers(0, 8, size=25), rng.integers(0, 7, size=70)
    query_y[0] = 7  # a class without reference: left out
    expected = brute_force(queries, query_y, references, reference_y)
    assert_metrics_close(retrieval_metrics(queries, query_y, references, reference_y), expected)


def test_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(90, 6)), rng.integers(0, 5, size=90)
    whole = retrieval_metrics(x, y, ks=(1, 5))
    monkeypatch.setattr(retrieval, "BLOCK_ELEMENTS", 7 * 90)  # 7 queries per block
    assert_metrics_close(retrieval_metrics(x, y, ks=(1, 5)), whole)


def test_closed_form_cases():
    # Two tight, well separated clusters: perfect retrieval.
    x = np.array([[1.0, 0.0], [0.99, 0.05], [0.98, 0.1], [0.0, 1.0], [0.05, 0.99], [0.1, 0.98]])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert retrieval_metrics(x, y, ks=(1, 2)) == {"recall@1": 1.0, "recall@2": 1.0, "map@r": 1.0}
    # A query whose R = 2 relevant references sit at ranks 1 and 3:
    # AP@R = (1/1 + 0) / 2 = 0.5; recall@1 = 1.
    query = np.array([[1.0, 0.0]])
    references = np.array([[1.0, 0.0], [0.9, 0.3], [0.7, 0.7], [0.0, 1.0]])
    result = retrieval_metrics(query, np.array([4]), references, np.array([4, 2, 4, 2]))
    assert result == {"recall@1": 1.0, "recall@5": 1.0, "map@r": 0.5}
    # The relevant ones at ranks 2 and 3: recall@1 = 0, AP@R = (0 + 1/2) / 2.
    result = retrieval_metrics(query, np.array([4]), references, np.array([2, 4, 4, 2]), ks=1)
    assert result == {"recall@1": 0.0, "map@r": 0.25}


def test_leave_one_out_never_retrieves_the_query_itself():
    # Each point's nearest other point is of another class.
    x = np.array([[1.0, 0.0], [0.95, 0.3], [0.0, 1.0], [0.3, 0.95]])
    y = np.array([0, 1, 0, 1])
    result = retrieval_metrics(x, y, ks=(1,))
    assert result["recall@1"] == 0.0
    assert result["map@r"] == 0.0


def test_per_level_matches_each_level_and_skips_multi_hot():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    fine = rng.integers(0, 8, size=40)
    labels = {"coarse": fine // 4, "fine": fine, "tags": rng.integers(0, 2, size=(40, 3))}
    result = retrieval_metrics_per_level(x, labels, ks=(1, 5))
    assert list(result) == ["coarse", "fine"]
    for level in ("coarse", "fine"):
        assert_metrics_close(result[level], brute_force(x, labels[level]))
    queries, references = x[:10], x[10:]
    split = retrieval_metrics_per_level(
        queries,
        {"fine": fine[:10]},
        references,
        {"fine": fine[10:]},
        ks=(1,),
    )
    expected = brute_force(queries, fine[:10], references, fine[10:], ks=(1,))
    assert_metrics_close(split["fine"], expected)


def test_bad_inputs_raise_clear_errors():
    x = np.eye(4)
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="go together"):
        retrieval_metrics(x, y, reference_embeddings=x)
    with pytest.raises(ValueError, match="int class ids"):
        retrieval_metrics(x, np.eye(4, 2))
    with pytest.raises(ValueError, match="has 3 rows"):
        retrieval_metrics(x, y[:3])
    with pytest.raises(ValueError, match="positive integer"):
        retrieval_metrics(x, y, ks=(0,))
    with pytest.raises(ValueError, match="same width"):
        retrieval_metrics(x, y, np.eye(4, 3), y)
    with pytest.raises(ValueError, match="No labelled query"):
        retrieval_metrics(x, np.array([0, 1, 2, 3]))
