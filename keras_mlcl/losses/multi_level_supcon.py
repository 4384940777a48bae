"""MultiLevelSupCon (MLCL): one SupCon term per projection head."""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.temperature import check_temperature
from keras_mlcl.ops import POSITIVE_RULES
from keras_mlcl.ops import check_labels_for_rule
from keras_mlcl.ops.positives import BINARY_RULES
from keras_mlcl.ops.positives import rule_weights
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float

HEAD_DEFAULTS = {"temperature": 0.1, "weight": 1.0, "positives": "equal", "columns": None}


def _head_config(name: str, config: Any) -> dict[str, Any]:
    """Validates one head's configuration and fills in the defaults."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(
            f"`heads[{name!r}]` should be a dict with keys among "
            f"{sorted(HEAD_DEFAULTS)}. Received: {config!r}"
        )
    unknown = sorted(set(config) - set(HEAD_DEFAULTS))
    if unknown:
        raise ValueError(
            f"`heads[{name!r}]` has unknown keys {unknown}; expected keys among "
            f"{sorted(HEAD_DEFAULTS)}."
        )
    config = {**HEAD_DEFAULTS, **config}
    columns = config["columns"]
    if columns is not None:
        if (
            not isinstance(columns, (list, tuple))
            or not columns
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in columns)
        ):
            raise ValueError(
                f"`heads[{name!r}]['columns']` should be a non-empty list of "
                f"label-column indices. Received: {columns!r}"
            )
        columns = [int(c) for c in columns]
    rule = check_choice(f"heads[{name!r}]['positives']", config["positives"], POSITIVE_RULES)
    if columns is not None and rule == "equal":
        raise ValueError(
            f"`heads[{name!r}]` selects multi-hot `columns`, which need a "
            "multi-hot rule ('any', 'exact', 'jaccard' or 'simdis'). "
            "Received: positives='equal'"
        )
    return {
        "temperature": check_temperature(f"heads[{name!r}]['temperature']", config["temperature"]),
        "weight": check_non_negative_float(f"heads[{name!r}]['weight']", config["weight"]),
        "positives": rule,
        "columns": columns,
    }


def _per_name(argument: str, value: Any, names: list[str], default: Any) -> dict[str, Any]:
    """Spreads a float, a list (in `names` order) or a dict over `names`."""
    if value is None:
        return {name: default for name in names}
    if isinstance(value, dict):
        if set(value) != set(names):
            raise ValueError(
                f"`{argument}` should have one entry per name {list(names)}. "
                f"Received keys {sorted(value)}"
            )
        return dict(value)
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(
                f"`{argument}` should have {len(names)} entries, one per name "
                f"{list(names)}. Received: {list(value)}"
            )
        return dict(zip(names, value, strict=True))
    return {name: value for name in names}


@keras.saving.register_keras_serializable(package="keras_mlcl")
class MultiLevelSupCon(ContrastiveLoss):
    """Multi-level supervised contrastive loss (MLCL, arXiv 2502.02202).

    One SupCon term per projection head, each with its own notion of
    positives, temperature and weight:

    ```
    L = sum_h lambda_h * L_h,   L_h = mean_{i valid for h} loss_i^h
    ```

    where `loss_i^h` is the SupCon loss of anchor `i` on head `h`'s
    embeddings `z^h` with temperature `tau_h` and the positive weights of
    head `h`'s rule on its labels (see `keras_mlcl.ops.supcon_from_weights`).
    All heads are computed together (see `ContrastiveLoss.prepare`): the
    similarities and log-softmax of every head are one batched op.

    `y_pred` is a dict `{head: (N, D_h)}` of L2-normalised embeddings (as a
    `MultiProjectionHead` returns). `y_true` is a dict `{head: labels}`; or,
    when every head names `columns`, one multi-hot `(N, K)` array whose
    columns each head selects.

    Args:
        heads: dict `{name: config}`; each config may set `"temperature"`
            (default 0.1), `"weight"` (default 1.0), `"positives"` (a rule of
            `keras_mlcl.ops.positive_weights`, default `"equal"`) and
            `"columns"` (label columns of a multi-hot `y_true`, default None).
        name: the loss name. Defaults to `"multi_level_supcon"`.
        **kwargs: the arguments every loss takes (`normalization`,
            `normalize`, `block_size`, `reduction`, `dtype`), see
            `ContrastiveLoss`; a reduction applies to each head, then the
            heads are summed with their weights.

    Example:

    >>> loss = MultiLevelSupCon.hierarchical(
    ...     levels=["coarse", "fine"], temperatures=[0.5, 0.1])
    >>> z = {k: keras.ops.normalize(keras.random.normal((6, 8)), axis=-1)
    ...      for k in ("coarse", "fine")}
    >>> y = {"coarse": keras.ops.convert_to_tensor([0, 0, 0, 1, 1, 1]),
    ...      "fine": keras.ops.convert_to_tensor([0, 0, 1, 2, 2, 3])}
    >>> value = loss(y, z)
    >>> sorted(loss.head_losses(y, z))
    ['coarse', 'fine']
    """

    def __init__(
        self,
        heads: Mapping[str, Mapping[str, Any]],
        *,
        name: str = "multi_level_supcon",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not isinstance(heads, dict) or not heads:
            raise ValueError(
                "`heads` should be a non-empty dict {name: {'temperature': ..., "
                "'weight': ..., 'positives': ...}}. "
                f"Received: `heads`={heads!r}"
            )
        self.heads = {str(name): _head_config(name, config) for name, config in heads.items()}
        rules = [c["positives"] for c in self.heads.values()]
        self.temperature = [c["temperature"] for c in self.heads.values()]
        self.binary_weights = all(rule in BINARY_RULES for rule in rules)
        self.equal_classes = all(rule == "equal" for rule in rules)
        self._weights = rule_weights(rules)

    @property
    def head_names(self) -> list[str]:
        return list(self.heads)

    @classmethod
    def hierarchical(
        cls,
        levels: Sequence[str] = ("coarse", "fine"),
        temperatures: float | Sequence[float] | Mapping[str, float] | None = None,
        weights: float | Sequence[float] | Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> "MultiLevelSupCon":
        """One head per level of a label hierarchy, class ids per level.

        Args:
            levels: head names, coarse to fine.
            temperatures: a float, a list (one per level) or a dict.
                Defaults to 0.1 for every level (the MLCL paper found 0.5 on
                the superclass head helped on CIFAR-100).
            weights: a float, a list or a dict. Defaults to 1.0 each.
            **kwargs: passed to the constructor.

        Returns:
            A `MultiLevelSupCon` with `"equal"` positives on every head.
        """
        levels = list(levels)
        taus = _per_name("temperatures", temperatures, levels, HEAD_DEFAULTS["temperature"])
        lambdas = _per_name("weights", weights, levels, HEAD_DEFAULTS["weight"])
        heads = {
            level: {"temperature": taus[level], "weight": lambdas[level], "positives": "equal"}
            for level in levels
        }
        return cls(heads=heads, **kwargs)

    @classmethod
    def multilabel(
        cls,
        groups: Mapping[str, Sequence[int]],
        temperatures: float | Sequence[float] | Mapping[str, float] | None = None,
        weights: float | Sequence[float] | Mapping[str, float] | None = None,
        positives: str | Sequence[str] | Mapping[str, str] = "any",
        **kwargs: Any,
    ) -> "MultiLevelSupCon":
        """One head per label or label group of a multi-hot label matrix.

        Args:
            groups: dict `{head name: [label column indices]}`.
            temperatures: a float, a list (one per group) or a dict.
            weights: a float, a list or a dict. Defaults to 1.0 each.
            positives: the multi-hot rule of every head. Defaults to `"any"`
                (two samples are positives on a head when they share a label
                of its group).
            **kwargs: passed to the constructor.

        Returns:
            A `MultiLevelSupCon` whose `y_true` is one `(N, K)` multi-hot array.
        """
        if not isinstance(groups, dict) or not groups:
            raise ValueError(
                "`groups` should be a non-empty dict {head name: [label "
                "columns]}. "
                f"Received: `groups`={groups!r}"
            )
        names = list(groups)
        taus = _per_name("temperatures", temperatures, names, HEAD_DEFAULTS["temperature"])
        lambdas = _per_name("weights", weights, names, HEAD_DEFAULTS["weight"])
        heads = {
            name: {
                "temperature": taus[name],
                "weight": lambdas[name],
                "positives": positives,
                "columns": list(groups[name]),
            }
            for name in names
        }
        return cls(heads=heads, **kwargs)

    @property
    def labels_in_one_array(self) -> bool:
        """True when every head selects `columns` (or there is one head): one `y_true` array."""
        return len(self.heads) == 1 or all(c["columns"] is not None for c in self.heads.values())

    def _one_array_hint(self) -> str:
        missing = [n for n, c in self.heads.items() if c["columns"] is None]
        return (
            "; a single array is only accepted when every head selects `columns`. "
            f"Heads without columns: {missing}"
        )

    def check_labels(self, labels: Tensor, head: str | None, name: str) -> Tensor:
        config = self.heads[str(head)]
        columns = config["columns"]
        if columns is not None:
            if len(labels.shape) != 2:
                raise ValueError(
                    f"Labels for head {head!r} should be multi-hot (N, K) to "
                    f"select columns {columns}. Received shape {tuple(labels.shape)}"
                )
            n_columns = labels.shape[1]
            if n_columns is not None and max(columns) >= n_columns:
                raise ValueError(
                    f"`heads[{head!r}]['columns']` refers to column "
                    f"{max(columns)}, but `{name}` has {n_columns} columns"
                )
            labels = ops.take(labels, columns, axis=1)
        return check_labels_for_rule(labels, config["positives"], name=name)

    def pair_weights(self, anchor_labels: list[Tensor], candidate_labels: list[Tensor]) -> Tensor:
        return self._weights(anchor_labels, candidate_labels)

    def combine(self, term_losses: Tensor) -> Tensor:
        weights = ops.convert_to_tensor(
            [c["weight"] for c in self.heads.values()], dtype=term_losses.dtype
        )
        if len(term_losses.shape) == 2:
            weights = weights[:, None]
        return ops.sum(weights * term_losses, axis=0)

    def per_head(self, term_losses: Tensor, head_names: list[str]) -> dict[str, Tensor]:
        """Each head's unweighted term: their sum weighted by the heads' `"weight"` is the loss."""
        return {name: term_losses[h] for h, name in enumerate(self.heads)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "heads": {name: dict(c) for name, c in self.heads.items()},
            }
        )
        return config
