"""Your own tables as datasets: `.csv`, `.parquet`, `.jsonl`, Hugging Face datasets, DataFrames.

A table has one row per sample: label columns (one level each, coarse -> fine), the inputs as
numeric feature columns or one text column, and optionally a row id column. Files are read with
pandas (and pyarrow for Parquet), Hugging Face datasets with `datasets`; both are imported only
when a table is read. Every problem with a table is reported as a one-line `ValueError` naming
the file (or argument) and the column; rows are counted from 0, header not counted.
"""

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeAlias

import numpy as np

from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.labeled_dataset import first_repeat
from keras_mlcl.utils.class_names import is_missing_label

if TYPE_CHECKING:
    import pandas

TableData: TypeAlias = Any
"""A path (`.csv`, `.parquet`, `.jsonl`, or a `save_to_disk` folder), a `pandas.DataFrame` or a
`datasets.Dataset`."""

SUFFIXES = (".csv", ".parquet", ".jsonl")
_ROW = "(0-based, header not counted)"
_TABLES_EXTRA = "pip install 'keras-mlcl[tables]'"
_HF_EXTRA = "pip install 'keras-mlcl[hf]'"


@dataclasses.dataclass(frozen=True)
class TableColumns:
    """Which columns of a table hold the labels, the inputs and the row ids.

    Args:
        labels: the label columns, coarse -> fine; each is a level named as its column.
        features: the numeric feature columns (the inputs, as `float32`); empty when `text`
            is set.
        text: a text column, whose strings are then the inputs.
        id: a column of distinct row ids.
        label_separator: the separator of the labels in a multi-label column (e.g. `"|"`).

    Example:

    >>> columns = TableColumns(labels=("coarse", "fine"), features=("a", "b"))
    >>> TableColumns.from_config(columns.get_config()) == columns
    True
    """

    labels: tuple[str, ...]
    features: tuple[str, ...] = ()
    text: str | None = None
    id: str | None = None
    label_separator: str | None = None

    def __post_init__(self) -> None:
        for field in ("labels", "features"):
            value = getattr(self, field)
            if isinstance(value, str) or not all(isinstance(name, str) for name in value):
                raise ValueError(
                    f"`{field}` should be a sequence of column names. Received: `{field}`={value!r}"
                )
            object.__setattr__(self, field, tuple(value))
        if not self.labels:
            raise ValueError("`labels` should name at least one label column. Received: ()")

    def get_config(self) -> dict[str, Any]:
        """The columns as a JSON-able dict, the inverse of `from_config`."""
        config = dataclasses.asdict(self)
        config["labels"], config["features"] = list(self.labels), list(self.features)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TableColumns":
        """The `TableColumns` of a `get_config()` dict."""
        return cls(**config)


