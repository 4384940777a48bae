"""What every contrastive loss of keras-mlcl shares: one input shape (`{head: embeddings}`,
`{head: labels}`), one per-term method over `supcon_from_labels`, extra candidates (a memory
bank) and cross-replica anchors for any loss, and reductions over valid anchors only."""

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from keras_mlcl.backend import as_tensor
from keras_mlcl.backend import concrete_numpy
from keras_mlcl.distribution import gather_across_replicas
from keras_mlcl.distribution import loss_scale_for_replicas
from keras_mlcl.distribution import replica_count
from keras_mlcl.distribution import replica_offset
from keras_mlcl.ops.blockwise import auto_block_rows
from keras_mlcl.ops.normalization import l2_normalize
from keras_mlcl.ops.supcon import NORMALIZATIONS
from keras_mlcl.ops.supcon import float_embeddings
from keras_mlcl.ops.supcon import supcon_from_labels
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int
from keras_mlcl.utils.validation import check_same_batch_size

REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight", "sum", "none", None)


def reduce_anchor_losses(
    losses: Tensor,
    valid: Tensor,
    sample_weight: Tensor | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> Tensor:
    """Reduces per-anchor losses over the anchors that have positives.

    Under data parallelism `losses` are this replica's anchors: the counts
    (or weight sums) in the denominators are summed over replicas, so the
    value is the global one; its gradient is that of this replica's share
    times the replica count, so that the backend's combination of the
    replicas' gradients (TensorFlow sums them, Keras scaling each loss by
    `1 / R`; `torch.distributed` averages them) gives the global gradient.

    Args:
        losses: per-anchor losses, `(N,)` or `(H, N)` (one row per term).
        valid: booleans of the same shape; invalid anchors do not count.
        sample_weight: optional `(N,)` weights, one per anchor.
        reduction: `"sum_over_batch_size"` or `"mean"`: the weighted sum over
            the number of valid anchors (0 when there is none);
            `"mean_with_sample_weight"`: over the sum of their weights;
            `"sum"`: the weighted sum; `"none"`/`None`: the weighted
            per-anchor losses.

    Returns:
        A scalar, or `(H,)` for `(H, N)` inputs (`(…, N)` with `"none"`).
    """
    weights = ops.cast(valid, losses.dtype)
    if sample_weight is not None:
        sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), losses.dtype)
        weights = weights * ops.reshape(sample_weight, (-1,))
    values = losses * weights
    if reduction in ("none", None):
        return values
    return reduce_term_sums(ops.sum(values, axis=-1), valid, weights, reduction)


def reduce_term_sums(
    total: Tensor, valid: Tensor, weights: Tensor, reduction: str | None = "sum_over_batch_size"
) -> Tensor:
    """The reduced terms from their weighted sums over anchors (see `reduce_anchor_losses`).

    Args:
        total: `(T,)` (or a scalar) sums of the weighted per-anchor losses.
        valid: `(T, N)` (or `(N,)`) booleans, the anchors with positives.
        weights: the anchors' weights, valid ones only (0 elsewhere), the
            shape of `valid`.
        reduction: a reducing `reduction` of `reduce_anchor_losses`.

    Returns:
        The reduced terms, global under data parallelism.
    """
    if reduction == "sum":
        denominator = None
    elif reduction == "mean_with_sample_weight":
        denominator = ops.sum(weights, axis=-1)
    else:
        denominator = ops.sum(ops.cast(valid, total.dtype), axis=-1)
    replicas = replica_count()
    if replicas > 1 and denominator is not None:
        denominator = _sum_over_replicas(ops.stop_gradient(denominator))
    share = total if denominator is None else ops.divide_no_nan(total, denominator)
    if replicas == 1:
        return share
    value = _sum_over_replicas(ops.stop_gradient(share))
    return ops.stop_gradient(value) + replicas * (share - ops.stop_gradient(share))


def _sum_over_replicas(x: Tensor) -> Tensor:
    """The sum of `x` over data-parallel replicas (no gradient)."""
    return ops.sum(gather_across_replicas(ops.expand_dims(x, 0)), axis=0)


