import json
import sys

import numpy as np
import pandas as pd
import pytest

from keras_mlcl.data import TableColumns
from keras_mlcl.data import load_table
from keras_mlcl.data import read_table
from keras_mlcl.data import subsample
from keras_mlcl.data import table_inputs
from keras_mlcl.data import train_test_split
from keras_mlcl.data import validation_split

pytestmark = pytest.mark.backend_independent

ROW = r"\(0-based, header not counted\)"


def products(num=8):
    """A tiny table: two numeric features, a text column, string ids, two string levels."""
    rows = np.arange(num)
    return pd.DataFrame(
        {
            "sku": [f"p{i}" for i in rows],
            "weight": rows * 0.5,
            "category": ["food" if i % 2 else "tools" for i in rows],
            "price": rows * 2 + 1,
            "product": [["apple", "hammer", "bread", "saw"][i % 4] for i in rows],
            "title": [f"item number {i}" for i in rows],
        }
    )


def write(frame, folder, suffix):
    path = str(folder / f"products{suffix}")
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def assert_products(data, frame):
    num = len(frame)
    np.testing.assert_array_equal(
        data.x, np.stack([frame["weight"], frame["price"]], axis=1).astype("float32")
    )
    assert data.x.dtype == np.float32
    assert data.levels == ["category", "product"]
    assert data.class_names == {
        "category": ["food", "tools"],
        "product": ["apple", "bread", "hammer", "saw"],
    }
    expected_category = [1 if i % 2 == 0 else 0 for i in range(num)]
    expected_product = [[0, 2, 1, 3][i % 4] for i in range(num)]
    assert data.labels["category"].tolist() == expected_category
    assert data.labels["product"].tolist() == expected_product
    assert data.ids.tolist() == frame["sku"].tolist()
    assert data.columns == TableColumns(
        labels=("category", "product"), features=("weight", "price"), id="sku"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_files_load_the_same_dataset(tmp_path, suffix):
    frame = products().drop(columns="title")
    data = load_table(write(frame, tmp_path, suffix), "category, product", id_column="sku")
    assert_products(data, frame)
    assert data.name == "products"


def test_dataframe_and_hugging_face_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    frame = products().drop(columns="title")
    options = {"label_columns": ["category", "product"], "id_column": "sku"}
    from_frame = load_table(frame, **options)
    assert_products(from_frame, frame)
    assert from_frame.name == "table"

    hf = datasets.Dataset.from_pandas(frame, preserve_index=False)
    assert_products(load_table(hf, **options, name="shop"), frame)
    hf.save_to_disk(str(tmp_path / "shop"))
    saved = load_table(tmp_path / "shop", **options)
    assert_products(saved, frame)
    assert saved.name == "shop"

    datasets.DatasetDict({"train": hf}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(ValueError, match=r"several splits \['train'\].*splits/train"):
        read_table(tmp_path / "splits")
    with pytest.raises(ValueError, match=r"`data` should be a `datasets.Dataset`"):
        read_table(datasets.DatasetDict({"train": hf}))


def test_text_column_default_features_and_int_labels(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("id,text,a,tag,b,level\n3,hello,1.5,x,2,1\n5,world,2.5,y,4,\n9,again,0,x,6,4\n")
    text = load_table(path, "level", text_column="text", id_column="id")
    assert text.x.tolist() == ["hello", "world", "again"]
    assert text.ids.tolist() == [3, 5, 9] and text.ids.dtype == np.int64
    assert text.labels["level"].tolist() == [1, -1, 4]  # integer labels stay class ids
    assert text.class_names is None
    assert text.columns.features == () and text.columns.text == "text"

    numeric = load_table(path, ["tag", "level"])  # every other numeric column, in table order
    assert numeric.columns.features == ("id", "a", "b")
    assert numeric.x[:, 1].tolist() == [1.5, 2.5, 0.0]
    chosen = load_table(path, "tag", feature_columns="b,a")
    np.testing.assert_array_equal(chosen.x, [[2, 1.5], [4, 2.5], [6, 0]])


def test_multi_label_column_becomes_multi_hot(tmp_path):
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0],
            "genre": ["drama", "drama", "comedy", "comedy"],
            "tags": ["b | a", "c", None, "a|c|a"],
        }
    )
    test = pd.DataFrame({"x": [5.0], "genre": ["horror"], "tags": ["d|a"]})
    data = load_table(frame, "genre,tags", label_separator="|", test_data=test)
    assert data.is_multi_hot("tags") and not data.is_multi_hot("genre")
    assert data.class_names["tags"] == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(
        data.labels["tags"], [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0]]
    )
    np.testing.assert_array_equal(data.test_labels["tags"], [[1, 0, 0, 1]])
    assert data.class_names["genre"] == ["comedy", "drama", "horror"]
    assert data.labels["genre"].tolist() == [1, 1, 0, 0]
    assert data.test_labels["genre"].tolist() == [2]
    single = load_table(frame.assign(tags=["a", "b", "a", "b"]), "tags", label_separator="|")
    assert not single.is_multi_hot("tags")


