"""The one SupCon kernel: `M` anchors against `N` candidates, one block of anchor rows at a time."""

from collections.abc import Callable

from keras import ops

from keras_mlcl import backend
from keras_mlcl.utils.types import Tensor

# Added to masked logits before `exp`: far below any similarity / tau that
# float32 can hold in a row, so `exp` gives exactly 0 (and a 0 gradient).
MASKED_LOGIT = -1e9

# Elements of one `(heads, rows, N)` buffer the automatic block size allows:
# 2**22 float32 values = 16 MB. Below it the whole matrix is one block.
BLOCK_ELEMENTS = 2**22

WeightsFn = Callable[[int | Tensor, int | None], Tensor]

# The backend's native kernel with the same contract, if it has one (torch).
NATIVE_KERNEL = backend.fast_supcon_rows()


def auto_block_rows(m: int | None, n: int | None, heads: int = 1) -> int | None:
    """The anchor rows per block that keep one `(heads, rows, n)` buffer within `BLOCK_ELEMENTS`.

    Args:
        m: the number of anchors, or None when unknown (traced).
        n: the number of candidates, or None when unknown.
        heads: the leading batch of heads (or weight sets).

    Returns:
        `m` (one block) when the whole `(heads, m, n)` matrix fits, else a
        multiple of 8 rows (at least 8); None (one block) when a size is unknown.

    Example:

    >>> auto_block_rows(1024, 1024)  # one block
    1024
    >>> auto_block_rows(16384, 16384)
    256
    """
    if m is None or n is None:
        return None
    if heads * m * n <= BLOCK_ELEMENTS:
        return m
    rows = BLOCK_ELEMENTS // (heads * n)
    return max(8, rows - rows % 8)


def take_rows(x: Tensor, start: int | Tensor, rows: int | None, axis: int = 0) -> Tensor:
    """`x[start:start + rows]` along `axis`, for a traced `start` too; `x` itself for `rows=None`.

    Args:
        x: a tensor.
        start: the first row, an int or a scalar tensor.
        rows: the number of rows (static), or None for all.
        axis: the axis of the rows. Defaults to 0.

    Returns:
        The rows, `rows` long on `axis`.
    """
    if rows is None:
        return x
    axis = axis % len(x.shape)
    begin = [0] * len(x.shape)
    begin[axis] = start
    shape = list(ops.shape(x))
    shape[axis] = rows
    return ops.slice(x, begin, shape)