def embeddings_tensor(
    y_pred: Tensor, name: str = "y_pred", normalize: bool = False, zero_rows: bool = False
) -> Tensor:
    """Checks that `y_pred` is `(N, D)` embeddings and optionally L2-normalises.

    With `normalize=True`, rows of zero norm raise a `ValueError` when values
    are concrete (eager execution) unless `zero_rows=True` (a memory bank's
    empty slots); under tracing they stay zero vectors.
    """
    y_pred = as_tensor(y_pred)
    if len(y_pred.shape) != 2:
        raise ValueError(
            f"`{name}` should be embeddings of shape (N, D). Received: "
            f"`{name}.shape`={tuple(y_pred.shape)}"
        )
    if "float" not in str(y_pred.dtype):
        raise ValueError(
            f"`{name}` should be floating-point embeddings. Received: `{name}.dtype`={y_pred.dtype}"
        )
    if not normalize:
        return y_pred
    y_pred = ops.cast(y_pred, "float32") if y_pred.dtype != "float64" else y_pred
    if zero_rows:
        return l2_normalize(y_pred)
    values = concrete_numpy(ops.sqrt(ops.sum(ops.square(y_pred), axis=-1)))
    if values is not None and (values == 0).any():
        rows = [int(i) for i in (values == 0).nonzero()[0][:5]]
        raise ValueError(
            f"`{name}` should have no zero-norm rows when `normalize=True`; "
            f"they have no direction to compare. Received zero rows at "
            f"indices {rows}"
        )
    return l2_normalize(y_pred)