def test_test_data_shares_the_mapping(tmp_path):
    train = products()
    test = pd.DataFrame(
        {
            "sku": ["q1", "q2"],
            "weight": [9.0, 8.0],
            "category": ["toys", "food"],
            "price": [1, 2],
            "product": ["kite", "bread"],
            "title": ["a", "b"],
        }
    )
    path = write(test, tmp_path, ".parquet")
    data = load_table(train, "category,product", feature_columns=["weight"], test_data=path)
    assert data.class_names["category"] == ["food", "tools", "toys"]
    assert data.class_names["product"] == ["apple", "bread", "hammer", "kite", "saw"]
    assert data.test_labels["category"].tolist() == [2, 0]
    assert data.test_labels["product"].tolist() == [3, 1]
    assert data.labels["product"][:4].tolist() == [0, 2, 1, 4]
    assert data.x_test.tolist() == [[9.0], [8.0]]


def test_ids_follow_rows_through_the_splits():
    frame = products(20)
    data = load_table(frame, "category,product", feature_columns="price", id_column="sku")

    def check(x, ids):
        assert ids.tolist() == [f"p{(int(price) - 1) // 2}" for price in x[:, 0]]

    split = train_test_split(data, test_fraction=0.25, seed=0)
    check(split.x, split.ids)
    check(split.x_test, split.test_ids)
    small = subsample(split, 0.5, seed=0)
    check(small.x, small.ids)
    train, val = validation_split(split, fraction=0.25, seed=0)
    check(train.x, train.ids)
    check(val.x, val.ids)
    assert val.columns == data.columns


def test_table_inputs_and_columns_config(tmp_path):
    data = load_table(products(), "category,product", id_column="sku", feature_columns="price")
    config = json.loads(json.dumps(data.columns.get_config()))
    columns = TableColumns.from_config(config)
    assert columns == data.columns
    query = pd.DataFrame({"price": [3, 7], "sku": ["a", "b"]})
    x, ids = table_inputs(query, columns)
    assert x.tolist() == [[3.0], [7.0]] and ids.tolist() == ["a", "b"]
    x, ids = table_inputs(query.drop(columns="sku"), columns)
    assert ids is None
    text_columns = TableColumns(labels=("category",), text="title")
    x, _ = table_inputs(products(2), text_columns)
    assert x.tolist() == ["item number 0", "item number 1"]
    with pytest.raises(ValueError, match=r"has no feature column 'price'.*Its columns: \['sku'\]"):
        table_inputs(query[["sku"]], columns)


