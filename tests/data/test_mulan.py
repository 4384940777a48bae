import math
import os

import numpy as np
import pytest

from keras_mlcl.data import load_dataset
from keras_mlcl.data import load_mulan
from keras_mlcl.data import parse_arff


def test_parse_dense_arff():
    text = """% a comment
@RELATION toy
@attribute f1 numeric
@attribute 'feature two' REAL
@attribute colour {red,green,blue}
@attribute lab {0,1}

@DATA
1.5,-2,green,1
% another comment
0,3e-1,blue,0
?, 4 ,'red',1
"""
    names, values = parse_arff(text)
    assert names == ["f1", "feature two", "colour", "lab"]
    np.testing.assert_array_equal(values[:2], [[1.5, -2.0, 1.0, 1.0], [0.0, 0.3, 2.0, 0.0]])
    assert math.isnan(values[2, 0])
    np.testing.assert_array_equal(values[2, 1:], [4.0, 0.0, 1.0])


def test_parse_sparse_arff():
    text = """@relation 'sparse toy'
@attribute - {0,1}
@attribute 0; {0,1}
@attribute w numeric
@attribute size {small,large}
@attribute y1 {0,1}
@attribute y2 {0,1}
@data
{0 1,2 2.5,5 1}
{}
{1 1, 3 large, 4 1}
"""
    names, values = parse_arff(text)
    assert names == ["-", "0;", "w", "size", "y1", "y2"]
    # Omitted entries are 0 (for a non-numeric nominal, its first value, index 0).
    np.testing.assert_array_equal(
        values,
        [
            [1, 0, 2.5, 0, 0, 1],
            [0, 0, 0, 0, 0, 0],
            [0, 1, 0, 1, 1, 0],
        ],
    )


def test_parse_arff_sparse_nominal_default_is_its_first_value():
    text = "@relation r\n@attribute a {1,0}\n@attribute b numeric\n@data\n{1 7}\n"
    names, values = parse_arff(text)
    np.testing.assert_array_equal(values, [[1.0, 7.0]])