@keras.saving.register_keras_serializable(package="keras_mlcl")
class ContrastiveLoss(keras.losses.Loss):
    """Base class: a positive rule and its terms over the blockwise SupCon kernel.

    Every contrastive loss takes `y_pred = {head: (N, D_h) embeddings}` and
    `y_true = {head: labels}` (a loss with one head also takes plain
    tensors, `loss(labels, embeddings)`, and a dict with one entry of any
    name). A subclass writes only what is its own:

    - `check_labels(labels, head, name)`: one head's labels, checked, as its
      rule takes them;
    - `pair_weights(anchor_labels, candidate_labels)`: the positive rule,
      `(T, M, N)` weights of `T` terms (one per head, or several weight sets
      over one head's embeddings with `shared_terms = True`);
    - `temperature` (a float, or one per head), `binary_weights` when
      every weight is 0 or 1, and `equal_classes` when every head's
      positives are the `"equal"` rule on class ids (the kernel may then
      count positives per class);
    - `combine(terms)` when the loss is not the sum of its terms, and
      `head_names` for a loss with several heads.

    Everything else is shared: `prepare` turns a batch, or a memory bank's
    entries, into the kernel's inputs; `term_losses` runs
    `keras_mlcl.ops.supcon_from_labels` on them, optionally contrasting the
    anchors against reference embeddings as well (a memory bank, see
    `keras_mlcl.models.MemoryBank`), and, under data parallelism, computes
    only this replica's anchors against the gathered candidates.

    Unlike `keras.losses.Loss`, labels are not cast to float: class ids stay
    integers on their way to the positive rule. The default reduction
    averages over *valid* anchors (those with at least one positive), so
    anchors without positives neither dilute the mean nor give NaN.

    Under data parallelism (a `tf.distribute` replica context, or a
    `torch.distributed` process group) the candidates are gathered across
    replicas and each replica computes the loss of its own anchors only
    (about `1 / R` of the global work). The valid-anchor counts are summed
    over replicas, so the value is the single-device loss of the global
    batch, and the gradient, once the backend has combined the replicas'
    gradients, is its gradient. Each replica returns the value times
    `loss_scale_for_replicas()` (Keras' convention on TensorFlow);
    `reduction="none"` returns this replica's anchors. On JAX
    (`keras.distribution`) arrays are global already. See
    `keras_mlcl.distribution`.

    Args:
        normalization: `"count"` (default) or `"weight"`, see
            `keras_mlcl.ops.supcon_from_weights`.
        normalize: if True, L2-normalise the embeddings inside the loss
            (zero rows raise a `ValueError`). Defaults to False: heads
            normalise.
        block_size: anchor rows per block of the kernel. Defaults to None
            (automatic: one block for small batches, bounded blocks for
            large ones, see `keras_mlcl.ops.blockwise.auto_block_rows`).
        reduction: see `reduce_anchor_losses`. Defaults to
            `"sum_over_batch_size"`, the mean over valid anchors.
        name: the loss name.
        dtype: the dtype of the returned loss. Defaults to `None` (floatx);
            similarities are always computed in float32.

    Example: a loss whose positives are weighted by how close two ordinal
    labels are, `w_ij = 1 / (1 + |y_i - y_j|)`:

    >>> class OrdinalSupCon(ContrastiveLoss):
    ...     temperature = 0.1
    ...     def check_labels(self, labels, head, name):
    ...         return keras.ops.cast(labels, "float32")
    ...     def pair_weights(self, anchor_labels, candidate_labels):
    ...         a, c = anchor_labels[0], candidate_labels[0]
    ...         return (1.0 / (1.0 + keras.ops.abs(a[:, None] - c[None, :])))[None]
    >>> z = keras.ops.normalize(keras.random.normal((6, 8), seed=1), axis=-1)
    >>> value = OrdinalSupCon()(keras.ops.convert_to_tensor([0, 1, 2, 0, 1, 2]), z)
    >>> bool(value > 0)
    True
    """

    temperature: float | list[float]
    binary_weights: bool = False
    equal_classes: bool = False
    shared_terms: bool = False

    def __init__(
        self,
        normalization: str = "count",
        normalize: bool = False,
        block_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        check_choice("reduction", reduction, REDUCTIONS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        self.normalize = bool(normalize)
        self.block_size = (
            None if block_size is None else check_positive_int("block_size", block_size)
        )

    @property
    def head_names(self) -> list[str] | None:
        """The heads of `y_pred`; None for a loss with one head of any name."""
        return None

    @property
    def labels_in_one_array(self) -> bool:
        """True when one label array serves every head (one head, or heads selecting columns)."""
        return self.head_names is None or len(self.head_names) == 1

    def check_labels(self, labels: Tensor, head: str | None, name: str) -> Tensor:
        """One head's labels, checked, as `pair_weights` takes them.

        Args:
            labels: the labels given for `head`.
            head: the head's name (None for plain tensors).
            name: the argument's name for error messages (e.g. `"y_true"`).
        """
        raise NotImplementedError(f"{type(self).__name__} should define `check_labels`.")

    def pair_weights(self, anchor_labels: list[Tensor], candidate_labels: list[Tensor]) -> Tensor:
        """The positive rule: `(T, M, N)` weights of `M` anchors and `N` candidates.

        Args:
            anchor_labels: one checked label tensor per head, `M` rows.
            candidate_labels: the candidates' labels, `N` rows.
        """
        raise NotImplementedError(f"{type(self).__name__} should define `pair_weights`.")

    def combine(self, term_losses: Tensor) -> Tensor:
        """The loss from the reduced terms `(T,)` (or `(T, N)`): their sum by default."""
        return ops.sum(term_losses, axis=0)

    def per_head(self, term_losses: Tensor, head_names: list[str]) -> dict[str, Tensor]:
        """The loss of each head, `{head: value}`, from the reduced terms (to log them).

        By default the one head's value is the whole loss.
        """
        return {head_names[0]: self.combine(term_losses)}

    def check_heads(self, head_names: list[str]) -> None:
        """Raises a `ValueError` unless this loss can train the heads `head_names`."""
        own = self.head_names
        if own is None and len(head_names) != 1:
            raise ValueError(
                f"`loss` {type(self).__name__} takes one embedding, so `heads` should "
                f"have one head. Received heads {head_names}; use MultiLevelSupCon "
                "for several."
            )
        if own is not None and sorted(own) != sorted(head_names):
            raise ValueError(
                f"The head names of `loss` {sorted(own)} should be those of "
                f"`heads` {sorted(head_names)}."
            )

    def prepare(
        self,
        y_true: Any,
        y_pred: Any,
        arguments: tuple[str, str] = ("y_true", "y_pred"),
        zero_rows: bool = False,
    ) -> tuple[Tensor, list[Tensor]]:
        """The kernel's inputs: embeddings `(H, N, D)` and one checked label tensor per head.

        The one place a batch's inputs are prepared, used for a batch and
        for a memory bank's entries alike. Heads are zero-padded to the
        widest (which leaves dot products unchanged) and stacked.

        Args:
            y_true: `{head: labels}`, or one array (one head, or heads that
                select columns of it).
            y_pred: `{head: (N, D_h)}`, or `(N, D)` for one head.
            arguments: the names of `y_true` and `y_pred` in errors.
            zero_rows: allow zero embeddings (empty memory slots) when
                `normalize=True`. Defaults to False.
        """
        label_argument, embedding_argument = arguments
        heads = self._heads_of(y_pred, embedding_argument, y_true, label_argument)
        embeddings, labels = [], []
        embedding_names = []
        for name, _, z in self._by_head(y_pred, embedding_argument, heads, False):
            embeddings.append(embeddings_tensor(z, name, self.normalize, zero_rows))
            embedding_names.append(name)
        for (name, head, y), z, z_name in zip(
            self._by_head(y_true, label_argument, heads, self.labels_in_one_array),
            embeddings,
            embedding_names,
            strict=True,
        ):
            labels.append(self.check_labels(as_tensor(y), head, name))
            check_same_batch_size(name, labels[-1], z_name, z)
        batch_sizes = {int(z.shape[0]) for z in embeddings if z.shape[0] is not None}
        if len(batch_sizes) > 1:
            raise ValueError(
                f"Every head of `{embedding_argument}` should have the same batch size. "
                f"Received: {dict(zip(heads, [tuple(z.shape) for z in embeddings], strict=True))}"
            )
        embeddings = [float_embeddings(z) for z in embeddings]
        width = max(int(z.shape[-1]) for z in embeddings)
        if len(embeddings) == 1:  # a view, no copy
            return ops.expand_dims(embeddings[0], 0), labels
        padded = [
            z if z.shape[-1] == width else ops.pad(z, [[0, 0], [0, width - int(z.shape[-1])]])
            for z in embeddings
        ]
        return ops.stack(padded), labels

    def _heads_of(
        self, y_pred: Any, embedding_argument: str, y_true: Any, label_argument: str
    ) -> list[Any]:
        """The heads of this call: the loss's, or the one key of a dict, or `[None]`."""
        if self.head_names is not None:
            return self.head_names
        for value, argument in ((y_pred, embedding_argument), (y_true, label_argument)):
            if isinstance(value, Mapping):
                if len(value) != 1:
                    raise ValueError(
                        f"`{argument}` should hold one head: {type(self).__name__} has one. "
                        f"Received keys {sorted(value)}"
                    )
                return list(value)
        return [None]

    def _by_head(
        self, value: Any, argument: str, heads: list[Any], one_array: bool
    ) -> list[tuple[str, Any, Any]]:
        """`[(name in errors, head, value)]` in the order of `heads`."""
        if isinstance(value, Mapping):
            if set(value) != set(heads):
                raise ValueError(
                    f"The head names of `{argument}` should be {sorted(map(str, heads))}, "
                    f"the heads of this loss. Received: {sorted(value)}"
                )
            return [(f"{argument}[{head!r}]", head, value[head]) for head in heads]
        if len(heads) > 1 and not one_array:
            raise ValueError(
                f"`{argument}` should be a dict keyed by head name {heads}"
                + ("" if argument.endswith("pred") else self._one_array_hint())
                + f". Received: {type(value).__name__}"
            )
        return [(argument, head, value) for head in heads]

    def _one_array_hint(self) -> str:
        return ""

    def term_losses(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Tensor | None = None,
        reference_embeddings: Any = None,
        reference_labels: Any = None,
        reference_mask: Tensor | None = None,
    ) -> Tensor:
        """Each term's reduced loss, `(T,)` (`(T, N)` with `reduction="none"`).

        Args:
            y_true: labels, as for the loss.
            y_pred: embeddings, as for the loss.
            sample_weight: optional `(N,)` weights, one per anchor.
            reference_embeddings: optional embeddings in `y_pred`'s
                structure, `M` rows each, that every anchor is also
                contrasted against (a memory bank): in its denominator and,
                by the loss's positive rule, as positives; never anchors.
            reference_labels: their labels, in `y_true`'s structure; needed
                with `reference_embeddings`.
            reference_mask: optional `(M,)` booleans, False for empty slots.

        Returns:
            The reduced terms. Under data parallelism their value is the
            global one and their gradient that of this replica's anchors
            (see the class doc).
        """
        if (reference_embeddings is None) != (reference_labels is None):
            raise ValueError(
                "`reference_embeddings` and `reference_labels` go together: pass both or neither."
            )
        anchors, anchor_labels = self.prepare(y_true, y_pred)
        candidates, candidate_labels, offset = anchors, anchor_labels, 0
        if replica_count() > 1:
            rows, candidate_labels = gather_across_replicas(
                (ops.swapaxes(anchors, 0, 1), anchor_labels)
            )
            candidates = ops.swapaxes(rows, 0, 1)
            offset = replica_offset(ops.shape(anchors)[1])
        candidate_mask = None
        if reference_embeddings is not None:
            references, labels = self.prepare(
                reference_labels,
                reference_embeddings,
                ("reference_labels", "reference_embeddings"),
                zero_rows=True,
            )
            candidates = ops.concatenate([candidates, ops.cast(references, anchors.dtype)], 1)
            candidate_labels = [
                ops.concatenate([own, ops.cast(other, own.dtype)], axis=0)
                for own, other in zip(candidate_labels, labels, strict=True)
            ]
            if reference_mask is not None:
                own = ops.ones((ops.shape(candidates)[1] - ops.shape(references)[1],), "bool")
                candidate_mask = ops.concatenate([own, ops.cast(reference_mask, "bool")], 0)
        block_rows = self.block_size or auto_block_rows(
            anchors.shape[1], candidates.shape[1], anchors.shape[0]
        )
        kernel_arguments: dict[str, Any] = dict(
            temperature=self.temperature,
            rule=self.pair_weights,
            binary=self.binary_weights,
            equal_classes=self.equal_classes,
            normalization=self.normalization,
            anchor_offset=offset,
            candidate_mask=candidate_mask,
            block_size=block_rows,
        )
        one_block = block_rows is None or block_rows >= anchors.shape[1]
        if self.reduction in ("none", None) or self.shared_terms or one_block:
            losses, valid = supcon_from_labels(
                anchors, candidates, anchor_labels, candidate_labels, **kernel_arguments
            )
            return reduce_anchor_losses(losses, valid, sample_weight, self.reduction)
        # A reducing loss over several blocks: the kernel sums the weighted
        # anchors and computes their gradient in the same pass (no block is
        # computed twice). One block keeps its softmax for the backward pass
        # instead, which costs the same three matmuls.
        shape = ops.shape(anchors)[:2]
        if sample_weight is None:
            anchor_weights = ops.ones(shape, anchors.dtype)
        else:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), anchors.dtype)
            anchor_weights = ops.broadcast_to(ops.reshape(sample_weight, (1, -1)), shape)
        total, valid = supcon_from_labels(
            anchors,
            candidates,
            anchor_labels,
            candidate_labels,
            anchor_weights=anchor_weights,
            **kernel_arguments,
        )
        weights = ops.where(valid, anchor_weights, 0.0)
        return reduce_term_sums(total, valid, weights, self.reduction)

    def head_losses(
        self, y_true: Any, y_pred: Any, sample_weight: Tensor | None = None, **references: Any
    ) -> dict[str, Tensor]:
        """Each head's reduced loss, `{head: scalar}` (see `per_head`).

        For `MultiLevelSupCon` these are the heads' unweighted terms, whose
        sum weighted by each head's `"weight"` is the loss. Under data
        parallelism the values are the global ones, not scaled for
        replicas. `references` are `term_losses`' `reference_*` arguments.
        """
        if self.reduction in ("none", None):
            raise ValueError("`head_losses` needs a reducing `reduction`, not 'none'.")
        heads = self.head_names or (list(y_pred) if isinstance(y_pred, Mapping) else [self.name])
        return self.per_head(self.term_losses(y_true, y_pred, sample_weight, **references), heads)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Tensor | None = None) -> Tensor:
        with keras.name_scope(self.name):
            value = self.combine(self.term_losses(y_true, y_pred, sample_weight))
            if replica_count() > 1 and self.reduction not in ("none", None):
                value = value * loss_scale_for_replicas()
            return ops.cast(value, self.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "normalization": self.normalization,
                "normalize": self.normalize,
                "block_size": self.block_size,
                "dtype": self.dtype,
            }
        )
        return config
