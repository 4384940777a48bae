import os

import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import dataset_names
from keras_mlcl.data import load_dataset
from keras_mlcl.data import load_npz
from keras_mlcl.data import register_dataset
from keras_mlcl.data import save_npz
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.data import validation_split

pytestmark = pytest.mark.backend_independent


def hierarchical(sizes=(100, 50, 30, 20), seed=0):
    """A dataset whose fine class c has sizes[c] samples, coarse = c // 2, x[i] = i."""
    fine = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(seed).shuffle(fine)
    n = len(fine)
    return LabeledDataset(
        x=np.arange(n, dtype="float32")[:, None],
        labels={"coarse": fine // 2, "fine": fine},
        name="toy",
    )


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


# --- the container ---------------------------------------------------------------------------


def test_container_levels_and_num_classes():
    data = LabeledDataset(
        x=np.zeros((4, 3)),
        labels={"coarse": [0, 0, 1, -1], "tags": [[1, 0], [0, 1], [1, 1], [0, 0]]},
        class_names={"coarse": ["a", "b", "c"]},
    )
    assert data.levels == ["coarse", "tags"]
    assert data.labels["coarse"].dtype == np.int32
    assert data.num_classes("coarse") == 3  # from the class names
    assert data.num_classes("tags") == 2
    assert data.is_multi_hot("tags") and not data.is_multi_hot("coarse")
    assert not data.has_test


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": {}}, "`labels` should be a non-empty dict"),
        ({"labels": {"a": [0, 1]}}, "one row per input"),
        ({"labels": {"a": [[0, 2], [1, 0], [0, 0]]}}, "multi-hot matrix of 0/1"),
        ({"labels": {"a": [0.5, 1, 2]}}, "non-integer"),
        ({"labels": {"a": np.zeros((3, 2, 2))}}, "shape"),
        ({"labels": {"a": [0, 1, 2]}, "x_test": np.zeros((2, 2))}, "both be given"),
        (
            {"labels": {"a": [0, 1, 2]}, "x_test": np.zeros((1, 2)), "test_labels": {"b": [0]}},
            "same levels",
        ),
        (
            {"labels": {"a": [0, 1, 2]}, "class_names": {"b": ["x"]}},
            "`class_names` should only name levels",
        ),
    ],
)
def test_container_rejects_bad_labels(kwargs, match):
    kwargs = {"x": np.zeros((3, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        LabeledDataset(**kwargs)


# --- the .npz format -------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = LabeledDataset(
        x=rng.integers(0, 255, size=(12, 4, 4), dtype="uint8"),
        labels={
            "coarse": rng.integers(0, 3, size=12),
            "fine": rng.integers(-1, 6, size=12),
            "tags": (rng.random((12, 5)) < 0.4).astype("int8"),
        },
        x_test=rng.integers(0, 255, size=(5, 4, 4), dtype="uint8"),
        test_labels={
            "coarse": rng.integers(0, 3, size=5),
            "fine": rng.integers(0, 6, size=5),
            "tags": (rng.random((5, 5)) < 0.4),
        },
        class_names={"coarse": ["a", "b", "c"]},
        x_val=rng.integers(0, 255, size=(3, 4, 4), dtype="uint8"),
        val_labels={"coarse": [0, 1, 2], "fine": [3, 4, 5], "tags": np.eye(3, 5)},
    )
    path = save_npz(data, tmp_path / "round")
    assert path.endswith("round.npz")
    loaded = load_npz(path)
    assert loaded.name == "round"
    assert loaded.levels == ["coarse", "fine", "tags"]
    np.testing.assert_array_equal(loaded.x, data.x)
    np.testing.assert_array_equal(loaded.x_test, data.x_test)
    np.testing.assert_array_equal(loaded.x_val, data.x_val)
    for level in data.levels:
        np.testing.assert_array_equal(loaded.labels[level], data.labels[level])
        np.testing.assert_array_equal(loaded.test_labels[level], data.test_labels[level])
        np.testing.assert_array_equal(loaded.val_labels[level], data.val_labels[level])
        assert loaded.labels[level].dtype == np.int32
    assert loaded.class_names == {"coarse": ["a", "b", "c"]}


def test_npz_level_order_follows_the_file(tmp_path):
    path = write(
        tmp_path / "d.npz", x=np.zeros((3, 1)), y_z=[0, 1, 2], y_a=[0, 0, 1], y_m=[1, 1, 1]
    )
    assert load_npz(path).levels == ["z", "a", "m"]
    assert load_dataset(path).levels == ["z", "a", "m"]


def test_npz_single_level_y(tmp_path):
    path = write(
        tmp_path / "d.npz", x=np.zeros((3, 1)), y=[2, 0, 1], x_test=np.ones((2, 1)), y_test=[1, 1]
    )
    data = load_npz(path)
    assert data.levels == ["label"]
    np.testing.assert_array_equal(data.labels["label"], [2, 0, 1])
    np.testing.assert_array_equal(data.test_labels["label"], [1, 1])


def test_npz_without_test_split(tmp_path):
    path = write(tmp_path / "d.npz", x=np.zeros((3, 1)), y_fine=[0, 1, 2])
    data = load_npz(path)
    assert data.x_test is None and data.test_labels is None and not data.has_test
    np.testing.assert_array_equal(data.labels["fine"], [0, 1, 2])


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"y_fine": [0, 1, 2]}, "should hold the inputs as `x`"),
        ({"x": np.zeros((3, 1)), "labels": [0, 1, 2]}, "at least one label array"),
        ({"x": np.zeros((3, 1)), "y_fine": [0, 1]}, r"`y_fine` should have one row per input"),
        (
            {
                "x": np.zeros((3, 1)),
                "y_fine": [0, 1, 2],
                "x_test": np.zeros((2, 1)),
                "y_test_fine": [0],
            },
            r"`y_test_fine` should have one row per input of `x_test`",
        ),
        (
            {
                "x": np.zeros((3, 1)),
                "y_coarse": [0, 0, 1],
                "y_fine": [0, 1, 2],
                "x_test": np.zeros((2, 1)),
                "y_test_fine": [0, 1],
            },
            r"no labels for level\(s\) \['coarse'\]",
        ),
        (
            {"x": np.zeros((3, 1)), "y_fine": [0, 1, 2], "x_test": np.zeros((2, 1))},
            r"no labels for level\(s\) \['fine'\]",
        ),
        (
            {"x": np.zeros((3, 1)), "y_fine": [0, 1, 2], "y_test_fine": [0, 1]},
            "no `x_test` inputs",
        ),
        (
            {
                "x": np.zeros((3, 1)),
                "y_fine": [0, 1, 2],
                "x_test": np.zeros((2, 1)),
                "y_test_fine": [0, 1],
                "y_test_other": [0, 1],
            },
            "training labels do not have",
        ),
        (
            {
                "x": np.zeros((3, 1)),
                "y_tags": np.eye(3, 4),
                "x_test": np.zeros((2, 1)),
                "y_test_tags": [0, 1],
            },
            r"`y_tags` is multi-hot \(N, K\) but `y_test_tags` is integer class ids",
        ),
        (
            {
                "x": np.zeros((3, 1)),
                "y_fine": [0, 1, 2],
                "x_test": np.zeros((2, 1)),
                "y_test_fine": np.eye(2),
            },
            r"`y_fine` is integer class ids \(N,\) but `y_test_fine` is multi-hot",
        ),
        (
            {
                "x": np.zeros((3, 1)),
                "y_tags": np.eye(3, 4),
                "x_test": np.zeros((2, 1)),
                "y_test_tags": np.eye(2, 3),
            },
            "4 multi-hot columns but `y_test_tags` has 3",
        ),
        ({"x": np.zeros((3, 1)), "y": [0, 1, 2], "y_fine": [0, 1, 2]}, "not both"),
        ({"x": np.zeros((3, 1)), "y_tags": np.full((3, 2), 3)}, "multi-hot matrix of 0/1"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz(path)


def test_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "nothing.npz")


