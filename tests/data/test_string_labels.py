import dataclasses

import numpy as np
import pytest

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data import dense_class_ids
from keras_mlcl.data import load_npz
from keras_mlcl.data import save_npz
from keras_mlcl.data import subsample
from keras_mlcl.data import train_test_split
from keras_mlcl.data import validation_split

pytestmark = pytest.mark.backend_independent


# --- string labels -----------------------------------------------------------------------------


def test_string_labels_map_to_sorted_ids_over_every_split():
    data = LabeledDataset(
        x=np.zeros((5, 2)),
        labels={
            "coarse": ["animal", "animal", "plant", "plant", None],
            "fine": np.array(["dog", "cat", "rose", "", "cat"]),
        },
        x_test=np.zeros((2, 2)),
        test_labels={"coarse": ["plant", "fungus"], "fine": ["tulip", np.nan]},
        x_val=np.zeros((1, 2)),
        val_labels={"coarse": ["animal"], "fine": ["ant"]},
    )
    assert data.class_names == {
        "coarse": ["animal", "fungus", "plant"],
        "fine": ["ant", "cat", "dog", "rose", "tulip"],
    }
    assert data.labels["coarse"].tolist() == [0, 0, 2, 2, -1]
    assert data.labels["fine"].tolist() == [2, 1, 3, -1, 1]
    assert data.test_labels["coarse"].tolist() == [2, 1]
    assert data.test_labels["fine"].tolist() == [4, -1]
    assert data.val_labels["fine"].tolist() == [0]
    assert data.labels["fine"].dtype == np.int32
    assert data.num_classes("fine") == 5


def test_given_class_names_fix_the_order():
    data = LabeledDataset(
        x=np.zeros((3, 1)),
        labels={"fine": ["b", "a", "c"], "id": [2, 0, 1]},
        class_names={"fine": ["c", "b", "a", "unused"]},
    )
    assert data.labels["fine"].tolist() == [1, 2, 0]
    assert data.labels["id"].tolist() == [2, 0, 1]  # integer labels work as before
    assert data.class_names == {"fine": ["c", "b", "a", "unused"]}
    assert list(data.class_names) == ["fine"]


def test_string_mapping_is_stable_through_replace():
    data = LabeledDataset(x=np.zeros((3, 1)), labels={"fine": ["b", "a", "b"]})
    copy = dataclasses.replace(data, x=data.x + 1)
    assert copy.labels["fine"].tolist() == [1, 0, 1]
    assert copy.class_names == {"fine": ["a", "b"]}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"labels": {"fine": ["a", "b", "z"]}, "class_names": {"fine": ["a", "b"]}},
            r"level 'fine' .*class_names\['fine'\].* unknown names: \['z'\]",
        ),
        (
            {"labels": {"fine": ["a", "b", "a"]}, "class_names": {"fine": ["a", "a", "b"]}},
            "should not repeat a name",
        ),
        ({"labels": {"fine": ["a", 3, "b"]}}, r"labels\['fine'\].*3 \(int\) on row 1"),
        (
            {
                "labels": {"fine": ["a", "b", "a"]},
                "x_test": np.zeros((1, 2)),
                "test_labels": {"fine": np.array([0])},
            },
            r"test_labels\['fine'\].*0 \(int\) on row 0",
        ),
    ],
)
def test_string_label_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        LabeledDataset(x=np.zeros((3, 2)), **kwargs)
    assert "\n" not in str(error.value)


