"""Training methods by name: the objective is the only thing that changes.

| method | heads | objective |
|---|---|---|
| `ce` | one (weight 0) | cross-entropy on the finest level |
| `bce` | one (weight 0) | sigmoid cross-entropy on the multi-hot level |
| `supcon` | one, finest level | `SupCon` |
| `mlcl` | one per level | `MultiLevelSupCon` (the coarser heads: `coarse_temperature`, ...) |
| `himulcon` | one | `HiMulCon("hmce")` on all levels |
| `simdis` | one, multi-hot level | `SimDisLoss` |
| `supcon-any` | one, multi-hot level | `SupCon(positives="any")` |
| `jaccard` | one, multi-hot level | `SupCon(positives="jaccard")` |
| `mlcl-labels` | one per label of the multi-hot level | `MultiLevelSupCon.multilabel` |
| `mlcl-groups` | one per label group (`method_label_groups`) | `MultiLevelSupCon.multilabel` |
| `<method>+ce` | as the method | plus `ce_weight` x cross-entropy on the finest level |

The heads of `mlcl-labels` and `mlcl-groups` share one temperature; each head's weight is
`share ** weight_power`, scaled to a mean of 1 over the heads with a positive, where `share` is
the share of training rows holding a label of the head (`weight_power=0`: every head weighs 1).
A head whose labels no training row holds weighs 0: it has no positive pair to learn from.

The method names, and which option (`temperature`, `coarse_weight`, ...) each method uses with
its default, are in the table of `keras_mlcl.experiments.options`.
"""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_mlcl.data import LabeledDataset
from keras_mlcl.data.label_groups import label_groups
from keras_mlcl.experiments.options import DEFAULTS
from keras_mlcl.experiments.options import LABEL_HEAD_METHODS
from keras_mlcl.experiments.options import METHODS as METHODS  # exported by the package
from keras_mlcl.experiments.options import OPTIONS
from keras_mlcl.experiments.options import parse_method
from keras_mlcl.losses import HiMulCon
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.losses import SimDisLoss
from keras_mlcl.losses import SupCon
from keras_mlcl.models import ContrastiveModel

MULTI_HOT_METHODS = ("simdis", "supcon-any", "jaccard", "bce", *LABEL_HEAD_METHODS)


def method_label_groups(method: str, dataset: LabeledDataset, level: str) -> dict[str, list[int]]:
    """The label columns of each head of `mlcl-labels` / `mlcl-groups`: `{head: [columns]}`.

    `mlcl-labels` has one head per label (`label_<k>`). `mlcl-groups` has one head per group
    of `keras_mlcl.data.label_groups` over the training rows of `level` (`group_<i>`): the
    labels under each label of the next coarser level when that level is multi-hot too, else
    clusters of labels that occur together.
    """
    labels = np.asarray(dataset.labels[level])
    if method == "mlcl-labels":
        return {f"label_{k}": [k] for k in range(labels.shape[1])}
    index = dataset.levels.index(level)
    coarser = dataset.levels[index - 1] if index > 0 else None
    coarse = None
    if coarser is not None and dataset.is_multi_hot(coarser):
        coarse = dataset.labels[coarser]
    groups = label_groups(labels, coarse=coarse)
    return {f"group_{i}": list(columns) for i, columns in enumerate(groups)}


def head_weights(
    labels: Any, groups: dict[str, list[int]], weight_power: float
) -> dict[str, float]:
    """`{head: weight}`: `share ** weight_power`, scaled to a mean of 1 over the heads with a
    positive; 0 for a head without one (see the module doc). `weight_power` should be in
    [0, `MAX_WEIGHT_POWER`] (`keras_mlcl.experiments.options`), which keeps the weights finite."""
    weight_power = OPTIONS["weight_power"].check(weight_power)
    labels = np.asarray(labels)
    labels = labels[np.all(labels >= 0, axis=1)]
    shares = {
        name: float(np.mean(np.any(labels[:, columns] > 0, axis=1))) if len(labels) else 0.0
        for name, columns in groups.items()
    }
    raw = {name: share**weight_power for name, share in shares.items() if share > 0}
    if not raw:
        return {name: 1.0 for name in groups}
    mean = float(np.mean(list(raw.values())))
    return {name: raw[name] / mean if name in raw else 0.0 for name in groups}


def check_method_for_dataset(name: str, dataset: LabeledDataset) -> None:
    """Raises when the dataset's levels do not fit the method."""
    base, _ = parse_method(name)
    multi_hot = [level for level in dataset.levels if dataset.is_multi_hot(level)]
    if base in MULTI_HOT_METHODS and not multi_hot:
        raise ValueError(
            f"`method`={name!r} needs a multi-hot label level; {dataset.name!r} has only "
            f"class-id levels {dataset.levels}."
        )
    if base in ("ce", "supcon", "himulcon") and dataset.is_multi_hot(dataset.levels[-1]):
        raise ValueError(
            f"`method`={name!r} needs class ids at the finest level; {dataset.name!r}'s "
            f"level {dataset.levels[-1]!r} is multi-hot."
        )
    if base == "himulcon" and multi_hot:
        raise ValueError(f"`method`='himulcon' needs class ids at every level of {dataset.name!r}.")


