"""MULAN multi-label datasets (emotions, scene, medical, ...) from their ARFF and XML files.

Includes a small ARFF reader for dense rows and sparse rows (`{index value, ...}`), which
`scipy.io.arff` cannot read.
"""

import csv
import math
import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from keras_mlcl.data.datasets import LabeledDataset
from keras_mlcl.data.datasets import default_data_dirs

_NUMERIC_TYPES = ("numeric", "real", "integer")


def _split_name(rest):
    """Splits `name type` of an `@attribute` line; the name may be quoted."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = 1
        while end < len(rest):
            if rest[end] == "\\":
                end += 2
                continue
            if rest[end] == quote:
                break
            end += 1
        if end >= len(rest):
            raise ValueError(f"Unclosed quote in ARFF attribute declaration: {rest!r}")
        name = rest[1:end].replace("\\" + quote, quote)
        return name, rest[end + 1 :].strip()
    parts = rest.split(None, 1)
    if len(parts) != 2:
        raise ValueError(f"An ARFF attribute should have a name and a type. Received: {rest!r}")
    return parts[0], parts[1].strip()


def _unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
        return value[1:-1]
    return value


def _converter(name, kind):
    """How to read one attribute's values.

    Returns:
        A tuple `(convert, zero)`: a function mapping one ARFF value (a string) to a float,
        and the value an omitted entry of a sparse row takes (0, or for a nominal attribute
        its first declared value).
    """
    lowered = kind.lower()
    if lowered in _NUMERIC_TYPES:
        return float, 0.0
    if kind.startswith("{") and kind.endswith("}"):
        values = [_unquote(v) for v in next(csv.reader([kind[1:-1]], quotechar="'"), [])]
        if not values:
            raise ValueError(f"ARFF nominal attribute {name!r} declares no values: {kind!r}")
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            numbers = None
        if numbers is not None:
            table = dict(zip(values, numbers, strict=True))
        else:
            table = {value: float(index) for index, value in enumerate(values)}

        def convert(value):
            if value not in table:
                raise ValueError(
                    f"ARFF value {value!r} is not one of attribute {name!r}'s values {values}"
                )
            return table[value]

        return convert, table[values[0]]
    raise ValueError(
        f"ARFF attribute {name!r} has type {kind!r}; only numeric and nominal attributes are "
        "supported."
    )


def _convert(converters, index, value):
    value = _unquote(value)
    if value == "?":
        return math.nan
    return converters[index](value)


def parse_arff(text):
    """Parses ARFF text with numeric and nominal attributes, dense or sparse rows.

    Dense rows list every value, comma-separated. Sparse rows `{index value, ...}` list the
    non-zero values by 0-based attribute index; omitted attributes take the value 0 (for a
    nominal attribute, its first declared value, as in Weka). Nominal values that are numbers
    (e.g. `{0,1}`) keep their number; others become the value's index. `?` is read as NaN.

    Args:
        text: the content of an `.arff` file.

    Returns:
        A tuple `(names, values)`: the attribute names in order, and a float64 array of shape
        `(num_rows, num_attributes)`.

    Example:

    >>> names, values = parse_arff("@relation r\\n@attribute a numeric\\n@attribute b {0,1}\\n"
    ...                            "@data\\n0.5,1\\n{1 1}\\n")
    >>> names, values.tolist()
    (['a', 'b'], [[0.5, 1.0], [0.0, 1.0]])
    """
    names = []
    converters = []
    defaults = []
    rows = []
    in_data = False
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            parts = line.split(None, 1)
            keyword = parts[0].lower()
            rest = parts[1] if len(parts) == 2 else ""
            if keyword == "@relation":
                continue
            if keyword == "@attribute":
                name, kind = _split_name(rest)
                convert, zero = _converter(name, kind)
                names.append(name)
                converters.append(convert)
                defaults.append(zero)
                continue
            if keyword == "@data":
                if not names:
                    raise ValueError("ARFF text has `@data` before any `@attribute`.")
                in_data = True
                continue
            raise ValueError(f"Unexpected ARFF header line {line_number}: {raw_line!r}")
        if line.startswith("{"):
            if not line.endswith("}"):
                raise ValueError(f"Unclosed sparse ARFF row at line {line_number}: {raw_line!r}")
            row = list(defaults)
            body = line[1:-1].strip()
            for item in body.split(",") if body else []:
                parts = item.strip().split(None, 1)
                if len(parts) != 2:
                    raise ValueError(
                        f"A sparse ARFF entry should be `index value`. Line {line_number}: {item!r}"
                    )
                index = int(parts[0])
                if not 0 <= index < len(names):
                    raise ValueError(
                        f"Sparse ARFF index {index} at line {line_number} is out of range "
                        f"(there are {len(names)} attributes)."
                    )
                row[index] = _convert(converters, index, parts[1])
        else:
            values = (
                line.split(",")
                if "'" not in line and '"' not in line
                else next(csv.reader([line], quotechar="'", skipinitialspace=True))
            )
            if len(values) != len(names):
                raise ValueError(
                    f"ARFF row at line {line_number} has {len(values)} values; expected "
                    f"{len(names)} (one per attribute)."
                )
            row = [_convert(converters, i, value) for i, value in enumerate(values)]
        rows.append(row)
    if not in_data:
        raise ValueError("ARFF text has no `@data` section.")
    return names, np.asarray(rows, dtype="float64").reshape(len(rows), len(names))


def read_label_names(path):
    """The label names of a MULAN `<name>.xml` file, in document order."""
    root = ElementTree.parse(path).getroot()
    names = [
        element.get("name")
        for element in root.iter()
        if element.tag.rsplit("}", 1)[-1] == "label" and element.get("name") is not None
    ]
    if not names:
        raise ValueError(f"The MULAN label file {os.fspath(path)!r} names no labels.")
    return names


def _resolve_folder(name, path):
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        folders = [path, os.path.join(path, name)]
    else:
        folders = [os.path.join(root, "mulan", name) for root in default_data_dirs()]
    for folder in folders:
        if all(
            os.path.isfile(os.path.join(folder, f"{name}{suffix}"))
            for suffix in ("-train.arff", "-test.arff", ".xml")
        ):
            return folder
    raise FileNotFoundError(
        f"MULAN dataset {name!r} ('{name}-train.arff', '{name}-test.arff', '{name}.xml') was "
        f"not found in {folders}. Pass `path`, the folder holding these files."
    )


def _read_split(path, label_names):
    with open(path, encoding="utf-8") as file:
        names, values = parse_arff(file.read())
    positions = {attribute: index for index, attribute in enumerate(names)}
    missing = [label for label in label_names if label not in positions]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} has no attribute for label(s) {missing[:5]}.")
    label_columns = [positions[label] for label in label_names]
    is_label = np.zeros(len(names), dtype=bool)
    is_label[label_columns] = True
    labels = values[:, label_columns]
    if np.any(np.isnan(labels)) or not np.all((labels == 0) | (labels == 1)):
        raise ValueError(f"{os.fspath(path)!r} should hold 0/1 label values.")
    return values[:, ~is_label].astype("float32"), labels.astype("int32")


def load_mulan(name, path=None):
    """Loads a MULAN multi-label dataset: `<name>-train.arff`, `<name>-test.arff`, `<name>.xml`.

    The label attributes are those named in `<name>.xml` (in the MULAN files, the last
    `n_labels` attributes); every other attribute is a feature.

    Args:
        name: the dataset's file stem, e.g. `"emotions"`, `"scene"` or `"medical"`.
        path: the folder holding the three files (or its parent holding `<name>/`). When
            `None`, `mulan/<name>/` under each of `keras_mlcl.data.datasets.default_data_dirs()`.

    Returns:
        A `LabeledDataset` named `"mulan_<name>"`: `x` float32 `(N, num_features)`, one level
        `labels` multi-hot int32 `(N, K)`, the test split, and the label names as
        `class_names["labels"]`.

    Example:

    >>> data = load_mulan("emotions", "../shared/data/mulan/emotions")
    >>> data.x.shape, data.labels["labels"].shape
    ((391, 72), (391, 6))
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` should be a MULAN dataset name. Received: `name`={name!r}")
    folder = _resolve_folder(name, path)
    label_names = read_label_names(os.path.join(folder, f"{name}.xml"))
    x, labels = _read_split(os.path.join(folder, f"{name}-train.arff"), label_names)
    x_test, test_labels = _read_split(os.path.join(folder, f"{name}-test.arff"), label_names)
    return LabeledDataset(
        x=x,
        labels={"labels": labels},
        x_test=x_test,
        test_labels={"labels": test_labels},
        name=f"mulan_{name}",
        class_names={"labels": label_names},
    )
