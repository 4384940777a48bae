"""MULAN multi-label datasets (emotions, scene, medical, ...) from their ARFF and XML files.

The ARFF files, dense or sparse (`{index value, ...}` rows), are read with liac-arff. MULAN
medical also loads as a two-level set, its ICD-9-CM codes under their 3-digit categories.
"""

import math
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

import arff
import numpy as np

from keras_mlcl.data.data_dirs import dataset_folder
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.registry import register_dataset
from keras_mlcl.utils.validation import check_readable

_SUFFIXES = ("-train.arff", "-test.arff", ".xml")
# The MULAN sets `load_dataset` knows, as `mulan_<name>`.
REGISTERED_NAMES = ("emotions", "medical", "scene")
# A MULAN medical label: `Class-<n>-<ICD-9-CM code>`, the code's dot written `_`. The code's
# category is 3 digits, `V` and 2 digits, or `E` and 3 digits; its subdivision 1 or 2 digits.
_MEDICAL_LABEL = re.compile(r"Class-\d+-(\d{3}|V\d{2}|E\d{3})(?:_\d{1,2})?")


def _nominal_numbers(values: Sequence[str]) -> dict[str, float]:
    """How a nominal attribute's values read as numbers: their own value, else their index."""
    try:
        return {value: float(value) for value in values}
    except ValueError:
        return {value: float(index) for index, value in enumerate(values)}


def parse_arff(text: str) -> tuple[list[str], np.ndarray]:
    """Parses ARFF text with numeric and nominal attributes, dense or sparse rows, into floats.

    The text is decoded by liac-arff (`arff.loads`). Sparse rows `{index value, ...}` list the
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
    try:
        decoded = arff.loads(text)
    except arff.ArffException as error:
        raise ValueError(f"Cannot parse the ARFF text: {error}") from None
    names = [name for name, _ in decoded["attributes"]]
    converters = []
    for name, kind in decoded["attributes"]:
        if isinstance(kind, list):
            converters.append(_nominal_numbers(kind).__getitem__)
        elif kind.upper() in ("NUMERIC", "REAL", "INTEGER"):
            converters.append(float)
        else:
            raise ValueError(
                f"ARFF attribute {name!r} has type {kind!r}; only numeric and nominal attributes "
                "are supported."
            )
    rows = [
        [
            math.nan if value is None else convert(value)
            for convert, value in zip(converters, row, strict=True)
        ]
        for row in decoded["data"]
    ]
    return names, np.asarray(rows, dtype="float64").reshape(len(rows), len(names))


def read_label_names(path: str | os.PathLike[str]) -> list[str]:
    """The label names of a MULAN `<name>.xml` file, in document order."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(
            f"The MULAN label file {os.fspath(path)!r} is not well-formed XML: {error}"
        ) from None
    names = [
        name
        for element in root.iter()
        if element.tag.rsplit("}", 1)[-1] == "label" and (name := element.get("name")) is not None
    ]
    if not names:
        raise ValueError(f"The MULAN label file {os.fspath(path)!r} names no labels.")
    return names


def _resolve_folder(name: str, path: str | os.PathLike[str] | None) -> str:
    if path is None:
        folders = [dataset_folder(f"mulan_{name}", f"mulan/{name}")]
    else:
        path = os.path.expanduser(os.fspath(path))
        folders = [path, os.path.join(path, name)]
    for folder in folders:
        check_readable(f"The MULAN {name!r} folder", folder)
        if all(os.path.isfile(os.path.join(folder, f"{name}{suffix}")) for suffix in _SUFFIXES):
            return folder
    raise FileNotFoundError(
        f"MULAN dataset {name!r} ('{name}-train.arff', '{name}-test.arff', '{name}.xml') was "
        f"not found in {' or '.join(repr(folder) for folder in folders)}."
    )


def _read_split(path: str, label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{os.fspath(path)!r} should be an ARFF text file (UTF-8). Received bytes that are "
            f"not text: {error.reason} at byte {error.start}"
        ) from None
    try:
        names, values = parse_arff(text)
    except ValueError as error:
        raise ValueError(f"In {os.fspath(path)!r}: {error}") from None
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