def supcon_rows(
    anchors: Tensor,
    candidates: Tensor,
    inverse_temperature: Tensor,
    weights_fn: WeightsFn,
    binary: bool,
    normalization: str,
    anchor_offset: int | Tensor | None = 0,
    candidate_mask: Tensor | None = None,
    block_rows: int | None = None,
    anchor_weights: Tensor | None = None,
    native: bool = True,
) -> tuple[Tensor, Tensor]:
    """Weighted SupCon of every anchor against the candidates, block by block.

    For anchor `i` and weight set (term) `t`, with logits
    `l_ij = a_i . c_j / tau` over the candidates `j` that are not masked
    (the anchor itself, empty slots):

    ```
    loss_ti = (W_ti * logsumexp_j(l_ij) - sum_j w_tij l_ij) / n_ti
    ```

    where `W_ti = sum_j w_tij` and `n_ti` is `#{j : w_tij > 0}`
    (`normalization="count"`) or `W_ti` (`"weight"`); anchors with
    `n_ti = 0` have loss 0.

    The anchors are processed in blocks of `block_rows` rows. A block holds
    every candidate, so its log-sum-exp (with the row maximum subtracted)
    is complete in one pass, and its positive weights come from
    `weights_fn` for those rows only: no `M x N` matrix is ever held when
    there are several blocks (peak extra memory O(block_rows * N)). The
    gradient is written out in closed form, `d loss_ti / d l_ij =
    (W_ti p_ij - w_tij) / n_ti`, back through the similarity matmul to the
    anchors, the candidates and the inverse temperature. With one block the
    forward pass keeps its softmax for the backward pass (three matmuls in
    all, like the bare `a @ c.T` forward and backward); with several, the
    backward pass recomputes each block (four matmuls, bounded memory).

    Args:
        anchors: `(H, M, D)` float32 (or float64) embeddings.
        candidates: `(H, N, D)`, the same dtype.
        inverse_temperature: `1 / tau`, a scalar tensor or `(H, 1, 1)`.
        weights_fn: `weights_fn(start, rows)` returns the positive weights
            `(T, rows, N)` of anchors `start:start + rows` against every
            candidate, where `T == H`, or `H == 1` and `T` weight sets share
            one similarity matrix. `rows` is None for all anchors (`start`
            is then 0); `start` may be a traced scalar (use `take_rows`).
        binary: True when every weight is 0 or 1 (`n_ti = W_ti` then).
        normalization: `"count"` or `"weight"`.
        anchor_offset: anchor `i` is candidate `anchor_offset + i` (a
            masked pair), or None when the anchors are not candidates.
        candidate_mask: optional booleans, False for empty slots: `(N,)`,
            or `(H, N)` for slots that differ per head.
        block_rows: anchor rows per block; None for one block.
        anchor_weights: optional `(T, M)` constant weights `s_ti` of the
            anchors (sample weights; 0 drops an anchor), for heads `T == H`.
            The kernel then returns the weighted sums
            `sum_i s_ti loss_ti` `(T,)` instead of the per-anchor losses, and
            computes their gradient in the forward pass, block by block
            (three matmuls in all, like the bare `a @ c.T` forward and
            backward, whatever the number of blocks); the backward pass
            only scales it (the native torch kernel computes the per-anchor
            losses and sums them). Defaults to None.
        native: use the backend's native kernel, where it has one (torch:
            `keras_mlcl.backend.torch_supcon`, equal to this one in tests),
            for one block. Defaults to True; False runs the `keras.ops`
            kernel.

    Returns:
        `(loss, n_positives)`, both `(T, M)`; `loss` is `(T,)` sums with
        `anchor_weights`.
    """
    num_anchors = anchors.shape[-2]
    one_block = block_rows is None or num_anchors is None or block_rows >= num_anchors
    # The native kernel serves one block (small batches, where per-op
    # dispatch costs most); over several blocks the keras.ops loop holds
    # less memory on torch (measured: 350-400 MB against 950-1200 MB at
    # N = 16384, from the allocator's fragmentation over many block buffers).
    if native and NATIVE_KERNEL is not None and one_block:
        loss, n_positives = NATIVE_KERNEL(
            anchors,
            candidates,
            inverse_temperature,
            weights_fn,
            binary,
            normalization,
            anchor_offset=anchor_offset,
            candidate_mask=candidate_mask,
            block_rows=block_rows,
        )
        if anchor_weights is None:
            return loss, n_positives
        weighted = ops.where(n_positives > 0, ops.cast(anchor_weights, loss.dtype) * loss, 0.0)
        return ops.sum(weighted, axis=-1), n_positives
    if one_block:
        rows = None
        num_blocks = 1
    else:
        rows = block_rows
        num_blocks = -(-num_anchors // rows)
    dtype = anchors.dtype
    heads = anchors.shape[0]
    if heads == 1:
        # One head: 2-D matmuls and row passes (XLA's batched forms of them
        # cost up to 3x on CPU); the terms' weights broadcast against them.
        anchors, candidates = anchors[0], candidates[0]
        inverse_temperature = ops.reshape(inverse_temperature, ())
        if candidate_mask is not None and len(candidate_mask.shape) == 2:
            candidate_mask = candidate_mask[0]
        head_weights_fn = weights_fn

        def weights_fn(start, rows):
            w = head_weights_fn(start, rows)
            return w[0] if w.shape[0] == 1 else w

    def block_start(k):
        """Block `k`'s first row; the last block ends at the last anchor (it may overlap)."""
        return ops.minimum(k * rows, num_anchors - rows)

    def excluded_pairs(start, count, n):
        """`(rows, N)` booleans of masked pairs for anchors `start:start+count`, or None."""
        excluded = None
        if anchor_offset is not None:
            anchor_index = ops.arange(count, dtype="int32") + ops.cast(anchor_offset, "int32")
            anchor_index = anchor_index + ops.cast(start, "int32")
            excluded = ops.equal(anchor_index[:, None], ops.arange(n, dtype="int32")[None, :])
        if candidate_mask is not None:
            empty = ops.logical_not(ops.cast(candidate_mask, "bool"))
            empty = empty[:, None, :] if len(empty.shape) == 2 else empty[None, :]
            excluded = empty if excluded is None else ops.logical_or(excluded, empty)
        return excluded

    def block(a, c, t, start):
        """The loss of one block of anchors `a` (from row `start`) and what its gradient needs."""
        logits = ops.matmul(a * t, ops.swapaxes(c, -1, -2))
        excluded = excluded_pairs(start, ops.shape(a)[-2], ops.shape(c)[-2])
        if excluded is not None:
            logits = ops.where(excluded, MASKED_LOGIT, logits)
        shifted = logits - ops.max(logits, axis=-1, keepdims=True)
        exp_shifted = ops.exp(shifted)
        # >= 1: the row maximum contributes exp(0) (a masked one, for N = 1).
        denominator = ops.sum(exp_shifted, axis=-1)
        w = ops.cast(weights_fn(start, rows), dtype)
        if excluded is not None:
            w = ops.where(excluded, 0.0, w)
        weight_sum = ops.sum(w, axis=-1)
        if binary or normalization == "weight":
            n_positives = weight_sum
        else:
            # |{j : w_ij > 0}| for non-negative weights, without a bool copy.
            n_positives = ops.sum(ops.sign(w), axis=-1)
        valid = n_positives > 0
        safe_n = ops.where(valid, n_positives, 1.0)
        raw = weight_sum * ops.log(denominator) - ops.sum(w * shifted, axis=-1)
        loss = ops.where(valid, raw / safe_n, 0.0)
        kept = (exp_shifted, denominator, w, weight_sum, valid, safe_n)
        return ops.stack([loss, ops.broadcast_to(n_positives, ops.shape(loss))]), kept

    def block_gradient(a, c, t, coefficient, kept):
        """`(d a, d c, d t)` of one block; `coefficient` is `d loss / d loss_ti` over `n_ti`."""
        exp_shifted, denominator, w, weight_sum, valid, _ = kept
        coefficient = ops.where(valid, coefficient, 0.0)
        # d loss / d logits = sum_t c_ti (W_ti p_ij - w_tij), the terms summed
        # first when they share one similarity matrix.
        scale = coefficient * weight_sum
        w_part = ops.expand_dims(coefficient, -1) * w
        if len(w.shape) > len(exp_shifted.shape):
            scale = ops.sum(scale, axis=0)
            w_part = ops.sum(w_part, axis=0)
        g = ops.expand_dims(scale / denominator, -1) * exp_shifted - w_part
        m = ops.matmul(g, c)
        to_candidates = ops.matmul(ops.swapaxes(g, -1, -2), a)
        # d loss / d t = sum_ij g_ij a_i.c_j = sum_i a_i . m_i
        if len(t.shape) == 0:
            to_t = ops.sum(a * m)
        else:
            to_t = ops.sum(a * m, axis=(-2, -1), keepdims=True)
        return m * t, to_candidates * t, to_t

    def rows_of(x, start):
        return take_rows(x, start, rows, axis=-2)

    def one_block_kernel(a, c, t):
        stacked, kept = block(a, c, t, 0)

        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return block_gradient(a, c, t, upstream[0] / kept[5], kept)

        return stacked, gradient

    def blocks_kernel(a, c, t):
        # A loop (not unrolled code), so that the compilers keep one block alive at a time.
        def forward_step(k, stacked):
            start = block_start(k)
            values, _ = block(rows_of(a, start), c, t, start)
            return ops.slice_update(stacked, _at(len(stacked.shape), -1, start), values)

        first, _ = block(rows_of(a, 0), c, t, 0)
        stacked = ops.zeros((*first.shape[:-1], num_anchors), dtype)
        first_at = _at(len(stacked.shape), -1, 0)
        stacked = backend.fori_loop(
            1, num_blocks, forward_step, ops.slice_update(stacked, first_at, first)
        )

        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args

            def backward_step(i, carry):
                grad_a, grad_c, grad_t = carry
                # Last block first: rows it shares with the block before it get
                # no gradient here, and that block writes theirs afterwards.
                k = num_blocks - 1 - i
                start = block_start(k)
                a_block = rows_of(a, start)
                _, kept = block(a_block, c, t, start)
                own = ops.arange(rows, dtype="int32") + ops.cast(start, "int32") >= k * rows
                upstream_rows = take_rows(upstream[0], start, rows, axis=-1)
                coefficient = ops.where(own, upstream_rows / kept[5], 0.0)
                part_a, part_c, part_t = block_gradient(a_block, c, t, coefficient, kept)
                grad_a = ops.slice_update(grad_a, _at(len(a.shape), -2, start), part_a)
                return grad_a, grad_c + part_c, grad_t + part_t

            initial = (ops.zeros_like(a), ops.zeros_like(c), ops.zeros_like(t))
            return backend.fori_loop(0, num_blocks, backward_step, initial)

        return stacked, gradient

    def summed_kernel(a, c, t, weights):
        # The last block first: rows it shares with the block before it count
        # there (weight 0 here, and that block overwrites their rows after).
        def step(i, carry):
            sums, counts, grad_a, grad_c, grad_t = carry
            k = num_blocks - 1 - i
            start = 0 if rows is None else block_start(k)
            a_block = rows_of(a, start)
            values, kept = block(a_block, c, t, start)
            s_rows = take_rows(weights, start, rows, axis=-1)
            if rows is not None:
                own = ops.arange(rows, dtype="int32") + ops.cast(start, "int32") >= k * rows
                s_rows = ops.where(own, s_rows, 0.0)
            sums = sums + ops.sum(ops.where(kept[4], s_rows * values[0], 0.0), axis=-1)
            counts = ops.slice_update(counts, _at(len(counts.shape), -1, start), values[1])
            part_a, part_c, part_t = block_gradient(a_block, c, t, s_rows / kept[5], kept)
            grad_a = ops.slice_update(grad_a, _at(len(a.shape), -2, start), part_a)
            return sums, counts, grad_a, grad_c + part_c, grad_t + part_t

        initial = (
            ops.zeros(weights.shape[:-1], dtype),
            ops.zeros(weights.shape, dtype),
            ops.zeros_like(a),
            ops.zeros_like(c),
            ops.zeros_like(t),
        )
        if num_blocks == 1:
            sums, counts, grad_a, grad_c, grad_t = step(0, initial)
        else:
            sums, counts, grad_a, grad_c, grad_t = backend.fori_loop(0, num_blocks, step, initial)

        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            u = upstream[..., -1]
            u_rows = ops.reshape(u, (-1, 1, 1)) if len(a.shape) == 3 else ops.reshape(u, ())
            u_t = u_rows if len(t.shape) else ops.reshape(u, ())
            return grad_a * u_rows, grad_c * u_rows, grad_t * u_t, None

        return ops.concatenate([counts, ops.expand_dims(sums, -1)], axis=-1), gradient

    if anchor_weights is not None:
        weights = ops.cast(anchor_weights, dtype)
        if heads == 1:
            weights = weights[0]
        packed = ops.custom_gradient(summed_kernel)(
            anchors, candidates, inverse_temperature, weights
        )
        if len(packed.shape) == 1:
            packed = packed[None]
        return packed[:, -1], packed[:, :-1]

    kernel = one_block_kernel if num_blocks == 1 else blocks_kernel
    stacked = ops.custom_gradient(kernel)(anchors, candidates, inverse_temperature)
    if len(stacked.shape) == 2:  # one head, one term
        stacked = stacked[:, None]
    return stacked[0], stacked[1]


def _at(rank, axis, start):
    """The `start_indices` of `ops.slice_update` for `start` on `axis`, 0 elsewhere."""
    begin = [0] * rank
    begin[axis % rank] = start
    return begin
