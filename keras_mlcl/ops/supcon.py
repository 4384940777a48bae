"""The weighted supervised-contrastive kernel every loss is built on."""

from typing import Any

from keras import ops

from keras_mlcl.utils.backend_utils import as_tensor
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice

NORMALIZATIONS = ("count", "weight")

# Added to the masked diagonal before `exp`: far below any similarity / tau
# that float32 can hold in a row, so `exp` gives exactly 0 (and a 0 gradient).
_MASKED_LOGIT = -1e9


def supcon_from_weights(
    z: Tensor,
    w: Tensor,
    temperature: float | Tensor,
    normalization: str = "count",
    reference: Tensor | None = None,
    reference_weights: Tensor | None = None,
    reference_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-anchor supervised contrastive loss from a positive-weight matrix.

    For every anchor `i` the loss is the weighted negative log-probability of
    its positives under a softmax over all other samples:

    ```
    log p_ij = z_i . z_j / tau - log sum_{a != i} exp(z_i . z_a / tau)
    loss_i   = - sum_{j in P(i)} w_ij log p_ij / n_i
    ```

    where:
    - `P(i) = {j != i : w_ij > 0}`, the positives of anchor `i`;
    - `n_i = |P(i)|` for `normalization="count"`, `sum_j w_ij` for
      `normalization="weight"`.

    The diagonal of `w` is ignored: a sample is never its own positive nor in
    its own denominator. Anchors without positives are *invalid*: their loss
    is 0 and `valid` is False. Similarities and the log-softmax are computed
    in float32 (float64 inputs stay float64), with the row maximum
    subtracted, so float16/bfloat16 embeddings and small temperatures give
    finite values and gradients.

    The batched form computes several heads with one batched matmul: `z` of
    shape `(H, N, D)`, `w` of shape `(H, N, N)` and `temperature` of shape
    `(H,)`. Several positive sets over the same embeddings (HiMulCon's
    levels) use `z` of shape `(N, D)` with `w` of shape `(H, N, N)`: the
    log-softmax is then computed once and shared.

    Without references the gradient is written out in closed form (one
    custom gradient, no autodiff through the `N x N` intermediates):
    `d loss_i / d logit_ij = (W_i p_ij - w_ij) / n_i` with `W_i = sum_j w_ij`,
    back through the similarity matmul, and to the temperature. `w` is
    treated as a constant (it comes from labels): no gradient reaches it.

    Reference embeddings (a memory bank of past batches, MoCo / XBM style)
    are extra samples that every anchor is contrasted against, in its
    denominator and, where `reference_weights > 0`, as positives; they are
    never anchors themselves. The result equals the first `N` rows of the
    loss on the concatenated batch `[z; reference]`.

    Args:
        z: L2-normalised embeddings, `(N, D)` or `(H, N, D)`.
        w: non-negative positive weights, `(N, N)` or `(H, N, N)`.
        temperature: a positive float, or a `(H,)` tensor of them.
        normalization: `"count"` (default) or `"weight"`.
        reference: optional L2-normalised reference embeddings, `(M, D)`
            or `(H, M, D)`. Defaults to None (the batch only).
        reference_weights: positive weights of anchors to references,
            `(N, M)` or `(H, N, M)` (same rank as `w`); needed with
            `reference`.
        reference_mask: optional booleans `(M,)` or `(H, M)`: False marks
            an empty slot, neither positive nor in the denominator.
            Defaults to None (every reference counts).

    Returns:
        A tuple `(loss, valid)`: the per-anchor losses, `(N,)` or `(H, N)`,
        0 for invalid anchors, and a boolean tensor of the same shape.

    Example:

    >>> z = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 0.0],
    ...                                  [0.0, 1.0], [0.0, 1.0]])
    >>> w = positive_weights(keras.ops.convert_to_tensor([0, 0, 1, 1]), "equal")
    >>> loss, valid = supcon_from_weights(z, w, temperature=1.0)
    >>> # every anchor: log(1 + 2 * exp(-1)) = 0.551445
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    if (reference is None) != (reference_weights is None):
        raise ValueError(
            "`reference` and `reference_weights` go together: pass both or neither. "
            f"Received: `reference` {'is None' if reference is None else 'given'}, "
            f"`reference_weights` {'is None' if reference_weights is None else 'given'}"
        )
    z = as_tensor(z)
    if z.dtype not in ("float32", "float64"):
        z = ops.cast(z, "float32")
    dtype = z.dtype
    w = ops.cast(w, dtype)
    n = ops.shape(z)[-2]
    inverse_temperature = 1.0 / ops.cast(temperature, dtype)
    if len(ops.shape(inverse_temperature)) == 1:
        inverse_temperature = ops.reshape(inverse_temperature, (-1, 1, 1))
    if reference is None:
        statistics = _batch_kernel(normalization)(z, w, inverse_temperature)
        return statistics[0], statistics[1] > 0

    logits = ops.matmul(z, ops.swapaxes(z, -1, -2))
    logits = logits * inverse_temperature

    diagonal = ops.eye(n, dtype="bool")
    masked_logits = ops.where(diagonal, _MASKED_LOGIT, logits)
    reference_logits, reference_weights = _reference_terms(
        z, reference, reference_weights, reference_mask, inverse_temperature
    )
    masked_logits = ops.concatenate([masked_logits, reference_logits], axis=-1)
    row_max = ops.stop_gradient(ops.max(masked_logits, axis=-1, keepdims=True))
    shifted = masked_logits - row_max
    # Every row with another sample holds its own maximum, so the sum is
    # >= 1; the floor only matters for a batch of one (no valid anchor).
    log_denominator = ops.log(ops.maximum(ops.sum(ops.exp(shifted), axis=-1), 1.0))

    w = ops.where(diagonal, ops.zeros_like(w), w)
    w = ops.concatenate([w, reference_weights], axis=-1)
    weight_sum = ops.sum(w, axis=-1)
    weighted_shifted = ops.sum(w * shifted, axis=-1)
    if normalization == "count":
        n_positives = ops.sum(ops.cast(w > 0, dtype), axis=-1)
    else:
        n_positives = weight_sum
    valid = n_positives > 0
    raw = weight_sum * log_denominator - weighted_shifted
    loss = ops.where(valid, raw / ops.where(valid, n_positives, 1.0), 0.0)
    return loss, valid