def model_class_names(dataset: LabeledDataset, keys: list[str]) -> dict[str, list[str]] | None:
    """The class names of `dataset`'s class-id levels among `keys` (the model's label keys),
    for `ContrastiveModel(class_names=...)`; None when there are none."""
    names = {
        level: list(values)
        for level, values in (dataset.class_names or {}).items()
        if level in keys and not dataset.is_multi_hot(level)
    }
    return names or None


def build_model(
    name: str,
    dataset: LabeledDataset,
    encoder: keras.Model,
    augment: keras.layers.Layer | None = None,
    views: int = 2,
    temperature: float = DEFAULTS["temperature"],
    ce_weight: float = DEFAULTS["ce_weight"],
    head_dim: int = 128,
    coarse_temperature: float = DEFAULTS["coarse_temperature"],
    coarse_weight: float = DEFAULTS["coarse_weight"],
    weight_power: float = DEFAULTS["weight_power"],
) -> tuple[ContrastiveModel, Callable[[dict[str, Any]], Any]]:
    """A `ContrastiveModel` for method `name` on `dataset`'s levels.

    Args:
        name: a method name (see the module table).
        dataset: a `keras_mlcl.data.LabeledDataset` (levels coarse to fine).
        encoder: the shared encoder.
        augment: the views' augmentation layer.
        views: views per sample for contrastive methods (1 for `ce`/`bce`).
        temperature: the temperature of the (finest) contrastive head.
        ce_weight: weight of the joint cross-entropy of `<method>+ce`.
        head_dim: output size of each projection head.
        coarse_temperature: `mlcl`: temperature of the heads of the levels
            coarser than the finest.
        coarse_weight: `mlcl`: weight of those heads (the finest head's is 1).
        weight_power: `mlcl-labels`, `mlcl-groups`: the heads' weights are the shares of
            training rows holding one of their labels to this power, scaled to a mean of 1.

    The defaults of `temperature`, `ce_weight`, `coarse_temperature`, `coarse_weight` and
    `weight_power` are the method options' table's (`keras_mlcl.experiments.options`).

    Returns:
        `(model, labels)`: the model and a function mapping a dict of level
        labels `{level: labels}` to the `y` that model takes.
    """
    check_method_for_dataset(name, dataset)
    base, joint = parse_method(name)
    levels = dataset.levels
    finest = levels[-1]
    target = (
        next(lvl for lvl in reversed(levels) if dataset.is_multi_hot(lvl))
        if (base in MULTI_HOT_METHODS)
        else finest
    )
    classifier = {}
    if joint or base in ("ce", "bce"):
        classifier = {target: dataset.num_classes(target)}

    if base in ("ce", "bce"):
        loss = MultiLevelSupCon(
            heads={target: {"weight": 0.0, "positives": "any" if base == "bce" else "equal"}}
        )
        heads, views = {target: head_dim}, 1
    elif base == "mlcl":
        heads = {level: head_dim for level in levels}
        loss = MultiLevelSupCon(
            heads={
                level: {
                    "temperature": temperature if level == finest else coarse_temperature,
                    "weight": 1.0 if level == finest else coarse_weight,
                    "positives": "any" if dataset.is_multi_hot(level) else "equal",
                }
                for level in levels
            }
        )

    elif base in LABEL_HEAD_METHODS:
        groups = method_label_groups(base, dataset, target)
        heads = {name: head_dim for name in groups}
        loss = MultiLevelSupCon.multilabel(
            groups,
            temperatures=temperature,
            weights=head_weights(dataset.labels[target], groups, weight_power),
            positives="any",
        )
    elif base == "himulcon":
        heads, loss = {"hierarchy": head_dim}, HiMulCon(temperature=temperature)
    else:
        heads = {target: head_dim}
        loss = {
            "supcon": SupCon(temperature=temperature),
            "simdis": SimDisLoss(temperature=temperature),
            "supcon-any": SupCon(temperature=temperature, positives="any"),
            "jaccard": SupCon(temperature=temperature, positives="jaccard"),
        }[base]
    keys = levels if base == "mlcl" else sorted({target, *classifier})
    if base == "himulcon":
        keys = list(classifier)
    elif base in LABEL_HEAD_METHODS:
        keys = []
    model = ContrastiveModel(
        encoder,
        heads=heads,
        loss=loss,
        views=views,
        augment=augment if views > 1 else None,
        classifier=classifier or None,
        ce_weight=ce_weight if classifier else 0.0,
        class_names=model_class_names(dataset, keys),
    )

    def to_y(labels: dict[str, Any]) -> Any:
        if base == "himulcon":
            y = {key: labels[key] for key in classifier}
            y["hierarchy"] = np.stack([labels[level] for level in levels], axis=1)
            return y
        if base in LABEL_HEAD_METHODS:
            return labels[target]
        return {key: labels[key] for key in keys}

    return model, to_y
