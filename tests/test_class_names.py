import numpy as np
import pytest

from keras_mlcl.utils.class_names import encode_class_names
from keras_mlcl.utils.class_names import names_from_ids
from keras_mlcl.utils.class_names import string_labels

pytestmark = pytest.mark.backend_independent


def test_given_names_fix_the_ids():
    ids, names = encode_class_names("fine", {"y": ["b", "a", "c", "b"]}, ["c", "b", "a", "unused"])
    assert ids["y"].tolist() == [1, 2, 0, 1]
    assert ids["y"].dtype == np.int32
    assert names == ["c", "b", "a", "unused"]


def test_new_names_are_sorted_over_every_split():
    ids, names = encode_class_names(
        "fine", {"train": np.array(["dog", "cat", "dog"]), "test": ["ant", "dog"]}
    )
    assert names == ["ant", "cat", "dog"]
    assert ids["train"].tolist() == [2, 1, 2]
    assert ids["test"].tolist() == [0, 2]


def test_missing_values_are_minus_one():
    labels = np.array(["cat", None, np.nan, "", "  ", "dog"], dtype=object)
    ids, names = encode_class_names("fine", {"y": labels})
    assert names == ["cat", "dog"]
    assert ids["y"].tolist() == [0, -1, -1, -1, -1, 1]
    # A str array: blank strings are missing too.
    ids, _ = encode_class_names("fine", {"y": np.array(["", " ", "cat"])})
    assert ids["y"].tolist() == [-1, -1, 0]


def test_unknown_names_raise_one_line_naming_argument_and_level():
    labels = ["g", "a", "f", "b", "e", "d", "c", "h"]
    with pytest.raises(ValueError, match=r"`y\['fine'\]`.*level 'fine'") as error:
        encode_class_names("fine", {"y['fine']": labels}, ["a"])
    message = str(error.value)
    assert "['b', 'c', 'd', 'e', 'f'] and 2 more" in message
    assert "\n" not in message
    with pytest.raises(ValueError, match=r"`class_names\['fine'\]` should not repeat.*\['a'\]"):
        encode_class_names("fine", {"y": ["a"]}, ["a", "b", "a"])


def test_non_strings_raise_with_their_row():
    with pytest.raises(ValueError, match=r"`y`.*3 \(int\) on row 1"):
        encode_class_names("fine", {"y": ["a", 3]})
    with pytest.raises(ValueError, match=r"2.5 \(float\) on index \(1, 0\)"):
        encode_class_names("fine", {"y": [["a", None], [2.5, "b"]]})


def test_bytes_are_decoded():
    ids, names = encode_class_names("fine", {"a": np.array([b"dog", b"cat"]), "b": [b"ant", None]})
    assert names == ["ant", "cat", "dog"]
    assert ids["a"].tolist() == [2, 1] and ids["b"].tolist() == [0, -1]


def test_two_dimensional_labels_keep_their_shape():
    labels = np.array([["plant", "oak"], ["animal", ""]])
    ids, names = encode_class_names("columns", {"y": labels})
    assert names == ["animal", "oak", "plant"]
    assert ids["y"].shape == (2, 2)
    assert ids["y"].tolist() == [[2, 1], [0, -1]]


def test_many_rows_match_a_python_reference():
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"class{i}" for i in range(50)] + [""])
    labels = vocabulary[rng.integers(0, len(vocabulary), size=20000)]
    ids, names = encode_class_names("fine", {"y": labels.astype(object)})
    assert names == sorted(set(labels.tolist()) - {""})
    expected = [names.index(v) if v else -1 for v in labels.tolist()]
    assert ids["y"].tolist() == expected


def test_string_labels_detection_and_ids_back_to_names():
    assert string_labels(np.array([0, 1])) is None
    assert string_labels([None, np.nan]) is None
    kept = string_labels(["a", np.nan])
    assert kept.dtype == object and np.isnan(kept[1])
    assert string_labels(np.array([[b"a"], [b"b"]])).shape == (2, 1)
    assert names_from_ids("fine", np.array([[1, -1]]), ["cat", "dog"]).tolist() == [["dog", None]]
    with pytest.raises(ValueError, match=r"`ids` should be int class ids below 2.*largest id 2"):
        names_from_ids("fine", [2], ["cat", "dog"])