def test_load_npz_accepts_string_labels(tmp_path):
    path = str(tmp_path / "named.npz")
    np.savez(
        path,
        x=np.arange(4, dtype="float32")[:, None],
        y_coarse=np.array(["b", "b", "a", ""]),
        y_fine=np.array(["b2", "b1", "a1", "a1"]),
        x_test=np.zeros((1, 1)),
        y_test_coarse=np.array(["c"]),
        y_test_fine=np.array(["b1"]),
    )
    data = load_npz(path)
    assert data.labels["coarse"].tolist() == [1, 1, 0, -1]
    assert data.labels["fine"].tolist() == [2, 1, 0, 0]
    assert data.test_labels["coarse"].tolist() == [2]
    assert data.class_names == {"coarse": ["a", "b", "c"], "fine": ["a1", "b1", "b2"]}
    again = load_npz(save_npz(data, tmp_path / "again"))
    assert again.class_names == data.class_names
    assert again.labels["fine"].tolist() == [2, 1, 0, 0]


# --- row ids -----------------------------------------------------------------------------------


def with_ids(num=20):
    fine = np.arange(num) % 4
    return LabeledDataset(
        x=np.arange(num, dtype="float32")[:, None],
        labels={"coarse": fine // 2, "fine": fine},
        ids=[f"row{i}" for i in range(num)],
    )


def assert_ids_follow_rows(x, ids):
    assert ids is not None and len(ids) == len(x)
    assert ids.tolist() == [f"row{int(value)}" for value in x[:, 0]]


def test_ids_are_checked_and_stored():
    data = with_ids(4)
    assert data.ids.dtype.kind == "U"
    integers = LabeledDataset(x=np.zeros((3, 1)), labels={"a": [0, 1, 0]}, ids=[7, 3, 5])
    assert integers.ids.dtype == np.int64 and integers.ids.tolist() == [7, 3, 5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ids": ["a", "b"]}, r"`ids` should be integers or strings of shape \(3,\)"),
        ({"ids": [0.5, 1.5, 2.5]}, "`ids` should be integers or strings"),
        ({"ids": ["a", "b", "a"]}, r"`ids` should not repeat.*'a' on rows 0 and 2"),
        ({"test_ids": [1]}, "`test_ids` should be None when `x_test` is None"),
        (
            {"x_test": np.zeros((2, 1)), "test_labels": {"a": [0, 1]}, "test_ids": [4, 4]},
            r"`test_ids` should not repeat.*4 on rows 0 and 1",
        ),
    ],
)
def test_bad_ids(kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        LabeledDataset(x=np.zeros((3, 1)), labels={"a": [0, 1, 0]}, **kwargs)
    assert "\n" not in str(error.value)


def test_ids_follow_their_rows_through_the_splits():
    data = with_ids()
    split = train_test_split(data, test_fraction=0.25, seed=3)
    assert_ids_follow_rows(split.x, split.ids)
    assert_ids_follow_rows(split.x_test, split.test_ids)
    assert len(split.test_ids) == 5

    small = subsample(split, fraction=0.5, seed=1)
    assert_ids_follow_rows(small.x, small.ids)
    assert small.test_ids.tolist() == split.test_ids.tolist()

    train, val = validation_split(split, fraction=0.2, seed=2)
    assert_ids_follow_rows(train.x, train.ids)
    assert_ids_follow_rows(val.x, val.ids)
    assert train.test_ids.tolist() == split.test_ids.tolist()
    assert sorted(train.ids.tolist() + val.ids.tolist()) == sorted(split.ids.tolist())
    assert train.val_ids is None


def test_ids_survive_dense_class_ids_and_npz(tmp_path):
    data = LabeledDataset(
        x=np.arange(3, dtype="float32")[:, None],
        labels={"label": [7, 10**6, 7]},
        x_test=np.zeros((1, 1)),
        test_labels={"label": [10**6]},
        ids=[30, 10, 20],
        test_ids=["t0"],
    )
    dense, _ = dense_class_ids(data)
    assert dense.labels["label"].tolist() == [0, 1, 0]
    assert dense.ids.tolist() == [30, 10, 20] and dense.test_ids.tolist() == ["t0"]
    loaded = load_npz(save_npz(dense, tmp_path / "ids"))
    assert loaded.ids.tolist() == [30, 10, 20]
    assert loaded.test_ids.tolist() == ["t0"]
    assert loaded.val_ids is None