@pytest.mark.parametrize(
    "change, options, match",
    [
        (
            {},
            {"label_columns": "category,kind"},
            r"has no label column 'kind'\. Its columns: \['sku'",
        ),
        ({}, {"id_column": "code"}, "has no id column 'code'"),
        ({}, {"feature_columns": "weight,size"}, "has no feature column 'size'"),
        ({}, {"text_column": "body"}, "has no text column 'body'"),
        (
            {"weight": [0.5, "heavy", 1.0, 1.5]},
            {"feature_columns": "weight"},
            rf"feature column 'weight' should hold numbers.*'heavy' \(str\) on row 1 {ROW}",
        ),
        (
            {"price": [1.0, 2.0, np.nan, 4.0]},
            {"feature_columns": "price"},
            rf"feature column 'price' has an empty, NaN or infinite value on row 2 {ROW}",
        ),
        (
            {"category": ["food"] * 4},
            {},
            r"label column 'category' has one distinct value \('food'\): nothing to contrast",
        ),
        ({"product": [None, "", None, np.nan]}, {}, "label column 'product' has no labelled row"),
        (
            {"sku": ["a", "b", "c", "b"]},
            {},
            rf"id column 'sku' repeats the id 'b' on rows 1 and 3 {ROW}",
        ),
        (
            {"title": ["x", "y", 3, "z"]},
            {"text_column": "title"},
            rf"text column 'title' should hold strings.*3 \(int\) on row 2 {ROW}",
        ),
        (
            {"product": ["a", 2.5, "b", "a"]},
            {},
            rf"label column 'product' should hold strings or integers.*2.5 .* on row 1 {ROW}",
        ),
    ],
)
@pytest.mark.parametrize("suffix", [".jsonl", None])
def test_bad_tables_get_one_line(tmp_path, suffix, change, options, match):
    frame = products(4).assign(**change)  # JSON lines keep mixed types, like a DataFrame
    data = frame if suffix is None else write(frame, tmp_path, suffix)
    options = {"label_columns": "category,product", "id_column": "sku", **options}
    with pytest.raises(ValueError, match=match) as error:
        load_table(data, **options)
    message = str(error.value)
    assert "\n" not in message
    assert ("products.jsonl" if suffix else "`data` (a DataFrame)") in message


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("absent.csv", None, r"'.*absent.csv' is missing"),
        ("empty.csv", "", r"'.*empty.csv' is empty"),
        ("header.csv", "a,b\n", r"'.*header.csv' has no rows"),
        ("table.xlsx", "a,b\n1,2\n", r"should end in one of \.csv, \.parquet, \.jsonl"),
        ("broken.parquet", "not parquet", r"Cannot read the table file '.*broken.parquet'"),
        ("broken.jsonl", "{oops\n", r"Cannot read the table file '.*broken.jsonl'"),
    ],
)
def test_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=match) as error:
        load_table(path, "b")
    assert "\n" not in str(error.value)


def test_other_bad_arguments(tmp_path):
    frame = products(4)
    with pytest.raises(ValueError, match="`label_columns` should name at least one column"):
        load_table(frame, " , ")
    with pytest.raises(ValueError, match="either `feature_columns` or `text_column`"):
        load_table(frame, "category", feature_columns="price", text_column="title")
    with pytest.raises(ValueError, match=r"\['category'\] in several roles"):
        load_table(frame, "category", feature_columns="category,price")
    with pytest.raises(ValueError, match="no numeric feature column"):
        load_table(frame[["category", "product"]], "category")
    with pytest.raises(ValueError, match=r"`data` should be a path"):
        read_table(42)
    test = frame.drop(columns="price")
    with pytest.raises(
        ValueError, match=r"`test_data` \(a DataFrame\) has no feature column 'price'"
    ):
        load_table(frame, "category", feature_columns="price", test_data=test)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="not a Hugging Face dataset written by `save_to_disk`"):
        read_table(tmp_path / "folder")


def test_missing_packages_name_the_extra(tmp_path, monkeypatch):
    path = write(products(4), tmp_path, ".csv")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-mlcl\[tables\]'"):
        read_table(path)
    monkeypatch.undo()
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "state.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-mlcl\[hf\]'"):
        read_table(tmp_path / "saved")