def is_table(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a table: a file ending in one of `SUFFIXES`, or a folder (a
    Hugging Face `save_to_disk` dataset).

    Example:

    >>> is_table("items.csv"), is_table("items.npz")
    (True, False)
    """
    path = os.fspath(path)
    return path.lower().endswith(SUFFIXES) or os.path.isdir(path)


def read_table(data: TableData) -> "pandas.DataFrame":
    """Reads a table into a `pandas.DataFrame`.

    Args:
        data: a path to a `.csv`, `.parquet` or `.jsonl` (JSON lines) file, or to a folder
            written by Hugging Face `datasets`' `save_to_disk`; a `pandas.DataFrame` (returned
            as is); or a `datasets.Dataset`.

    Returns:
        The table, with at least one row.

    Example:

    >>> with open("toy.csv", "w") as file:
    ...     _ = file.write("size,animal\\n1.5,cat\\n4.0,dog\\n")
    >>> read_table("toy.csv").shape
    (2, 2)
    """
    return _read(data, "data")[0]


def load_table(
    data: TableData,
    label_columns: str | Sequence[str],
    *,
    feature_columns: str | Sequence[str] | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    label_separator: str | None = None,
    test_data: TableData | None = None,
    name: str | None = None,
) -> LabeledDataset:
    """Loads a table as a `LabeledDataset`.

    Each label column is a level (coarse -> fine) of strings or integers. String labels become
    class ids with the sorted unique names (of the training and test tables together) as
    `class_names`; integer labels are class ids as they are. An empty cell is unlabelled (`-1`).
    When `label_separator` is given and some cell of a label column contains it, the column is
    multi-label: its level is multi-hot `(N, K)` over the sorted unique labels.

    The inputs `x` are the strings of `text_column`, or else the `feature_columns` as `float32`
    `(N, F)`; by default every numeric column that is not a label, id or text column, in table
    order.

    Args:
        data: the training table: a path (`.csv`, `.parquet`, `.jsonl`, or a folder written
            by `datasets`' `save_to_disk`), a `pandas.DataFrame` or a `datasets.Dataset`.
        label_columns: the label columns, coarse -> fine: a sequence of names or one
            comma-separated string such as `"coarse,fine"`.
        feature_columns: the numeric input columns (a sequence or a comma-separated string).
            Defaults to every numeric column that is not a label, id or text column.
        text_column: a column of strings to use as the inputs instead of features.
        id_column: a column of distinct row ids, kept in `ids` / `test_ids`.
        label_separator: the separator of multi-label cells, e.g. `"|"`.
        test_data: an optional test table with the same columns.
        name: the dataset name. Defaults to the file's stem (`"table"` for in-memory data).

    Returns:
        A `LabeledDataset` whose `columns` holds the resolved `TableColumns`.

    Example:

    >>> with open("pets.csv", "w") as file:
    ...     _ = file.write("size,weight,kind,breed\\n1,2,cat,siamese\\n9,8,dog,pug\\n2,3,cat,\\n")
    >>> pets = load_table("pets.csv", "kind,breed")
    >>> pets.labels["breed"].tolist(), pets.class_names["breed"], pets.x.shape
    ([1, 0, -1], ['pug', 'siamese'], (3, 2))
    """
    if not _column_names("label_columns", label_columns):
        raise ValueError(
            f"`label_columns` should name at least one column. Received: {label_columns!r}"
        )
    frame, source = _read(data, "data")
    columns = _resolve_columns(
        frame,
        source,
        TableColumns(
            labels=_column_names("label_columns", label_columns),
            features=_column_names("feature_columns", feature_columns or ()),
            text=text_column,
            id=id_column,
            label_separator=label_separator,
        ),
        default_features=feature_columns is None,
    )
    tables = {"labels": (frame, source)}
    if test_data is not None:
        tables["test_labels"] = _read(test_data, "test_data")
        _require(*tables["test_labels"], columns)
    labels: dict[str, dict[str, Any]] = {split: {} for split in tables}
    class_names = {}
    for level in columns.labels:
        values = {split: _label_values(*table, level) for split, table in tables.items()}
        _check_training_labels(source, level, values["labels"], columns.label_separator)
        multi_hot = _multi_hot(values, columns.label_separator)
        if multi_hot is not None:
            encoded, class_names[level] = multi_hot
        else:
            encoded = _class_labels(values)
        for split, split_values in encoded.items():
            labels[split][level] = split_values
    inputs = {split: _inputs(*table, columns) for split, table in tables.items()}
    return LabeledDataset(
        x=inputs["labels"][0],
        labels=labels["labels"],
        x_test=inputs["test_labels"][0] if test_data is not None else None,
        test_labels=labels.get("test_labels"),
        name=name or _stem(data),
        class_names=class_names or None,
        ids=inputs["labels"][1],
        test_ids=inputs["test_labels"][1] if test_data is not None else None,
        columns=columns,
    )


def table_inputs(data: TableData, columns: TableColumns) -> tuple[np.ndarray, np.ndarray | None]:
    """A table's inputs, and its row ids when it has the id column, e.g. for a search query.

    Only the feature (or text) columns of `columns` are needed; its label and id columns may be
    present or absent.

    Args:
        data: the table (see `read_table`).
        columns: the `TableColumns` of the training table (e.g. `dataset.columns`).

    Returns:
        `(x, ids)`: the inputs, `float32` `(N, F)` or strings `(N,)`, and the ids `(N,)` or
        `None`.

    Example:

    >>> import pandas
    >>> query = pandas.DataFrame({"size": [3.0], "weight": [1.0]})
    >>> x, ids = table_inputs(query, TableColumns(labels=("kind",), features=("size", "weight")))
    >>> x, ids
    (array([[3., 1.]], dtype=float32), None)
    """
    if not columns.features and columns.text is None:
        raise ValueError(
            f"`columns` should name feature columns or a text column. Received: `columns`={columns}"
        )
    return _inputs(*_read(data, "data"), columns)


def _inputs(frame: Any, source: str, columns: TableColumns) -> tuple[np.ndarray, np.ndarray | None]:
    """`(x, ids)` of a table read by `_read` (see `table_inputs`)."""
    _require(frame, source, columns, inputs_only=True)
    if columns.text is not None:
        x = _text(frame, source, columns.text)
    else:
        x = np.stack([_feature(frame, source, column) for column in columns.features], axis=1)
    if columns.id is None or columns.id not in frame.columns:
        return x, None
    return x, _ids(frame, source, columns.id)


def _import_pandas() -> Any:
    try:
        import pandas
    except ImportError as error:
        raise ImportError(f"Reading tables needs pandas: {_TABLES_EXTRA} ({error})") from None
    return pandas


def _read(data: TableData, argument: str) -> tuple[Any, str]:
    """`(frame, source)`: the table of `data`, with at least one row, and how to name it."""
    pandas = _import_pandas()
    if isinstance(data, pandas.DataFrame):
        frame, source = data, f"`{argument}` (a DataFrame)"
    elif type(data).__module__.split(".")[0] == "datasets":
        if not hasattr(data, "to_pandas"):
            raise ValueError(
                f"`{argument}` should be a `datasets.Dataset` (one split). Received: a "
                f"{type(data).__name__}"
                + (f" with splits {list(data)}" if isinstance(data, dict) else "")
            )
        frame, source = data.to_pandas(), f"`{argument}` (a Hugging Face Dataset)"
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        frame, source = _read_path(pandas, path), repr(path)
    else:
        raise ValueError(
            f"`{argument}` should be a path ({', '.join(SUFFIXES)}, or a `save_to_disk` folder), "
            f"a pandas DataFrame or a datasets.Dataset. Received: {type(data).__name__}"
        )
    if not len(frame):
        raise ValueError(f"The table {source} has no rows (columns: {_some_columns(frame)}).")
    return frame, source


def _read_path(pandas: Any, path: str) -> Any:
    if os.path.isdir(path):
        return _read_saved_dataset(path)
    if not os.path.exists(path):
        raise ValueError(f"The table file {path!r} is missing (no such file or folder).")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"The table file {path!r} should end in one of {', '.join(SUFFIXES)} (or be a folder "
            f"written by `datasets`' save_to_disk). Received suffix {suffix or 'none'!r}"
        )
    if os.path.getsize(path) == 0:
        raise ValueError(f"The table file {path!r} is empty.")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as error:
            raise ImportError(f"Reading Parquet needs pyarrow: {_TABLES_EXTRA} ({error})") from None
    readers = {
        ".csv": pandas.read_csv,
        ".parquet": pandas.read_parquet,
        ".jsonl": lambda file: pandas.read_json(file, lines=True),
    }
    try:
        return readers[suffix](path)
    except (ValueError, OSError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"Cannot read the table file {path!r}: {reason}") from None


def _read_saved_dataset(path: str) -> Any:
    """The table of a folder written by `datasets.Dataset.save_to_disk`."""
    if os.path.isfile(os.path.join(path, "dataset_dict.json")):
        splits = sorted(
            name for name in os.listdir(path) if os.path.isdir(os.path.join(path, name))
        )
        raise ValueError(
            f"The folder {path!r} holds several splits {splits}: pass one split's folder, "
            f"e.g. {os.path.join(path, splits[0] if splits else 'train')!r}."
        )
    if not os.path.isfile(os.path.join(path, "state.json")):
        raise ValueError(
            f"The folder {path!r} is not a Hugging Face dataset written by `save_to_disk` "
            f"(no state.json). Tables are {', '.join(SUFFIXES)} files or such folders."
        )
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"Reading Hugging Face datasets needs `datasets`: {_HF_EXTRA} ({error})"
        ) from None
    return datasets.load_from_disk(path).to_pandas()


def _stem(data: TableData) -> str:
    if isinstance(data, (str, os.PathLike)):
        return os.path.splitext(os.path.basename(os.path.normpath(os.fspath(data))))[0]
    return "table"


def _some_columns(frame: Any, shown: int = 12) -> str:
    """A table's column names for an error message: all of them, or the first `shown` and
    how many more (a table of 784 pixel columns stays one readable line)."""
    names = [str(name) for name in frame.columns]
    if len(names) <= shown:
        return str(names)
    return f"{names[:shown]} and {len(names) - shown} more"


def _column_names(argument: str, value: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    if not all(isinstance(name, str) for name in value):
        raise ValueError(
            f"`{argument}` should be column names (a sequence or a comma-separated string). "
            f"Received: `{argument}`={value!r}"
        )
    return tuple(value)


def _require(frame: Any, source: str, columns: TableColumns, inputs_only: bool = False) -> None:
    """Checks that the table has the columns of `columns` (or only its input columns), naming
    the role of the first one missing."""
    roles = [("feature", name) for name in columns.features]
    roles += [("text", columns.text)] if columns.text else []
    if not inputs_only:
        roles = [("label", name) for name in columns.labels] + roles
        roles += [("id", columns.id)] if columns.id else []
    missing = [(role, name) for role, name in roles if name not in frame.columns]
    if missing:
        role, name = missing[0]
        more = f" (nor {[name for _, name in missing[1:]]})" if len(missing) > 1 else ""
        raise ValueError(
            f"The table {source} has no {role} column {name!r}{more}. Its columns: "
            f"{_some_columns(frame)}"
        )


def _resolve_columns(
    frame: Any, source: str, columns: TableColumns, default_features: bool
) -> TableColumns:
    """`columns` checked against the table, with the default feature columns filled in."""
    pandas = _import_pandas()
    if columns.text is not None and columns.features:
        raise ValueError(
            "Give either `feature_columns` or `text_column`, not both. Received: "
            f"`feature_columns`={list(columns.features)}, `text_column`={columns.text!r}"
        )
    roles = [*columns.labels, *columns.features, columns.text, columns.id]
    named = [name for name in roles if name is not None]
    repeated = sorted({name for name in named if named.count(name) > 1})
    if repeated:
        raise ValueError(
            f"Each column should have one role (label, feature, text or id). Received: "
            f"{repeated} in several roles"
        )
    _require(frame, source, columns)
    features = columns.features
    if columns.text is None and default_features:
        features = tuple(
            str(name)
            for name in frame.columns
            if name not in named and pandas.api.types.is_numeric_dtype(frame[name])
        )
        if not features:
            raise ValueError(
                f"The table {source} has no numeric feature column besides the label, id and "
                f"text columns: give `feature_columns` or `text_column`. Its columns: "
                f"{_some_columns(frame)}"
            )
    elif columns.text is None and not features:
        raise ValueError("`feature_columns` should name at least one column. Received: ()")
    return dataclasses.replace(columns, features=features)


def _feature(frame: Any, source: str, column: str) -> np.ndarray:
    """One feature column as `float32`, checked: numbers only, no NaN, Inf or empty cell."""
    pandas = _import_pandas()
    series = frame[column]
    if pandas.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        numbers = _numbers(source, column, series.tolist(), pandas)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        raise ValueError(
            f"The table {source}: feature column {column!r} has an empty, NaN or infinite "
            f"value on row {bad[0]} {_ROW}"
            + (f" (and {bad.size - 1} more rows)" if bad.size > 1 else "")
        )
    return numbers.astype("float32")


def _numbers(source: str, column: str, values: list[Any], pandas: Any) -> np.ndarray:
    """The cells of a non-numeric feature column as numbers (NaN where empty); the first cell
    that is not a number is a one-line `ValueError`."""
    numbers = np.empty(len(values), dtype="float64")
    for row, value in enumerate(values):
        if is_missing_label(value) or value is pandas.NA:
            numbers[row] = np.nan
            continue
        try:
            numbers[row] = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"The table {source}: feature column {column!r} should hold numbers. Received: "
                f"{value!r} ({type(value).__name__}) on row {row} {_ROW}"
            ) from None
    return numbers


def _text(frame: Any, source: str, column: str) -> np.ndarray:
    values = frame[column].tolist()
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(
                f"The table {source}: text column {column!r} should hold strings. Received: "
                f"{value!r} ({type(value).__name__}) on row {row} {_ROW}"
            )
    return np.asarray(values, dtype=str)


def _ids(frame: Any, source: str, column: str) -> np.ndarray:
    """The id column as `int64` (integer ids) or strings, checked: none missing, no repeat."""
    pandas = _import_pandas()
    values = frame[column].tolist()
    for row, value in enumerate(values):
        if is_missing_label(value) or value is pandas.NA:
            raise ValueError(
                f"The table {source}: id column {column!r} is empty on row {row} {_ROW}"
            )
    integers = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    ids = np.asarray(values, dtype="int64") if integers else np.asarray([str(v) for v in values])
    repeat = first_repeat(ids)
    if repeat is not None:
        value, row, later = repeat
        raise ValueError(
            f"The table {source}: id column {column!r} repeats the id {value!r} on "
            f"rows {row} and {later} {_ROW}"
        )
    return ids


def _label_values(frame: Any, source: str, column: str) -> list[Any]:
    """A label column's cells: `None` when empty, else a string or an integer."""
    pandas = _import_pandas()
    cells: list[Any] = []
    for row, value in enumerate(frame[column].tolist()):
        if is_missing_label(value) or value is pandas.NA:
            cells.append(None)
        elif isinstance(value, bytes):
            cells.append(value.decode())
        elif isinstance(value, (str, int, np.integer)) and not isinstance(value, bool):
            cells.append(value if isinstance(value, str) else int(value))
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            cells.append(int(value))
        else:
            raise ValueError(
                f"The table {source}: label column {column!r} should hold strings or integers. "
                f"Received: {value!r} ({type(value).__name__}) on row {row} {_ROW}"
            )
    return cells


def _tokens(cell: Any, separator: str | None) -> list[str]:
    """The labels of one multi-label cell."""
    if cell is None:
        return []
    if separator is None:
        return [str(cell)]
    return [token.strip() for token in str(cell).split(separator) if token.strip()]


def _check_training_labels(
    source: str, column: str, cells: list[Any], separator: str | None
) -> None:
    distinct = {token for cell in cells for token in _tokens(cell, separator)}
    if not distinct:
        raise ValueError(f"The table {source}: label column {column!r} has no labelled row.")
    if len(distinct) == 1:
        raise ValueError(
            f"The table {source}: label column {column!r} has one distinct value "
            f"({distinct.pop()!r}): nothing to contrast."
        )


def _multi_hot(
    cells: dict[str, list[Any]], separator: str | None
) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """The multi-hot labels of each split and their names, or `None` for a single-label column."""
    if separator is None or not any(
        isinstance(cell, str) and separator in cell for split in cells.values() for cell in split
    ):
        return None
    tokens = {
        split: [_tokens(cell, separator) for cell in split_cells]
        for split, split_cells in cells.items()
    }
    names = sorted({token for rows in tokens.values() for row in rows for token in row})
    column = {name: index for index, name in enumerate(names)}
    encoded = {}
    for split, rows in tokens.items():
        matrix = np.zeros((len(rows), len(names)), dtype="int32")
        for row, row_tokens in enumerate(rows):
            matrix[row, [column[token] for token in row_tokens]] = 1
        encoded[split] = matrix
    return encoded, names


def _class_labels(cells: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """Integer cells as class ids (`-1` when empty); else every cell as a class name."""
    if any(isinstance(cell, str) for split in cells.values() for cell in split):
        return {
            split: np.asarray([None if cell is None else str(cell) for cell in split_cells], object)
            for split, split_cells in cells.items()
        }
    return {
        split: np.asarray([-1 if cell is None else cell for cell in split_cells], dtype="int64")
        for split, split_cells in cells.items()
    }
