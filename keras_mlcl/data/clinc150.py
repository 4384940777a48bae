"""CLINC150 (Larson et al., 2019): short utterances, 150 intents grouped into 10 domains."""

import json
import os
from typing import Any

import numpy as np

from keras_mlcl.data.data_dirs import dataset_folder
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.registry import register_dataset
from keras_mlcl.utils.validation import check_readable

OUT_OF_SCOPE = "oos"
_SPLITS = ("train", "val", "test")
_FILES = ("data_full.json", "domains.json")


def _resolve_folder(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        folder = dataset_folder("clinc150", "clinc150")
    else:
        path = os.path.expanduser(os.fspath(path))
        folder = os.path.dirname(path) if os.path.isfile(path) else path
    check_readable("The CLINC150 folder", folder)
    if not all(os.path.isfile(os.path.join(folder, name)) for name in _FILES):
        raise FileNotFoundError(
            f"CLINC150 ('data_full.json' and 'domains.json') was not found in {folder!r}: it "
            "should hold both files (from github.com/clinc/oos-eval, CC BY 3.0)."
        )
    return folder


def _read_json(path: str) -> Any:
    """The content of the JSON file `path`, or a one-line `ValueError` naming it."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except UnicodeDecodeError as error:
        reason = f"bytes that are not UTF-8 text ({error.reason} at byte {error.start})"
    except json.JSONDecodeError as error:
        reason = f"text that is not JSON ({error.msg}: line {error.lineno}, column {error.colno})"
    raise ValueError(f"The CLINC150 file {path!r} should be JSON. Received {reason}")


def _check_domains(path: str, domains: Any) -> None:
    """Checks `domains.json`: an object mapping each domain to a list of intent names."""
    received: str | None
    if not isinstance(domains, dict) or not domains:
        received = "an empty object" if isinstance(domains, dict) else _json_kind(domains)
    else:
        received = next(
            (
                f"domain {domain!r}: {str(intents)[:80]}"
                for domain, intents in domains.items()
                if not (isinstance(intents, list) and all(isinstance(i, str) for i in intents))
            ),
            None,
        )
    if received is not None:
        raise ValueError(
            f"The CLINC150 file {path!r} should be a JSON object mapping each domain to a list "
            f"of intent names. Received: {received}"
        )


def _check_splits(path: str, splits: Any) -> None:
    """Checks `data_full.json`: an object with a list of `[text, intent]` pairs per split."""
    if not isinstance(splits, dict):
        raise ValueError(
            f"The CLINC150 file {path!r} should be a JSON object with the splits "
            f"{list(_SPLITS)}. Received: {_json_kind(splits)}"
        )
    missing = [split for split in _SPLITS if split not in splits]
    if missing:
        raise ValueError(
            f"The CLINC150 file {path!r} should hold the splits {list(_SPLITS)}. Missing: "
            f"{missing}; received keys: {list(splits)[:10]}"
        )
    received: str | None
    for split in _SPLITS + tuple(f"oos_{split}" for split in _SPLITS if f"oos_{split}" in splits):
        rows = splits[split]
        if not isinstance(rows, list):
            received = _json_kind(rows)
        else:
            received = next((str(row)[:80] for row in rows if not _is_pair(row)), None)
        if received is not None:
            raise ValueError(
                f"The CLINC150 file {path!r} should hold split {split!r} as a list of "
                f"[text, intent] pairs of strings. Received: {received}"
            )


def _is_pair(row: Any) -> bool:
    return isinstance(row, list) and len(row) == 2 and all(isinstance(v, str) for v in row)


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return f"a JSON {kinds.get(type(value), 'number')}"


def load_clinc150(
    path: str | os.PathLike[str] | None = None, include_oos: bool = False
) -> LabeledDataset:
    """Loads CLINC150 with levels `domain` (10, coarse) and `intent` (150, fine).

    Reads `data_full.json` (lists of `[text, intent]` under `train`, `val`, `test` and the
    out-of-scope `oos_train`, `oos_val`, `oos_test`) and `domains.json` (domain -> intents).
    Domains are numbered in sorted order; intents are numbered domain by domain (sorted within
    each domain), so a domain's intents have consecutive ids.

    Args:
        path: the folder holding both JSON files (or the path of `data_full.json`). When
            `None`, `$KERAS_MLCL_DATA/clinc150`.
        include_oos: whether to add the out-of-scope utterances, as an 11th domain and 151st
            intent both named `"oos"` (last ids). Defaults to `False`.

    Returns:
        A `LabeledDataset`: `x` a NumPy array of strings, 15,000 training, 3,000 validation
        (`x_val`) and 4,500 test utterances (plus 100 / 100 / 1,000 with `include_oos=True`),
        and class names for both levels.

    Example (not run as a test: the CLINC150 files are not shipped with keras-mlcl):

    >>> data = load_clinc150("data/clinc150")  # doctest: +SKIP
    >>> data.num_classes("domain"), data.num_classes("intent")  # doctest: +SKIP
    (10, 150)
    """
    folder = _resolve_folder(path)
    splits = _read_json(os.path.join(folder, "data_full.json"))
    domains = _read_json(os.path.join(folder, "domains.json"))
    _check_domains(os.path.join(folder, "domains.json"), domains)
    _check_splits(os.path.join(folder, "data_full.json"), splits)
    domain_names = sorted(domains)
    intent_names = []
    domain_of_intent = []
    for domain_id, domain in enumerate(domain_names):
        for intent in sorted(domains[domain]):
            intent_names.append(intent)
            domain_of_intent.append(domain_id)
    if include_oos:
        domain_names.append(OUT_OF_SCOPE)
        intent_names.append(OUT_OF_SCOPE)
        domain_of_intent.append(len(domain_names) - 1)
    intent_ids = {intent: index for index, intent in enumerate(intent_names)}
    domain_of_intent = np.asarray(domain_of_intent, dtype="int32")

    def split_arrays(split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows = list(splits[split])
        if include_oos:
            rows += list(splits.get(f"oos_{split}", []))
        unknown = sorted({intent for _, intent in rows if intent not in intent_ids})
        if unknown:
            raise ValueError(
                f"CLINC150 split {split!r} has intents missing from 'domains.json': {unknown[:5]}"
            )
        texts = np.asarray([text for text, _ in rows], dtype=str)
        intents = np.asarray([intent_ids[intent] for _, intent in rows], dtype="int32")
        return texts, {"domain": domain_of_intent[intents], "intent": intents}

    x, labels = split_arrays("train")
    x_val, val_labels = split_arrays("val")
    x_test, test_labels = split_arrays("test")
    return LabeledDataset(
        x=x,
        labels=labels,
        x_test=x_test,
        test_labels=test_labels,
        name="clinc150" + ("_oos" if include_oos else ""),
        class_names={"domain": domain_names, "intent": intent_names},
        x_val=x_val,
        val_labels=val_labels,
    )


register_dataset(
    "clinc150", lambda data_dir: load_clinc150(dataset_folder("clinc150", "clinc150", data_dir))
)
