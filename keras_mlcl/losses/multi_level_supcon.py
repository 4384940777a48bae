"""MultiLevelSupCon (MLCL): one SupCon term per projection head."""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_mlcl.backend import as_tensor
from keras_mlcl.losses.contrastive_loss import ContrastiveInputs
from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.contrastive_loss import embeddings_tensor
from keras_mlcl.ops import POSITIVE_RULES
from keras_mlcl.ops import check_labels_for_rule
from keras_mlcl.ops.positives import BINARY_RULES
from keras_mlcl.ops.supcon import float_embeddings
from keras_mlcl.ops.supcon import labels_weights_fn
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_float
from keras_mlcl.utils.validation import check_same_batch_size

HEAD_DEFAULTS = {"temperature": 0.1, "weight": 1.0, "positives": "equal", "columns": None}


def _head_config(name, config):
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
        "temperature": check_positive_float(
            f"heads[{name!r}]['temperature']", config["temperature"]
        ),
        "weight": check_non_negative_float(f"heads[{name!r}]['weight']", config["weight"]),
        "positives": rule,
        "columns": columns,
    }


def _per_name(argument, value, names, default):
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
    All heads are computed together: embeddings are zero-padded to the
    widest head (which leaves dot products unchanged) and stacked, so the
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
        normalization: `"count"` (default) or `"weight"`.
        block_size: anchor rows per block of the kernel. Defaults to None
            (automatic, see `keras_mlcl.ops.supcon_from_labels`).
        reduction: see `ContrastiveLoss`; applied to each head, then the
            heads are summed with their weights.
        name: the loss name. Defaults to `"multi_level_supcon"`.
        dtype: the dtype of the returned loss.

    Example:

    >>> loss = MultiLevelSupCon.hierarchical(
    ...     levels=["coarse", "fine"], temperatures=[0.5, 0.1])
    >>> z = {k: keras.ops.normalize(keras.random.normal((6, 8)), axis=-1)
    ...      for k in ("coarse", "fine")}
    >>> y = {"coarse": keras.ops.convert_to_tensor([0, 0, 0, 1, 1, 1]),
    ...      "fine": keras.ops.convert_to_tensor([0, 0, 1, 2, 2, 3])}
    >>> value = loss(y, z)
    >>> per_head = loss.head_losses(y, z)  # {"coarse": ..., "fine": ...}
    """

    def __init__(
        self,
        heads: Mapping[str, Mapping[str, Any]],
        normalization: str = "count",
        block_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "multi_level_supcon",
        dtype: str | None = None,
    ) -> None:
        super().__init__(
            normalization=normalization,
            block_size=block_size,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        if not isinstance(heads, dict) or not heads:
            raise ValueError(
                "`heads` should be a non-empty dict {name: {'temperature': ..., "
                "'weight': ..., 'positives': ...}}. "
                f"Received: `heads`={heads!r}"
            )
        self.heads = {str(name): _head_config(name, config) for name, config in heads.items()}

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

    def _check_heads(self, argument, value):
        if not isinstance(value, dict):
            raise ValueError(
                f"`{argument}` should be a dict keyed by head name "
                f"{self.head_names}. Received: {type(value).__name__}"
            )
        if set(value) != set(self.heads):
            raise ValueError(
                f"The head names of `{argument}` should be {sorted(self.heads)}, "
                f"the heads of this loss. Received: {sorted(value)}"
            )

    def head_labels(self, y_true: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The labels of each head, `{head: labels}`, from `y_true`."""
        if not isinstance(y_true, dict):
            missing = [n for n, c in self.heads.items() if c["columns"] is None]
            if missing:
                raise ValueError(
                    "`y_true` should be a dict keyed by head name "
                    f"{self.head_names}; a single array is only accepted when "
                    f"every head selects `columns`. Heads without columns: {missing}"
                )
            y_true = {name: y_true for name in self.heads}
        self._check_heads("y_true", y_true)
        labels = {}
        for name, config in self.heads.items():
            head_labels = as_tensor(y_true[name])
            if config["columns"] is not None:
                if len(head_labels.shape) != 2:
                    raise ValueError(
                        f"Labels for head {name!r} should be multi-hot (N, K) to "
                        f"select columns {config['columns']}. Received shape "
                        f"{tuple(head_labels.shape)}"
                    )
                n_columns = head_labels.shape[1]
                if n_columns is not None and max(config["columns"]) >= n_columns:
                    raise ValueError(
                        f"`heads[{name!r}]['columns']` refers to column "
                        f"{max(config['columns'])}, but `y_true` has {n_columns} columns"
                    )
                head_labels = ops.take(head_labels, config["columns"], axis=1)
            labels[name] = check_labels_for_rule(
                head_labels, config["positives"], name=f"y_true[{name!r}]"
            )
        return labels

    @property
    def labels_by_columns(self) -> bool:
        """True when every head selects `columns`: `y_true` may be one multi-hot array."""
        return all(c["columns"] is not None for c in self.heads.values())

    def bank_labels(self, y_true: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.head_labels(y_true)

    def contrastive_inputs(
        self, y_true: Tensor | Mapping[str, Tensor], y_pred: Mapping[str, Tensor]
    ) -> ContrastiveInputs:
        """All heads stacked: embeddings zero-padded to the widest head, `(H, N, D)`."""
        self._check_heads("y_pred", y_pred)
        labels = self.head_labels(y_true)
        embeddings = {}
        for name in self.heads:
            z = embeddings_tensor(y_pred[name], name=f"y_pred[{name!r}]")
            check_same_batch_size(f"y_true[{name!r}]", labels[name], f"y_pred[{name!r}]", z)
            embeddings[name] = z
        batch_sizes = {int(z.shape[0]) for z in embeddings.values() if z.shape[0] is not None}
        if len(batch_sizes) > 1:
            raise ValueError(
                "Every head of `y_pred` should have the same batch size. Received: "
                + str({n: tuple(z.shape) for n, z in embeddings.items()})
            )
        rules = [c["positives"] for c in self.heads.values()]
        return ContrastiveInputs(
            embeddings=self._stack(embeddings),
            labels=[labels[name] for name in self.heads],
            weights=lambda own, other: labels_weights_fn(own, other, rules),
            binary=all(rule in BINARY_RULES for rule in rules),
            temperature=[c["temperature"] for c in self.heads.values()],
        )

    def reference_inputs(
        self, embeddings: Mapping[str, Tensor], labels: Mapping[str, Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        self._check_heads("reference_embeddings", embeddings)
        self._check_heads("reference_labels", labels)
        references = {
            name: embeddings_tensor(embeddings[name], name=f"reference_embeddings[{name!r}]")
            for name in self.heads
        }
        checked = [
            check_labels_for_rule(
                labels[name], config["positives"], name=f"reference_labels[{name!r}]"
            )
            for name, config in self.heads.items()
        ]
        return self._stack(references), checked

    def _stack(self, embeddings):
        """`(H, N, D)` from `{head: (N, D_h)}`, zero-padded to the widest head."""
        embeddings = {name: float_embeddings(z) for name, z in embeddings.items()}
        width = max(int(z.shape[-1]) for z in embeddings.values())
        return ops.stack(
            [ops.pad(z, [[0, 0], [0, width - int(z.shape[-1])]]) for z in embeddings.values()]
        )

    def _weights(self, dtype):
        return ops.convert_to_tensor([c["weight"] for c in self.heads.values()], dtype=dtype)

    def combine(self, term_losses: Tensor) -> Tensor:
        weights = self._weights(term_losses.dtype)
        if len(term_losses.shape) == 2:
            weights = weights[:, None]
        return ops.sum(weights * term_losses, axis=0)

    def head_losses(
        self,
        y_true: Tensor | Mapping[str, Tensor],
        y_pred: Mapping[str, Tensor],
        sample_weight: Tensor | None = None,
        reference_embeddings: Mapping[str, Tensor] | None = None,
        reference_labels: Mapping[str, Tensor] | None = None,
        reference_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Each head's reduced (unweighted) loss, `{head: scalar}`.

        `term_losses` by head name: their sum weighted by each head's
        `"weight"` is the loss. Useful to log one metric per head. Under
        data parallelism the values are the global ones, not scaled for
        replicas. The `reference_*` arguments add a memory bank (see
        `term_losses`).
        """
        if self.reduction in ("none", None):
            raise ValueError("`head_losses` needs a reducing `reduction`, not 'none'.")
        reduced = self.term_losses(
            y_true,
            y_pred,
            sample_weight,
            reference_embeddings=reference_embeddings,
            reference_labels=reference_labels,
            reference_mask=reference_mask,
        )
        return {name: reduced[h] for h, name in enumerate(self.heads)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "heads": {name: dict(c) for name, c in self.heads.items()},
            }
        )
        return config