def test_save_npz_rejects_reserved_level_names(tmp_path):
    data = LabeledDataset(x=np.zeros((2, 1)), labels={"test_fine": [0, 1]})
    with pytest.raises(ValueError, match="should not start with 'test_'"):
        save_npz(data, tmp_path / "d.npz")


# --- splits ----------------------------------------------------------------------------------


def test_train_test_split_is_stratified():
    data = hierarchical((100, 50, 30, 20))
    split = train_test_split(data, test_fraction=0.2, seed=3)
    # Exact shares: 20% of 100, 50, 30, 20.
    np.testing.assert_array_equal(np.bincount(split.test_labels["fine"]), [20, 10, 6, 4])
    np.testing.assert_array_equal(np.bincount(split.labels["fine"]), [80, 40, 24, 16])
    # Disjoint, covering, order kept, and labels travel with their inputs (x[i] = i).
    ids_train, ids_test = split.x[:, 0].astype(int), split.x_test[:, 0].astype(int)
    assert sorted(np.concatenate([ids_train, ids_test]).tolist()) == list(range(200))
    assert np.all(np.diff(ids_train) > 0) and np.all(np.diff(ids_test) > 0)
    for level in ("coarse", "fine"):
        np.testing.assert_array_equal(split.test_labels[level], data.labels[level][ids_test])
        np.testing.assert_array_equal(split.labels[level], data.labels[level][ids_train])


