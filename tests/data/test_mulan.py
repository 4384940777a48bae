import math
import os

import numpy as np
import pytest

from keras_mlcl.data import load_dataset
from keras_mlcl.data import load_mulan
from keras_mlcl.data import load_mulan_medical_icd
from keras_mlcl.data import parse_arff
from keras_mlcl.data.mulan import icd9_category

pytestmark = pytest.mark.backend_independent


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


@pytest.mark.parametrize(
    "label_name, category",
    [
        ("Class-1-079_99", "079"),
        ("Class-16-462", "462"),
        ("Class-12-V13_09", "V13"),
        ("Class-4-753_0", "753"),
        ("Class-7-E849_0", "E849"),
    ],
)
def test_icd9_category(label_name, category):
    assert icd9_category(label_name) == category


@pytest.mark.parametrize(
    "label_name", ["079_99", "Class-1-", "Class-x-079_99", "Class-1-79_9", "Class-1-079.99", 7]
)
def test_icd9_category_rejects_other_names(label_name):
    with pytest.raises(ValueError, match=r"`label_name` should be a MULAN medical label"):
        icd9_category(label_name)


def _write_tiny_medical(folder, codes, train_rows, test_rows):
    folder.mkdir()
    header = "@relation medical\n@attribute word numeric\n"
    header += "".join(f"@attribute {code} {{0,1}}\n" for code in codes) + "@data\n"
    (folder / "medical-train.arff").write_text(header + "".join(train_rows))
    (folder / "medical-test.arff").write_text(header + "".join(test_rows))
    labels = "".join(f'<label name="{code}"></label>' for code in codes)
    (folder / "medical.xml").write_text(
        '<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">'
        f"{labels}</labels>"
    )


def test_load_mulan_medical_icd_from_tiny_files(tmp_path):
    # Categories in text order: 079 (codes 0, 3), 462 (code 2), V13 (code 1).
    codes = ["Class-0-079_99", "Class-1-V13_09", "Class-2-462", "Class-3-079_0"]
    train_rows = ["1,1,0,0,0\n", "2,0,1,0,1\n", "3,1,0,0,1\n", "{0 4}\n", "5,0,1,1,0\n"]
    test_rows = ["{0 6,3 1}\n", "7,0,0,0,1\n"]
    _write_tiny_medical(tmp_path / "medical", codes, train_rows, test_rows)
    data = load_mulan_medical_icd(tmp_path / "medical")
    assert data.name == "mulan_medical_icd" and data.levels == ["category", "code"]
    assert data.class_names == {"category": ["079", "462", "V13"], "code": codes}
    np.testing.assert_array_equal(data.x, [[1], [2], [3], [4], [5]])
    expected_codes = [[1, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0]]
    np.testing.assert_array_equal(data.labels["code"], expected_codes)
    # Row 2 holds 079.0 and V13.09, row 5 V13.09 and 462: each category once.
    expected_categories = [[1, 0, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 1, 1]]
    np.testing.assert_array_equal(data.labels["category"], expected_categories)
    np.testing.assert_array_equal(data.x_test, [[6], [7]])
    np.testing.assert_array_equal(data.test_labels["code"], [[0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(data.test_labels["category"], [[0, 1, 0], [1, 0, 0]])
    for labels in (data.labels, data.test_labels):
        assert all(level.dtype == np.int32 for level in labels.values())
    # The parent folder works too, and so does the registered name with `data_dir`.
    np.testing.assert_array_equal(
        load_mulan_medical_icd(tmp_path).labels["category"], expected_categories
    )
    (tmp_path / "mulan").mkdir()
    (tmp_path / "medical").rename(tmp_path / "mulan" / "medical")
    registered = load_dataset("mulan_medical_icd", data_dir=tmp_path)
    np.testing.assert_array_equal(registered.test_labels["category"], [[0, 1, 0], [1, 0, 0]])


def test_load_mulan_medical_icd_rejects_a_label_that_is_not_a_code(tmp_path):
    _write_tiny_medical(tmp_path / "medical", ["Class-0-079_99", "Sad"], ["1,1,0\n"], ["2,0,1\n"])
    with pytest.raises(ValueError, match=r"Received: `label_name`='Sad'"):
        load_mulan_medical_icd(tmp_path)


def test_load_mulan_medical_icd_without_a_data_folder_says_how_to_give_one(no_data_dir):
    with pytest.raises(FileNotFoundError, match=r"'mulan_medical_icd' .*DIR/mulan/medical"):
        load_mulan_medical_icd()
    with pytest.raises(FileNotFoundError, match=r"'mulan_medical_icd' .*DIR/mulan/medical"):
        load_dataset("mulan_medical_icd")


def test_real_mulan_medical_icd(shared_data):
    folder = os.path.join(shared_data, "mulan", "medical")
    if not os.path.isfile(os.path.join(folder, "medical-train.arff")):
        pytest.skip(f"MULAN medical is not in {shared_data}")
    data = load_mulan_medical_icd(folder)
    codes = data.class_names["code"]
    categories = data.class_names["category"]
    assert len(codes) == 45 and codes == load_mulan("medical", folder).class_names["labels"]
    # 30 categories: 786, 593 and 753 hold 6, 4 and 3 codes; 5 hold 2 (596, 599, 788, 789,
    # V13); 22 hold 1.
    assert len(categories) == 30 and categories == sorted(categories)
    assert categories[:3] == ["079", "277", "279"]
    assert categories[-4:] == ["V13", "V42", "V67", "V72"]
    # Each category's codes, counted from the names independently of the loader.
    codes_of = {
        category: [
            k for k, name in enumerate(codes) if name.split("-")[2].split("_")[0] == category
        ]
        for category in categories
    }
    assert sorted(len(members) for members in codes_of.values()) == [1] * 22 + [2] * 5 + [3, 4, 6]
    for x, labels in ((data.x, data.labels), (data.x_test, data.test_labels)):
        assert labels["category"].shape == (len(x), 30) and labels["code"].shape == (len(x), 45)
        any_of_codes = np.stack(
            [labels["code"][:, codes_of[category]].max(axis=1) for category in categories], 1
        )
        np.testing.assert_array_equal(labels["category"], any_of_codes)
    registered = load_dataset("mulan_medical_icd", data_dir=shared_data)
    assert registered.name == "mulan_medical_icd" and registered.levels == ["category", "code"]
    np.testing.assert_array_equal(registered.test_labels["category"], data.test_labels["category"])
