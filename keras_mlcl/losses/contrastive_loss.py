"""What every contrastive loss of keras-mlcl shares: labels kept as given,
per-anchor losses, and reductions that average over valid anchors only."""

import keras
from keras import ops

from keras_mlcl.distribution import gather_across_replicas
from keras_mlcl.distribution import local_rows
from keras_mlcl.distribution import loss_scale_for_replicas
from keras_mlcl.distribution import replica_count
from keras_mlcl.ops.normalization import l2_normalize
from keras_mlcl.utils.backend_utils import as_tensor
from keras_mlcl.utils.backend_utils import concrete_numpy
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice

REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight", "sum", "none", None)


def reduce_anchor_losses(
    losses: Tensor,
    valid: Tensor,
    sample_weight: Tensor | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> Tensor:
    """Reduces per-anchor losses over the anchors that have positives.

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
    total = ops.sum(values, axis=-1)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        return ops.divide_no_nan(total, ops.sum(weights, axis=-1))
    n_valid = ops.sum(ops.cast(valid, losses.dtype), axis=-1)
    return ops.divide_no_nan(total, n_valid)


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


class ContrastiveLoss(keras.losses.Loss):
    """Base class: per-anchor contrastive losses with a validity mask.

    Subclasses implement `anchor_losses(y_true, y_pred) -> (losses, valid)`,
    with `(N,)` or `(H, N)` outputs (one row per term), and, for several
    terms, `combine(term_losses)` that turns the `(H,)` reduced terms (or
    `(H, N)` with `reduction="none"`) into the loss.

    Unlike `keras.losses.Loss`, labels are not cast to float: class ids stay
    integers on their way to the positive rule. The default reduction
    averages over *valid* anchors (those with at least one positive), so
    anchors without positives neither dilute the mean nor give NaN.

    Under data parallelism (a `tf.distribute` replica context, or a
    `torch.distributed` process group) the loss gathers `y_true`, `y_pred`
    and `sample_weight` across replicas, so each anchor is contrasted
    against the global batch and the value equals the single-device loss;
    each replica returns it times `loss_scale_for_replicas()` (Keras'
    convention on TensorFlow), and `reduction="none"` returns this
    replica's anchors. On JAX (`keras.distribution`) arrays are global
    already. See `keras_mlcl.distribution`.

    Args:
        reduction: see `reduce_anchor_losses`. Defaults to
            `"sum_over_batch_size"`, the mean over valid anchors.
        name: the loss name.
        dtype: the dtype of the returned loss. Defaults to `None` (floatx);
            similarities are always computed in float32.
    """

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        check_choice("reduction", reduction, REDUCTIONS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def anchor_losses(self, y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def combine(self, term_losses: Tensor) -> Tensor:
        return term_losses

    def __call__(
        self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
    ) -> Tensor:
        with keras.name_scope(self.name):
            replicas = replica_count()
            local_size = ops.shape(keras.tree.flatten(y_pred)[0])[0]
            y_true, y_pred, sample_weight = gather_across_replicas((y_true, y_pred, sample_weight))
            losses, valid = self.anchor_losses(y_true, y_pred)
            reduced = reduce_anchor_losses(losses, valid, sample_weight, self.reduction)
            value = self.combine(reduced)
            if replicas > 1:
                if self.reduction in ("none", None):
                    value = local_rows(value, local_size)
                else:
                    value = value * loss_scale_for_replicas()
            return ops.cast(value, self.dtype)