def test_parse_arff_sparse_equals_dense():
    header = "@relation r\n@attribute a numeric\n@attribute b {x,y}\n@attribute c {0,1}\n@data\n"
    dense = parse_arff(header + "0,x,1\n2.5,y,0\n0,x,0\n")
    sparse = parse_arff(header + "{2 1}\n{0 2.5, 1 y}\n{}\n")
    assert dense[0] == sparse[0] == ["a", "b", "c"]
    np.testing.assert_array_equal(dense[1], [[0, 0, 1], [2.5, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(sparse[1], dense[1])


@pytest.mark.parametrize(
    "text, match",
    [
        ("@attribute a numeric\n@data\n1,2\n", "Bad @DATA instance format in line 4"),
        ("@attribute a numeric\n@data\n{3 1}\n", "Bad @DATA instance format in line 4"),
        ("@attribute a {x,y}\n@data\nz\n", "z not found in nominal declaration"),
        ("@attribute a string\n@data\nhello\n", "only numeric and nominal"),
        ("@attribute a numeric\n1\n", "Invalid layout of the ARFF file, at line 3"),
        ("@attribute a numeric\n@data\n{0 1\n", "Invalid layout"),
    ],
)
def test_parse_arff_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_arff("@relation r\n" + text)


def test_load_mulan_names_the_file_that_does_not_parse(tmp_path):
    for suffix in ("-train.arff", "-test.arff"):
        (tmp_path / f"toy{suffix}").write_text("@relation t\n@attribute a numeric\n@data\n1,2\n")
    (tmp_path / "toy.xml").write_text('<labels><label name="a"></label></labels>')
    with pytest.raises(ValueError, match=r"toy-train\.arff.*Bad @DATA instance"):
        load_mulan("toy", tmp_path)


def test_load_mulan_from_tiny_files(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    header = "@relation t\n@attribute a numeric\n@attribute b numeric\n"
    header += "@attribute Happy {0,1}\n@attribute Sad {0,1}\n@data\n"
    (folder / "toy-train.arff").write_text(header + "1,2,1,0\n3,4,1,1\n5,6,0,0\n")
    (folder / "toy-test.arff").write_text(header + "{0 7,3 1}\n")
    (folder / "toy.xml").write_text(
        '<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">'
        '<label name="Happy"></label><label name="Sad"></label></labels>'
    )
    data = load_mulan("toy", folder)
    assert data.name == "mulan_toy" and data.levels == ["labels"]
    np.testing.assert_array_equal(data.x, [[1, 2], [3, 4], [5, 6]])
    assert data.x.dtype == np.float32 and data.labels["labels"].dtype == np.int32
    np.testing.assert_array_equal(data.labels["labels"], [[1, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(data.x_test, [[7, 0]])
    np.testing.assert_array_equal(data.test_labels["labels"], [[0, 1]])
    assert data.class_names == {"labels": ["Happy", "Sad"]}
    # The parent folder (holding `toy/`) works too.
    np.testing.assert_array_equal(load_mulan("toy", tmp_path).x, data.x)
    with pytest.raises(FileNotFoundError, match="'nothing'"):
        load_mulan("nothing", tmp_path)
    with pytest.raises(ValueError, match="`name` should be"):
        load_mulan("", tmp_path)


def test_load_mulan_without_a_data_folder_says_how_to_give_one(no_data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pass --data-dir DIR .*KERAS_MLCL_DATA"):
        load_mulan("scene")
    with pytest.raises(FileNotFoundError, match=r"dataset 'mulan_scene' .*DIR/mulan/scene"):
        load_dataset("mulan_scene")
    with pytest.raises(FileNotFoundError, match="not found in"):
        load_dataset("mulan_scene", data_dir=tmp_path)


REAL = [
    # name, train rows, test rows, features, labels, first label, last label
    ("emotions", 391, 202, 72, 6, "amazed-suprised", "angry-aggresive"),
    ("scene", 1211, 1196, 294, 6, "Beach", "Urban"),
    # The MULAN medical files hold 333 training and 645 test rows (its -train file is the
    # "RemovePercentage -P66" third of the 978 documents).
    ("medical", 333, 645, 1449, 45, "Class-0-593_70", "Class-44-786_07"),
]


@pytest.mark.parametrize("name, n_train, n_test, n_features, n_labels, first, last", REAL)
def test_real_mulan(shared_data, name, n_train, n_test, n_features, n_labels, first, last):
    folder = os.path.join(shared_data, "mulan", name)
    if not os.path.isfile(os.path.join(folder, f"{name}-train.arff")):
        pytest.skip(f"MULAN {name} is not in {shared_data}")
    data = load_mulan(name, folder)
    assert data.x.shape == (n_train, n_features) and data.x.dtype == np.float32
    assert data.x_test.shape == (n_test, n_features)
    assert data.labels["labels"].shape == (n_train, n_labels)
    assert data.test_labels["labels"].shape == (n_test, n_labels)
    assert data.class_names["labels"][0] == first and data.class_names["labels"][-1] == last
    assert np.all(np.isfinite(data.x)) and np.all(np.isfinite(data.x_test))
    for labels in (data.labels["labels"], data.test_labels["labels"]):
        assert set(np.unique(labels).tolist()) == {0, 1}
    # Independent check of the first training row and the labels: the label columns are the
    # last n_labels attributes of the ARFF file.
    with open(os.path.join(folder, f"{name}-train.arff"), encoding="utf-8") as file:
        lines = file.read().splitlines()
    n_attributes = sum(line.lower().startswith("@attribute") for line in lines)
    assert n_attributes == n_features + n_labels
    first_row = lines[[line.lower().strip() for line in lines].index("@data") + 1].strip()
    expected = np.zeros(n_attributes)
    if first_row.startswith("{"):
        for item in first_row[1:-1].split(","):
            index, value = item.split()
            expected[int(index)] = float(value)
    else:
        expected = np.array([float(v) for v in first_row.split(",")])
    np.testing.assert_allclose(data.x[0], expected[:n_features].astype("float32"))
    np.testing.assert_array_equal(data.labels["labels"][0], expected[n_features:])


def test_load_dataset_mulan_names(shared_data):
    if not os.path.isdir(os.path.join(shared_data, "mulan", "emotions")):
        pytest.skip(f"MULAN is not in {shared_data}")
    data = load_dataset("mulan_emotions", data_dir=shared_data)
    assert data.name == "mulan_emotions" and data.x.shape == (391, 72)
    # The same through KERAS_MLCL_DATA (set by the fixture), without `data_dir`.
    np.testing.assert_array_equal(load_dataset("mulan_emotions").x, data.x)
