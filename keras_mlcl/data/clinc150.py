"""CLINC150 (Larson et al., 2019): short utterances, 150 intents grouped into 10 domains."""

import json
import os

import numpy as np

from keras_mlcl.data.data_dirs import dataset_folder
from keras_mlcl.data.labeled_dataset import LabeledDataset
from keras_mlcl.data.registry import register_dataset

OUT_OF_SCOPE = "oos"
_FILES = ("data_full.json", "domains.json")


def _resolve_folder(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        folder = dataset_folder("clinc150", "clinc150")
    else:
        path = os.path.expanduser(os.fspath(path))
        folder = os.path.dirname(path) if os.path.isfile(path) else path
    if not all(os.path.isfile(os.path.join(folder, name)) for name in _FILES):
        raise FileNotFoundError(
            f"CLINC150 ('data_full.json' and 'domains.json') was not found in {folder!r}: it "
            "should hold both files (from github.com/clinc/oos-eval, CC BY 3.0)."
        )
    return folder


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
    with open(os.path.join(folder, "data_full.json"), encoding="utf-8") as file:
        splits = json.load(file)
    with open(os.path.join(folder, "domains.json"), encoding="utf-8") as file:
        domains = json.load(file)
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