def test_train_test_split_rounds_to_the_total_by_largest_remainder():
    data = hierarchical((7, 7, 7))  # 21 samples, 0.5 -> 10.5 -> 10 (banker's) or 11
    split = train_test_split(data, test_fraction=0.5, seed=0)
    counts = np.bincount(split.test_labels["fine"], minlength=3)
    assert counts.sum() == round(21 * 0.5)
    assert set(counts.tolist()) <= {3, 4}


def test_train_test_split_seeds():
    data = hierarchical()
    a = train_test_split(data, seed=0).x_test[:, 0]
    b = train_test_split(data, seed=0).x_test[:, 0]
    c = train_test_split(data, seed=1).x_test[:, 0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_test_split_multi_hot_falls_back_to_random():
    rng = np.random.default_rng(0)
    data = LabeledDataset(x=np.arange(50)[:, None], labels={"tags": rng.random((50, 3)) < 0.5})
    split = train_test_split(data, test_fraction=0.3)
    assert len(split.x_test) == 15 and len(split.x) == 35
    np.testing.assert_array_equal(
        split.test_labels["tags"], data.labels["tags"][split.x_test[:, 0]]
    )


def test_train_test_split_errors():
    data = hierarchical()
    for bad in (0, 1, 1.5, -0.1, "a", True):
        with pytest.raises(ValueError, match="`test_fraction` should be in"):
            train_test_split(data, test_fraction=bad)
    with pytest.raises(ValueError, match="already has a test split"):
        train_test_split(train_test_split(data))


def test_subsample_is_stratified_and_keeps_the_test_split():
    data = train_test_split(hierarchical((100, 50, 30, 20)), test_fraction=0.2)
    small = subsample(data, fraction=0.25, seed=1)
    np.testing.assert_array_equal(np.bincount(small.labels["fine"]), [20, 10, 6, 4])
    np.testing.assert_array_equal(small.x_test, data.x_test)
    kept = small.x[:, 0].astype(int)
    assert set(kept.tolist()) <= set(data.x[:, 0].astype(int).tolist())
    lookup = dict(
        zip(data.x[:, 0].astype(int).tolist(), data.labels["coarse"].tolist(), strict=True)
    )
    np.testing.assert_array_equal(small.labels["coarse"], [lookup[i] for i in kept])
    assert subsample(data, fraction=1.0) is data
    assert len(subsample(data, fraction=1e-6).x) == 1


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, "half", None, True])
def test_subsample_validates_fraction(bad):
    with pytest.raises(ValueError, match=r"`fraction` should be in \(0, 1\]"):
        subsample(hierarchical(), fraction=bad)


