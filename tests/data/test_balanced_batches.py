import keras
import numpy as np
import pytest

from keras_mlcl.data import BalancedBatches
from tests.models import problems


def labels(sizes, seed=0):
    """Class ids with `sizes[c]` samples of class `c`, shuffled."""
    y = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(seed).permutation(y)


def check_batch(fine, p, k):
    classes, counts = np.unique(fine, return_counts=True)
    assert len(classes) == p
    assert (counts == k).all()


@pytest.mark.parametrize("sizes", [[8] * 6, [5, 9, 4, 12, 7, 3, 20]])
def test_every_batch_has_p_classes_of_k_and_an_epoch_covers_every_sample(sizes):
    fine = labels(sizes)
    x = np.arange(len(fine), dtype="float32")[:, None]
    y = {"coarse": fine // 2, "fine": fine}
    batches = BalancedBatches(x, y, classes_per_batch=3, samples_per_class=4, seed=1)
    seen = []
    for index in range(len(batches)):
        xb, yb = batches[index]
        assert xb.shape == (12, 1)
        check_batch(yb["fine"], p=3, k=4)
        rows = xb[:, 0].astype(int)
        np.testing.assert_array_equal(yb["fine"], fine[rows])  # rows stay aligned
        np.testing.assert_array_equal(yb["coarse"], fine[rows] // 2)
        seen.extend(rows)
    assert set(seen) == set(range(len(fine)))
    # Chunks of K per class: ceil(n_c / K) of them, P per batch at most.
    chunks = sum(-(-n // 4) for n in sizes)
    assert -(-chunks // 3) <= len(batches) <= chunks


def test_equal_classes_give_the_exact_number_of_batches():
    fine = labels([8] * 6)
    batches = BalancedBatches(np.zeros((48, 2)), fine, classes_per_batch=3, samples_per_class=4)
    assert len(batches) == 4  # 12 chunks of 4, 3 per batch
    rows = np.concatenate([batches[i][0] for i in range(4)])
    assert rows.shape == (48, 2)


def test_seeded_and_reshuffled_each_epoch():
    fine = labels([10, 10, 10, 10])
    x = np.arange(40, dtype="float32")[:, None]

    def epoch(batches):
        return np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])

    a = BalancedBatches(x, fine, classes_per_batch=2, samples_per_class=5, seed=3)
    b = BalancedBatches(x, fine, classes_per_batch=2, samples_per_class=5, seed=3)
    first = epoch(a)
    np.testing.assert_array_equal(first, epoch(b))
    a.on_epoch_end()
    second = epoch(a)
    assert len(second) == len(first)
    assert not np.array_equal(first, second)
    assert sorted(second) == sorted(first) == list(range(40))


def test_small_classes_are_sampled_with_replacement_and_unlabelled_rows_never():
    fine = np.array([0, 0, 1, 1, 1, 1, 2, -1, -1])
    x = np.arange(9, dtype="float32")[:, None]
    batches = BalancedBatches(x, fine, classes_per_batch=2, samples_per_class=3, seed=0)
    seen = set()
    for index in range(len(batches)):
        xb, yb = batches[index]
        check_batch(yb, p=2, k=3)
        seen |= set(xb[:, 0].astype(int))
    assert seen == set(range(7))  # rows 7 and 8 are unlabelled


def test_sample_weight_is_sliced_with_the_batch():
    fine = labels([4, 4])
    weights = np.arange(8, dtype="float32") / 10
    x = np.arange(8, dtype="float32")[:, None]
    batches = BalancedBatches(x, fine, 2, 2, sample_weight=weights, seed=0)
    xb, _, wb = batches[0]
    np.testing.assert_allclose(wb, xb[:, 0] / 10)


def test_bad_arguments_raise_clear_errors():
    fine = labels([4, 4, 4])
    x = np.zeros((12, 2))
    with pytest.raises(ValueError, match="at most the number of labelled classes"):
        BalancedBatches(x, fine, classes_per_batch=4, samples_per_class=2)
    with pytest.raises(ValueError, match="`samples_per_class` should be a positive int"):
        BalancedBatches(x, fine, classes_per_batch=2, samples_per_class=0)
    with pytest.raises(ValueError, match="`level` should be a key"):
        BalancedBatches(x, {"fine": fine}, 2, 2, level="coarse")
    with pytest.raises(ValueError, match="int class ids"):
        BalancedBatches(x, np.eye(12, 3), 2, 2)
    with pytest.raises(ValueError, match="same number of rows"):
        BalancedBatches(x[:10], fine, 2, 2)


def test_fit_runs_one_epoch_on_balanced_batches():
    x, y = problems.clustered(n=128)
    model = problems.model(classifier={"fine": 8}, ce_weight=1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics={"fine": ["accuracy"]})
    batches = BalancedBatches(x, y, classes_per_batch=4, samples_per_class=8, seed=0)
    history = model.fit(batches, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][1] < history["loss"][0]
    assert 0.0 <= history["fine_accuracy"][1] <= 1.0
