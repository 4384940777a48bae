"""What every contrastive loss of keras-mlcl shares: labels kept as given, one per-term
method over the blockwise kernel, memory-bank references and cross-replica anchors for any
loss, and reductions that average over valid anchors only."""

import dataclasses
from collections.abc import Callable
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
from keras_mlcl.ops.blockwise import supcon_rows
from keras_mlcl.ops.normalization import l2_normalize
from keras_mlcl.ops.supcon import NORMALIZATIONS
from keras_mlcl.ops.supcon import float_embeddings
from keras_mlcl.ops.supcon import inverse_temperature
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

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


def _sum_over_replicas(x):
    """The sum of `x` over data-parallel replicas (no gradient)."""
    return ops.sum(gather_across_replicas(ops.expand_dims(x, 0)), axis=0)


def embeddings_tensor(y_pred: Tensor, name: str = "y_pred", normalize: bool = False) -> Tensor:
    """Checks that `y_pred` is `(N, D)` embeddings and optionally L2-normalises.

    With `normalize=True`, rows of zero norm raise a `ValueError` when values
    are concrete (eager execution); under tracing they stay zero vectors.
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
    norms = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1))
    values = concrete_numpy(norms)
    if values is not None and (values == 0).any():
        rows = [int(i) for i in (values == 0).nonzero()[0][:5]]
        raise ValueError(
            f"`{name}` should have no zero-norm rows when `normalize=True`; "
            f"they have no direction to compare. Received zero rows at "
            f"indices {rows}"
        )
    return l2_normalize(y_pred)


@dataclasses.dataclass
class ContrastiveInputs:
    """A loss's batch in the form the blockwise kernel takes.

    Attributes:
        embeddings: `(H, N, D)` float embeddings, one slice per head (`H = 1`
            for one embedding shared by every term).
        labels: one label tensor per head (or one for all terms), checked.
        weights: `weights(anchor_labels, candidate_labels)` returns the
            kernel's `weights_fn(start, rows) -> (T, rows, N)`.
        binary: True when every weight is 0 or 1.
        temperature: a float, or one per head.
        shared_terms: True when several weight sets share one embedding
            (HiMulCon's depths): one term per weight set, not per head.
    """

    embeddings: Any
    labels: list[Any]
    weights: Callable[[list[Any], list[Any]], Callable[[int, int | None], Any]]
    binary: bool
    temperature: float | list[float]
    shared_terms: bool = False


@keras.saving.register_keras_serializable(package="keras_mlcl")
class ContrastiveLoss(keras.losses.Loss):
    """Base class: per-term contrastive losses over the blockwise kernel.

    A subclass describes its batch with `contrastive_inputs(y_true, y_pred)`
    (embeddings per head, labels, its positive weights, temperatures) and,
    for several terms (heads, levels), how `combine` turns the reduced
    terms into the loss. Everything else is shared and works for every
    loss: `term_losses`, the one per-term method (terms = heads or levels;
    single-head losses are the one-term case), which optionally contrasts
    the anchors against reference embeddings as well (a memory bank), and,
    under data parallelism, computes only this replica's anchors against
    the gathered candidates.

    Unlike `keras.losses.Loss`, labels are not cast to float: class ids stay
    integers on their way to the positive rule. The default reduction
    averages over *valid* anchors (those with at least one positive), so
    anchors without positives neither dilute the mean nor give NaN.

    Under data parallelism (a `tf.distribute` replica context, or a
    `torch.distributed` process group) the candidates (`y_pred`, `y_true`)
    are gathered across replicas and each replica computes the loss of its
    own anchors only (about `1 / R` of the global work). The valid-anchor
    counts are summed over replicas, so the value is the single-device loss
    of the global batch, and the gradient, once the backend has combined
    the replicas' gradients, is its gradient. Each replica returns the value
    times `loss_scale_for_replicas()` (Keras' convention on TensorFlow);
    `reduction="none"` returns this replica's anchors. On JAX
    (`keras.distribution`) arrays are global already. See
    `keras_mlcl.distribution`.

    Args:
        normalization: `"count"` (default) or `"weight"`, see
            `keras_mlcl.ops.supcon_from_weights`.
        block_size: anchor rows per block of the kernel. Defaults to None
            (automatic: one block for small batches, 16 MB blocks for
            large ones).
        reduction: see `reduce_anchor_losses`. Defaults to
            `"sum_over_batch_size"`, the mean over valid anchors.
        name: the loss name.
        dtype: the dtype of the returned loss. Defaults to `None` (floatx);
            similarities are always computed in float32.
    """

    def __init__(
        self,
        normalization: str = "count",
        block_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        check_choice("reduction", reduction, REDUCTIONS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        self.block_size = (
            None if block_size is None else check_positive_int("block_size", block_size)
        )

    @property
    def head_names(self) -> list[str] | None:
        """The keys of `y_pred` when it is a dict of heads; None for one embedding."""
        return None

    @property
    def labels_by_columns(self) -> bool:
        """True when one label array serves every head (a dict `y_pred`'s heads select columns)."""
        return False

    def contrastive_inputs(self, y_true: Any, y_pred: Any) -> ContrastiveInputs:
        """The batch as the kernel takes it; see `ContrastiveInputs`."""
        raise NotImplementedError

    def bank_labels(self, y_true: Any) -> Any:
        """The checked labels of `y_true` in `y_pred`'s structure, as a memory bank stores them.

        They come back as `reference_labels` of `term_losses`.
        """
        raise NotImplementedError

    def reference_inputs(self, embeddings: Any, labels: Any) -> tuple[Any, list[Any]]:
        """Reference embeddings `(H, M, D)` and labels (one per head) from their structure."""
        raise NotImplementedError

    def combine(self, term_losses: Tensor) -> Tensor:
        """The loss from the reduced terms `(T,)` (or `(T, N)`): their sum by default."""
        return ops.sum(term_losses, axis=0)

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
            reference_labels: their labels, as `bank_labels` gives them;
                needed with `reference_embeddings`.
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
        inputs = self.contrastive_inputs(y_true, y_pred)
        anchors, anchor_labels = float_embeddings(inputs.embeddings), inputs.labels
        replicas = replica_count()
        candidates, candidate_labels, offset = anchors, anchor_labels, 0
        if replicas > 1:
            rows, candidate_labels = gather_across_replicas(
                (ops.swapaxes(anchors, 0, 1), anchor_labels)
            )
            candidates = ops.swapaxes(rows, 0, 1)
            offset = replica_offset(ops.shape(anchors)[1])
        candidate_mask = None
        if reference_embeddings is not None:
            references, labels = self.reference_inputs(reference_embeddings, reference_labels)
            candidates = ops.concatenate([candidates, ops.cast(references, anchors.dtype)], 1)
            candidate_labels = [
                ops.concatenate([own, ops.cast(other, own.dtype)], axis=0)
                for own, other in zip(candidate_labels, labels, strict=True)
            ]
            if reference_mask is not None:
                own = ops.ones((ops.shape(candidates)[1] - ops.shape(references)[1],), "bool")
                candidate_mask = ops.concatenate([own, ops.cast(reference_mask, "bool")], 0)
        inverse_t = inverse_temperature(inputs.temperature, anchors.dtype)
        block_rows = self.block_size or auto_block_rows(
            anchors.shape[1], candidates.shape[1], anchors.shape[0]
        )
        kernel_arguments = dict(
            binary=inputs.binary,
            normalization=self.normalization,
            anchor_offset=offset,
            candidate_mask=candidate_mask,
            block_rows=block_rows,
        )
        weights_fn = inputs.weights(anchor_labels, candidate_labels)
        one_block = block_rows is None or block_rows >= anchors.shape[1]
        if self.reduction in ("none", None) or inputs.shared_terms or one_block:
            losses, n_positives = supcon_rows(
                anchors, candidates, inverse_t, weights_fn, **kernel_arguments
            )
            return reduce_anchor_losses(losses, n_positives > 0, sample_weight, self.reduction)
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
        total, n_positives = supcon_rows(
            anchors,
            candidates,
            inverse_t,
            weights_fn,
            anchor_weights=anchor_weights,
            **kernel_arguments,
        )
        valid = n_positives > 0
        weights = ops.where(valid, anchor_weights, 0.0)
        return reduce_term_sums(total, valid, weights, self.reduction)

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
                "block_size": self.block_size,
                "dtype": self.dtype,
            }
        )
        return config
