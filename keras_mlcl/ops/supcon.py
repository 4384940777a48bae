"""The weighted supervised-contrastive kernel every loss is built on."""

from keras import ops

from keras_mlcl.utils.validation import check_choice

NORMALIZATIONS = ("count", "weight")

# Added to the masked diagonal before `exp`: far below any similarity / tau
# that float32 can hold in a row, so `exp` gives exactly 0 (and a 0 gradient).
_MASKED_LOGIT = -1e9


def supcon_from_weights(z, w, temperature, normalization="count"):
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

    Args:
        z: L2-normalised embeddings, `(N, D)` or `(H, N, D)`.
        w: non-negative positive weights, `(N, N)` or `(H, N, N)`.
        temperature: a positive float, or a `(H,)` tensor of them.
        normalization: `"count"` (default) or `"weight"`.

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
    z = ops.convert_to_tensor(z)
    if z.dtype not in ("float32", "float64"):
        z = ops.cast(z, "float32")
    dtype = z.dtype
    w = ops.cast(w, dtype)
    n = ops.shape(z)[-2]

    logits = ops.matmul(z, ops.swapaxes(z, -1, -2))
    inverse_temperature = 1.0 / ops.cast(temperature, dtype)
    if len(ops.shape(inverse_temperature)) == 1:
        inverse_temperature = ops.reshape(inverse_temperature, (-1, 1, 1))
    logits = logits * inverse_temperature

    diagonal = ops.eye(n, dtype="bool")
    masked_logits = ops.where(diagonal, _MASKED_LOGIT, logits)
    row_max = ops.stop_gradient(ops.max(masked_logits, axis=-1, keepdims=True))
    shifted = masked_logits - row_max
    # Every row with another sample holds its own maximum, so the sum is
    # >= 1; the floor only matters for a batch of one (no valid anchor).
    log_denominator = ops.log(ops.maximum(ops.sum(ops.exp(shifted), axis=-1), 1.0))

    w = ops.where(diagonal, ops.zeros_like(w), w)
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