def load_mulan(name: str, path: str | os.PathLike[str] | None = None) -> LabeledDataset:
    """Loads a MULAN multi-label dataset: `<name>-train.arff`, `<name>-test.arff`, `<name>.xml`.

    The label attributes are those named in `<name>.xml` (in the MULAN files, the last
    `n_labels` attributes); every other attribute is a feature.

    Args:
        name: the dataset's file stem, e.g. `"emotions"`, `"scene"` or `"medical"`.
        path: the folder holding the three files (or its parent holding `<name>/`). When
            `None`, `$KERAS_MLCL_DATA/mulan/<name>`.

    Returns:
        A `LabeledDataset` named `"mulan_<name>"`: `x` float32 `(N, num_features)`, one level
        `labels` multi-hot int32 `(N, K)`, the test split, and the label names as
        `class_names["labels"]`.

    Example (not run as a test: the MULAN files are not shipped with keras-mlcl):

    >>> data = load_mulan("emotions", "data/mulan/emotions")  # doctest: +SKIP
    >>> data.x.shape, data.labels["labels"].shape  # doctest: +SKIP
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


def icd9_category(label_name: str) -> str:
    """The ICD-9-CM 3-digit category of a MULAN medical label name.

    MULAN medical names its labels `Class-<n>-<code>`, where `<code>` is an ICD-9-CM code with
    `_` in place of its dot (`Class-1-079_99` is code 079.99). The category is the code's part
    before the dot: 3 digits, or `V` and 2 digits, or `E` and 3 digits.

    Args:
        label_name: a MULAN medical label name, e.g. `"Class-12-V13_09"`.

    Returns:
        The category as text, e.g. `"V13"`.

    Raises:
        ValueError: when `label_name` is not of the form `Class-<n>-<ICD-9-CM code>`.

    Example:

    >>> icd9_category("Class-1-079_99"), icd9_category("Class-16-462")
    ('079', '462')
    """
    match = _MEDICAL_LABEL.fullmatch(label_name) if isinstance(label_name, str) else None
    if match is None:
        raise ValueError(
            "`label_name` should be a MULAN medical label `Class-<n>-<ICD-9-CM code>` such as "
            f"'Class-1-079_99'. Received: `label_name`={label_name!r}"
        )
    return match.group(1)


def load_mulan_medical_icd(path: str | os.PathLike[str] | None = None) -> LabeledDataset:
    """Loads MULAN medical with two multi-hot levels: ICD-9-CM categories over the 45 codes.

    Each of the 45 labels is an ICD-9-CM code; its category is `icd9_category(label)`. A row
    holds a category when it holds any code of that category:

    ```
    category[i, c] = max over codes k of category c of code[i, k]
    ```

    Args:
        path: the folder holding `medical-train.arff`, `medical-test.arff` and `medical.xml`
            (or its parent holding `medical/`). When `None`, `$KERAS_MLCL_DATA/mulan/medical`.

    Returns:
        A `LabeledDataset` named `"mulan_medical_icd"`: `x` float32 `(N, 1449)`, two multi-hot
        int32 levels, coarse first, `"category"` `(N, C)` and `"code"` `(N, 45)` (the MULAN
        labels), the same for the test split, and `class_names` `{"category": the categories
        in text order, "code": the label names}`.

    Example (not run as a test: the MULAN files are not shipped with keras-mlcl):

    >>> data = load_mulan_medical_icd("data/mulan/medical")  # doctest: +SKIP
    >>> data.levels, data.class_names["category"][:3]  # doctest: +SKIP
    (['category', 'code'], ['079', '277', '279'])
    """
    if path is None:
        path = dataset_folder("mulan_medical_icd", "mulan/medical")
    codes = load_mulan("medical", path)
    code_names = (codes.class_names or {})["labels"]
    category_of_code = [icd9_category(name) for name in code_names]
    categories = sorted(set(category_of_code))
    membership = np.zeros((len(code_names), len(categories)), dtype="int32")
    membership[np.arange(len(code_names)), [categories.index(c) for c in category_of_code]] = 1

    def levels(code_labels: np.ndarray) -> dict[str, np.ndarray]:
        return {"category": (code_labels @ membership > 0).astype("int32"), "code": code_labels}

    return LabeledDataset(
        x=codes.x,
        labels=levels(codes.labels["labels"]),
        x_test=codes.x_test,
        test_labels=levels((codes.test_labels or {})["labels"]),
        name="mulan_medical_icd",
        class_names={"category": categories, "code": code_names},
    )


for _name in REGISTERED_NAMES:
    register_dataset(
        f"mulan_{_name}",
        lambda data_dir, name=_name: load_mulan(
            name, dataset_folder(f"mulan_{name}", f"mulan/{name}", data_dir)
        ),
    )
register_dataset(
    "mulan_medical_icd",
    lambda data_dir: load_mulan_medical_icd(
        dataset_folder("mulan_medical_icd", "mulan/medical", data_dir)
    ),
)