def _reference_terms(z, reference, reference_weights, reference_mask, inverse_temperature):
    """Anchor-to-reference logits and weights, empty slots masked out."""
    dtype = z.dtype
    reference = ops.cast(as_tensor(reference), dtype)
    reference_weights = ops.cast(reference_weights, dtype)
    logits = ops.matmul(z, ops.swapaxes(reference, -1, -2)) * inverse_temperature
    if reference_mask is not None:
        present = ops.expand_dims(ops.cast(reference_mask, "bool"), -2)
        logits = ops.where(present, logits, _MASKED_LOGIT)
        reference_weights = ops.where(present, reference_weights, 0.0)
    return logits, reference_weights


_BATCH_KERNELS: dict[str, Any] = {}


def _batch_kernel(normalization):
    """The fused kernel over the batch (no references), with its own gradient.

    Returns a function `(z, w, inverse_temperature) -> stacked` where
    `stacked[0]` is the per-anchor loss and `stacked[1]` the number (or
    weight) of positives, `n_i`. Forward: one matmul and one masked
    log-softmax pass; backward: two matmuls with `G = d loss / d logits`,
    no transposed copy of `G`.
    """
    if normalization in _BATCH_KERNELS:
        return _BATCH_KERNELS[normalization]

    def kernel(z, w, inverse_temperature):
        n = ops.shape(z)[-2]
        logits = ops.matmul(z * inverse_temperature, ops.swapaxes(z, -1, -2))
        diagonal = ops.eye(n, dtype="bool")
        masked = ops.where(diagonal, _MASKED_LOGIT, logits)
        shifted = masked - ops.max(masked, axis=-1, keepdims=True)
        exp_shifted = ops.exp(shifted)
        # >= 1: the row maximum contributes exp(0) (the diagonal, for N = 1).
        denominator = ops.sum(exp_shifted, axis=-1)
        w = ops.where(diagonal, 0.0, w)
        weight_sum = ops.sum(w, axis=-1)
        if normalization == "count":
            # |{j : w_ij > 0}| for non-negative weights, without a bool copy.
            n_positives = ops.sum(ops.sign(w), axis=-1)
        else:
            n_positives = weight_sum
        valid = n_positives > 0
        safe_n = ops.where(valid, n_positives, 1.0)
        raw = weight_sum * ops.log(denominator) - ops.sum(w * shifted, axis=-1)
        loss = ops.where(valid, raw / safe_n, 0.0)

        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            coefficient = ops.where(valid, upstream[0] / safe_n, 0.0)
            # d loss / d logits = c_i (W_i exp_ij / denominator_i - w_ij)
            g = ops.expand_dims(coefficient * weight_sum / denominator, -1) * exp_shifted
            g = g - ops.expand_dims(coefficient, -1) * w
            # logits = t z z^T: the rows and the columns both lead back to z.
            m = ops.matmul(g, z) + ops.matmul(ops.swapaxes(g, -1, -2), z)
            grad_z = m * inverse_temperature
            if len(grad_z.shape) > len(z.shape):  # shared z, several weight sets
                grad_z = ops.sum(grad_z, axis=0)
            # d loss / d t = sum_ij g_ij z_i.z_j = sum_i z_i . m_i / 2
            if len(inverse_temperature.shape) == 0:
                grad_t = 0.5 * ops.sum(z * m)
            else:
                grad_t = 0.5 * ops.sum(z * m, axis=(-2, -1), keepdims=True)
            return grad_z, None, grad_t

        return ops.stack([loss, ops.broadcast_to(n_positives, ops.shape(loss))]), gradient

    _BATCH_KERNELS[normalization] = ops.custom_gradient(kernel)
    return _BATCH_KERNELS[normalization]