def test_validation_split():
    data = train_test_split(hierarchical((100, 50, 30, 20)), test_fraction=0.2)
    train, val = validation_split(data, fraction=0.25, seed=2)
    np.testing.assert_array_equal(np.bincount(val.labels["fine"]), [20, 10, 6, 4])
    np.testing.assert_array_equal(np.bincount(train.labels["fine"]), [60, 30, 18, 12])
    assert not set(train.x[:, 0].tolist()) & set(val.x[:, 0].tolist())
    np.testing.assert_array_equal(train.x_test, data.x_test)
    assert val.x_test is None and val.levels == ["coarse", "fine"]
    with pytest.raises(ValueError, match=r"`fraction` should be in \(0, 1\)"):
        validation_split(data, fraction=1.0)


def test_split_keeps_classes_of_one_sample():
    # scikit-learn cannot split a class of one row: such rows share a stratum (one lone row
    # joins the largest class), and every other class keeps its exact share.
    fine = np.array([0] * 40 + [1] * 20 + [2] + [3])
    data = LabeledDataset(x=np.arange(len(fine))[:, None], labels={"fine": fine})
    test = np.bincount(train_test_split(data, test_fraction=0.25, seed=0).test_labels["fine"])
    assert test[:2].tolist() == [10, 5] and test.sum() == 16
    lone = LabeledDataset(x=np.arange(41)[:, None], labels={"fine": [0] * 20 + [1] * 20 + [2]})
    train, val = validation_split(lone, fraction=0.5, seed=0)
    assert len(val.x) == 20 and len(train.x) == 21


def test_split_smaller_than_the_classes_is_random():
    data = hierarchical((100, 50, 30, 20))
    small = subsample(data, fraction=0.01, seed=0)  # 2 rows, 4 classes: no stratified draw
    assert len(small.x) == 2
    np.testing.assert_array_equal(
        small.labels["fine"], data.labels["fine"][small.x[:, 0].astype(int)]
    )
    a = subsample(data, fraction=0.01, seed=0).x
    np.testing.assert_array_equal(a, small.x)


def test_split_ignores_coarser_multi_hot_and_unlabelled_rows():
    # Finest single-label level drives the strata; -1 (unlabelled) is a stratum of its own.
    fine = np.array([0] * 10 + [1] * 10 + [-1] * 10)
    data = LabeledDataset(x=np.arange(30)[:, None], labels={"tags": np.eye(30, 3), "fine": fine})
    split = train_test_split(data, test_fraction=0.2)
    values, counts = np.unique(split.test_labels["fine"], return_counts=True)
    assert values.tolist() == [-1, 0, 1] and counts.tolist() == [2, 2, 2]


# --- the registry ----------------------------------------------------------------------------


def test_load_dataset_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="'fashion_mnist'.*'mulan_medical'.*Received"):
        load_dataset("imagenet")
    assert "cifar100" in dataset_names() and "clinc150" in dataset_names()


def test_register_dataset(monkeypatch):
    from keras_mlcl.data import registry

    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))
    toy = LabeledDataset(x=np.zeros((2, 1)), labels={"label": [0, 1]}, name="toy")
    seen = []
    register_dataset("toy", lambda data_dir: seen.append(data_dir) or toy)
    assert "toy" in dataset_names()
    assert load_dataset("toy", data_dir="/somewhere") is toy and seen == ["/somewhere"]
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("toy", lambda data_dir: toy)
    with pytest.raises(ValueError, match="not ending in '.npz'"):
        register_dataset("toy.npz", lambda data_dir: toy)
    with pytest.raises(ValueError, match="`loader` should be callable"):
        register_dataset("other", None)


def test_dataset_names_are_the_registered_loaders():
    assert dataset_names() == [
        "cifar100",
        "clinc150",
        "fashion_mnist",
        "fashion_mnist_full",
        "mulan_emotions",
        "mulan_medical",
        "mulan_medical_icd",
        "mulan_scene",
    ]


def test_load_dataset_missing_raw_data_is_a_clear_error(tmp_path, no_data_dir):
    with pytest.raises(FileNotFoundError, match="CLINC150"):
        load_dataset("clinc150", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="scene"):
        load_dataset("mulan_scene", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST"):
        load_dataset("fashion_mnist_full", data_dir=str(tmp_path))
    assert not os.listdir(tmp_path)
