"""The one SupCon kernel: `M` anchors against `N` candidates, one block of anchor rows at a time.

Read from the top: `supcon_rows` prepares the call and picks a kernel (the backend's native
one, or one of three `keras.ops` kernels); each kernel wires a loop over blocks into
`keras.ops.custom_gradient`; every block runs its similarities (`_logits`), the row passes
over them (`_block_terms`: log-sum-exp, weighted positives) and its gradient in closed form
(`_pair_gradient`, then `_through_matmul`): `_block_forward` / `_block_backward` for a block
kept between the passes, `_block_losses` and `_block_gradient` in the loops.
`docs/kernel.md` tells why it is built this way.
"""

import dataclasses
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

from keras import ops

from keras_mlcl import backend
from keras_mlcl.ops.positives import rule_weights
from keras_mlcl.utils.types import Tensor

# Added to masked logits before `exp`: far below any similarity / tau that
# float32 can hold in a row, so `exp` gives exactly 0 (and a 0 gradient).
MASKED_LOGIT = -1e9

# Elements of one `(heads, rows, N)` buffer the automatic block size allows:
# 2**22 float32 values = 16 MB. Below it the whole matrix is one block, unless XLA compiles.
# (A TensorFlow graph without XLA fuses each block's passes on its own, see
# `backend.fuse_elementwise`: 2 heads at N = 1024 took 6.9 ms as one block, 7.5 ms in 4.)
BLOCK_ELEMENTS = 2**22

# Where XLA compiles the whole `keras.ops` kernel (`backend.compiled_by_xla`), it keeps a
# block's buffers in the CPU's cache: the whole matrix is one block up to 2**20 values
# (4 MB), and blocks have at most 256 rows. As one 16 MB block, 2 heads at N = 1024 took
# 1.8x and 4 heads 1.8x the time of 256-row blocks on JAX (one head at N = 2048: 1.6x;
# at N = 4096 with 1024-row blocks: 1.25x).
CACHED_BLOCK_ELEMENTS = 2**20
MAX_CACHED_BLOCK_ROWS = 256

WeightsFn = Callable[[int | Tensor, int | None], Tensor]

# A kernel's gradient function, `gradient(*upstream, upstream=None)` (see `_upstream`).
GradientFn = Callable[..., Any]

# The backend's native kernel with the same contract, if it has one (torch).
NATIVE_KERNEL = backend.fast_supcon_rows()


def auto_block_rows(m: int | None, n: int | None, heads: int = 1) -> int | None:
    """The anchor rows per block that keep one `(heads, rows, n)` buffer within `BLOCK_ELEMENTS`.

    Where XLA compiles the `keras.ops` kernel (no native one; `backend.compiled_by_xla`),
    the whole matrix is one block only up to `CACHED_BLOCK_ELEMENTS`, and blocks have at
    most `MAX_CACHED_BLOCK_ROWS` rows, so that their buffers stay in the CPU's cache.

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
    cached = NATIVE_KERNEL is None and backend.compiled_by_xla()
    if heads * m * n <= (CACHED_BLOCK_ELEMENTS if cached else BLOCK_ELEMENTS):
        return m
    rows = BLOCK_ELEMENTS // (heads * n)
    if cached:
        rows = min(rows, MAX_CACHED_BLOCK_ROWS)
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
    class_ids: tuple[list[Tensor], list[Tensor]] | None = None,
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
            only scales it. Defaults to None.
        native: use the backend's native kernel, where it has one (torch:
            `keras_mlcl.backend.torch_supcon`, equal to this one in tests).
            Defaults to True; False runs the `keras.ops` kernel.
        class_ids: None, or `(anchor_ids, candidate_ids)`, one tensor of
            class ids per head, when every head's weights are the `"equal"`
            rule on them (`T == H`): the native kernel then sums the
            positives per class, and the `keras.ops` kernel compares the
            ids within its fused passes, instead of calling `weights_fn`.
            Defaults to None.

    Returns:
        `(loss, n_positives)`, both `(T, M)`; `loss` is `(T,)` sums with
        `anchor_weights`.

    Example:

    >>> z = ops.convert_to_tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    >>> labels = ops.convert_to_tensor([0, 0, 1, 1])
    >>> def weights_fn(start, rows):
    ...     anchor_labels = take_rows(labels, start, rows)
    ...     return ops.cast(anchor_labels[:, None] == labels[None, :], "float32")[None]
    >>> loss, n_positives = supcon_rows(
    ...     z, z, ops.convert_to_tensor(1.0), weights_fn, binary=True, normalization="count"
    ... )
    >>> ops.convert_to_numpy(loss).round(4)  # every anchor: log(1 + 2 exp(-1))
    array([[0.5514, 0.5514, 0.5514, 0.5514]], dtype=float32)
    >>> ops.convert_to_numpy(n_positives)
    array([[1., 1., 1., 1.]], dtype=float32)
    """
    if native and NATIVE_KERNEL is not None:
        if anchor_weights is not None:
            anchor_weights = ops.cast(anchor_weights, anchors.dtype)
        return NATIVE_KERNEL(
            anchors,
            candidates,
            inverse_temperature,
            weights_fn,
            binary,
            normalization,
            anchor_offset=anchor_offset,
            candidate_mask=candidate_mask,
            block_rows=block_rows,
            anchor_weights=anchor_weights,
            class_ids=class_ids,
        )
    num_anchors = anchors.shape[-2]
    one_block = block_rows is None or num_anchors is None or block_rows >= num_anchors
    dtype = anchors.dtype
    one_head = anchors.shape[0] == 1
    if anchor_weights is not None and not one_head and len(inverse_temperature.shape) == 0:
        # One temperature for every head: the summed kernel's gradient in it is per head,
        # each scaled by its own upstream value (summed back over the heads by autodiff).
        inverse_temperature = ops.broadcast_to(
            ops.reshape(inverse_temperature, (1, 1, 1)), (anchors.shape[0], 1, 1)
        )
    if one_head:
        # One head: 2-D matmuls and row passes (XLA's batched forms of them
        # cost up to 3x on CPU); the terms' weights broadcast against them.
        anchors, candidates = anchors[0], candidates[0]
        inverse_temperature = ops.reshape(inverse_temperature, ())
        if candidate_mask is not None and len(candidate_mask.shape) == 2:
            candidate_mask = candidate_mask[0]
    kernel = _Kernel(
        weights_fn=weights_fn,
        binary=binary,
        normalization=normalization,
        anchor_offset=anchor_offset,
        candidate_mask=candidate_mask,
        one_head=one_head,
        dtype=dtype,
        num_anchors=num_anchors,
        rows=None if one_block else block_rows,
        num_blocks=1 if one_block else -(-num_anchors // block_rows),
        class_ids=class_ids,
    )
    tensors = (anchors, candidates, inverse_temperature)

    if anchor_weights is not None:
        weights = ops.cast(anchor_weights, kernel.dtype)
        if one_head:
            weights = weights[0]
        packed = _with_custom_gradient(_summed_kernel, kernel, *tensors, weights)
        if len(packed.shape) == 1:
            packed = packed[None]
        return packed[:, -1], packed[:, :-1]

    per_anchor = _one_block_kernel if kernel.num_blocks == 1 else _blocks_kernel
    stacked = _with_custom_gradient(per_anchor, kernel, *tensors)
    if len(stacked.shape) == 2:  # one head, one term
        stacked = stacked[:, None]
    return stacked[0], stacked[1]


@dataclasses.dataclass(frozen=True)
class _Kernel:
    """What every block of one `supcon_rows` call shares (its arguments, and the blocks).

    `one_head`: the anchors and candidates were taken 2-D (`(M, D)`, `(N, D)`) and weights
    of one term are squeezed to `(rows, N)` to match. `rows`: anchors per block, None for
    one block of every anchor; the last block ends at the last anchor, so it may overlap
    the block before it (see `_block_start`). `class_ids`: see `supcon_rows`.
    """

    weights_fn: WeightsFn
    binary: bool
    normalization: str
    anchor_offset: int | Tensor | None
    candidate_mask: Tensor | None
    one_head: bool
    dtype: Any
    num_anchors: int | None
    rows: int | None
    num_blocks: int
    class_ids: tuple[list[Tensor], list[Tensor]] | None = None


class _BlockState(NamedTuple):
    """What `_block_forward` keeps of one block for `_block_backward`, `(T or H, rows[, N])`."""

    exp_shifted: Tensor  # exp(l_ij - max_j l_ij), 0 for masked pairs
    denominator: Tensor  # sum_j exp(l_ij - max_j l_ij), >= 1
    weights: Tensor  # w_tij, 0 for masked pairs
    weight_sum: Tensor  # W_ti
    valid: Tensor  # n_ti > 0
    safe_n: Tensor  # n_ti, or 1 where it is 0


# One block: the forward pass and its gradient.


def _block_forward(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, start: int | Tensor
) -> tuple[Tensor, _BlockState]:
    """The losses of one block of anchors `a` (rows `start:`) and what its gradient needs.

    ```
    l_ij    = t a_i . c_j                          (masked pairs: MASKED_LOGIT)
    loss_ti = (W_ti log sum_j exp(l_ij - m_i) - sum_j w_tij (l_ij - m_i)) / n_ti
    ```

    where `m_i = max_j l_ij` (the same loss as with `l_ij`, without overflow).

    Returns:
        `(stacked, state)`: `stacked` holds `[loss, n_positives]` on a new first axis
        (`(2, T, rows)`, or `(2, rows)` for one head and one term), `state` a `_BlockState`.
    """
    terms = backend.fuse_elementwise(lambda x, s, w: _block_terms(kernel, x, s, w))
    return terms(_logits(a, c, t), start, _given_weights(kernel, start))


def _block_losses(kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, start: int | Tensor) -> Tensor:
    """The `stacked` losses and counts of `_block_forward` alone."""
    terms = backend.fuse_elementwise(lambda x, s, w: _block_terms(kernel, x, s, w)[0])
    return terms(_logits(a, c, t), start, _given_weights(kernel, start))


def _block_gradient(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, start: int | Tensor, upstream: Tensor
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """`_block_forward`'s `stacked`, and `(d a, d c, d t)` for `upstream` `d total / d loss`
    of the block's rows (`(T, rows)`), in one pass over the block's logits."""

    def terms(
        logits: Tensor, start: int | Tensor, w: Tensor | None, upstream: Tensor
    ) -> tuple[Tensor, Tensor]:
        stacked, state = _block_terms(kernel, logits, start, w)
        return stacked, _pair_gradient(upstream / state.safe_n, state)

    fused = backend.fuse_elementwise(terms)
    stacked, g = fused(_logits(a, c, t), start, _given_weights(kernel, start), upstream)
    return stacked, _through_matmul(a, c, t, g)


def _logits(a: Tensor, c: Tensor, t: Tensor) -> Tensor:
    """`l = t A C^T`, the block's logits before masking."""
    return ops.matmul(a * t, ops.swapaxes(c, -1, -2))


def _block_terms(
    kernel: _Kernel, logits: Tensor, start: int | Tensor, w: Tensor | None
) -> tuple[Tensor, _BlockState]:
    """`_block_forward` after its matmul: the row passes over the block's `logits`, with its
    positive weights `w` (`_given_weights`), or those of the class ids when `w` is None."""
    excluded = _masked_pairs(kernel, start, ops.shape(logits)[-2], ops.shape(logits)[-1])
    if excluded is not None:
        logits = ops.where(excluded, MASKED_LOGIT, logits)
    shifted = logits - ops.max(logits, axis=-1, keepdims=True)
    exp_shifted = ops.exp(shifted)
    # >= 1: the row maximum contributes exp(0) (a masked one, for N = 1).
    denominator = ops.sum(exp_shifted, axis=-1)
    w = _class_weights(kernel, start) if w is None else w
    if excluded is not None:
        w = ops.where(excluded, 0.0, w)
    weight_sum = ops.sum(w, axis=-1)
    if kernel.binary or kernel.normalization == "weight":
        n_positives = weight_sum
    else:
        # |{j : w_ij > 0}| for non-negative weights, without a bool copy.
        n_positives = ops.sum(ops.sign(w), axis=-1)
    valid = n_positives > 0
    safe_n = ops.where(valid, n_positives, 1.0)
    raw = weight_sum * ops.log(denominator) - ops.sum(w * shifted, axis=-1)
    loss = ops.where(valid, raw / safe_n, 0.0)
    state = _BlockState(exp_shifted, denominator, w, weight_sum, valid, safe_n)
    return ops.stack([loss, ops.broadcast_to(n_positives, ops.shape(loss))]), state


def _block_backward(
    a: Tensor, c: Tensor, t: Tensor, coefficient: Tensor, state: _BlockState
) -> tuple[Tensor, Tensor, Tensor]:
    """`(d a, d c, d t)` of one block, in closed form (see `_pair_gradient`)."""
    g = backend.fuse_elementwise(_pair_gradient)(coefficient, state)
    return _through_matmul(a, c, t, g)


def _pair_gradient(coefficient: Tensor, state: _BlockState) -> Tensor:
    """`G`, the gradient with respect to the block's logits:

    ```
    G_ij  = sum_t u_ti (W_ti p_ij - w_tij)      p_ij = exp(l_ij - m_i) / denominator_i
    ```

    where `u_ti = coefficient` is `d total / d loss_ti` over `n_ti` (0 for anchors without
    positives), and the terms are summed first when they share one similarity matrix.
    """
    exp_shifted, denominator, w, weight_sum, valid, _ = state
    coefficient = ops.where(valid, coefficient, 0.0)
    scale = coefficient * weight_sum
    w_part = ops.expand_dims(coefficient, -1) * w
    if len(w.shape) > len(exp_shifted.shape):
        scale = ops.sum(scale, axis=0)
        w_part = ops.sum(w_part, axis=0)
    return ops.expand_dims(scale / denominator, -1) * exp_shifted - w_part


def _through_matmul(a: Tensor, c: Tensor, t: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`(d a, d c, d t)` from `G` (see `_pair_gradient`), back through `l = t A C^T`:

    ```
    d a   = t G C,   d c = t G^T A,   d t = sum_i a_i . (G C)_i
    ```
    """
    m = ops.matmul(g, c)
    to_candidates = ops.matmul(ops.swapaxes(g, -1, -2), a)
    # d loss / d t = sum_ij g_ij a_i.c_j = sum_i a_i . m_i
    if len(t.shape) == 0:
        to_t = ops.sum(a * m)
    else:
        to_t = ops.sum(a * m, axis=(-2, -1), keepdims=True)
    return m * t, to_candidates * t, to_t


def _given_weights(kernel: _Kernel, start: int | Tensor) -> Tensor | None:
    """The positive weights of the block from anchor `start` by `weights_fn`, `(T, rows, N)`
    in the kernel's dtype (`(rows, N)` for one head and one term); None with class ids.

    They are computed before the block's fused element-wise passes
    (`backend.fuse_elementwise`), not in them: a rule of the user's may use any op, which XLA
    may not compile. The `"equal"` rule on class ids is the library's own, and the fused
    passes compute it themselves (`_class_weights`).
    """
    if kernel.class_ids is not None:
        return None
    return _block_shaped(kernel, kernel.weights_fn(start, kernel.rows))


def _class_weights(kernel: _Kernel, start: int | Tensor) -> Tensor:
    """The `"equal"` rule's weights of the block from anchor `start` on the class ids."""
    assert kernel.class_ids is not None, "only with class ids"
    anchor_ids, candidate_ids = kernel.class_ids
    rows = [take_rows(own, start, kernel.rows) for own in anchor_ids]
    return _block_shaped(kernel, rule_weights(["equal"] * len(rows))(rows, candidate_ids))


def _block_shaped(kernel: _Kernel, w: Tensor) -> Tensor:
    """Weights `(T, rows, N)` in the kernel's dtype; `(rows, N)` for one head and one term."""
    if kernel.one_head and w.shape[0] == 1:
        w = w[0]
    return ops.cast(w, kernel.dtype)


def _masked_pairs(kernel: _Kernel, start: int | Tensor, count: Any, n: Any) -> Tensor | None:
    """`(rows, N)` booleans (`(H, rows, N)` for a per-head mask), True for the pairs left out
    of anchors `start:start + count`: each anchor itself, and empty slots; None if none."""
    excluded = None
    if kernel.anchor_offset is not None:
        anchor_index = ops.arange(count, dtype="int32") + ops.cast(kernel.anchor_offset, "int32")
        anchor_index = anchor_index + ops.cast(start, "int32")
        excluded = ops.equal(anchor_index[:, None], ops.arange(n, dtype="int32")[None, :])
    if kernel.candidate_mask is not None:
        empty = ops.logical_not(ops.cast(kernel.candidate_mask, "bool"))
        empty = empty[:, None, :] if len(empty.shape) == 2 else empty[None, :]
        excluded = empty if excluded is None else ops.logical_or(excluded, empty)
    return excluded


# The blocks: where each starts, and which rows it owns.


def _block_start(kernel: _Kernel, k: int | Tensor) -> Tensor:
    """Block `k`'s first row; the last block ends at the last anchor (it may overlap)."""
    rows, num_anchors = kernel.rows, kernel.num_anchors
    assert rows is not None and num_anchors is not None, "only for several blocks"
    return ops.minimum(k * rows, num_anchors - rows)


def _own_rows(kernel: _Kernel, k: int | Tensor, start: int | Tensor) -> Tensor:
    """`(rows,)` booleans, False for the rows block `k` shares with the block before it."""
    rows = kernel.rows
    assert rows is not None, "only for several blocks"
    return ops.arange(rows, dtype="int32") + ops.cast(start, "int32") >= k * rows


def _rows_of(kernel: _Kernel, x: Tensor, start: int | Tensor) -> Tensor:
    """The block's rows of `x` (anchors `(..., M, D)`) from `start`; all of them for one block."""
    return take_rows(x, start, kernel.rows, axis=-2)


# The three kernels: loops over the blocks, each with its gradient.


def _one_block_kernel(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor
) -> tuple[Tensor, GradientFn]:
    """Per-anchor losses of one block; its state is kept for the gradient (three matmuls)."""
    stacked, state = _block_forward(kernel, a, c, t, 0)

    def gradient(*args: Tensor, upstream: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        upstream = _upstream(args, upstream)
        return _block_backward(a, c, t, upstream[0] / state.safe_n, state)

    return stacked, gradient


def _blocks_kernel(kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor) -> tuple[Tensor, GradientFn]:
    """Per-anchor losses of several blocks; the gradient recomputes each block (four matmuls,
    memory bounded by one block)."""
    stacked = _blocks_forward(kernel, a, c, t)

    def gradient(*args: Tensor, upstream: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        return _blocks_backward(kernel, a, c, t, _upstream(args, upstream))

    return stacked, gradient


def _blocks_forward(kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor) -> Tensor:
    """`[loss, n_positives]` of every anchor, `(2, T, M)`, one block after another.

    A loop (not unrolled code), so that the compilers keep one block alive at a time.
    """
    first = _block_losses(kernel, _rows_of(kernel, a, 0), c, t, 0)
    stacked = ops.zeros((*first.shape[:-1], kernel.num_anchors), kernel.dtype)
    stacked = ops.slice_update(stacked, _at(len(stacked.shape), -1, 0), first)
    return backend.fori_loop(
        1,
        kernel.num_blocks,
        lambda k, stacked: _forward_step(kernel, a, c, t, k, stacked),
        stacked,
    )


def _forward_step(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, k: Tensor, stacked: Tensor
) -> Tensor:
    """`stacked` with block `k`'s losses and counts written in."""
    start = _block_start(kernel, k)
    values = _block_losses(kernel, _rows_of(kernel, a, start), c, t, start)
    return ops.slice_update(stacked, _at(len(stacked.shape), -1, start), values)


def _blocks_backward(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, upstream: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """`(d a, d c, d t)` for `upstream` `d total / d [loss, n_positives]`, block by block."""
    initial = (ops.zeros_like(a), ops.zeros_like(c), ops.zeros_like(t))
    return backend.fori_loop(
        0,
        kernel.num_blocks,
        lambda i, carry: _backward_step(kernel, a, c, t, upstream, i, carry),
        initial,
    )


def _backward_step(
    kernel: _Kernel,
    a: Tensor,
    c: Tensor,
    t: Tensor,
    upstream: Tensor,
    i: Tensor,
    carry: tuple[Tensor, Tensor, Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    """`carry` `(d a, d c, d t)` with the `i`-th block from the last one recomputed and added.

    The last block goes first: rows it shares with the block before it get no gradient
    here, and that block writes theirs afterwards.
    """
    grad_a, grad_c, grad_t = carry
    k = kernel.num_blocks - 1 - i
    start = _block_start(kernel, k)
    upstream_rows = take_rows(upstream[0], start, kernel.rows, axis=-1)
    upstream_rows = ops.where(_own_rows(kernel, k, start), upstream_rows, 0.0)
    _, (part_a, part_c, part_t) = _block_gradient(
        kernel, _rows_of(kernel, a, start), c, t, start, upstream_rows
    )
    grad_a = ops.slice_update(grad_a, _at(len(a.shape), -2, start), part_a)
    return grad_a, grad_c + part_c, grad_t + part_t


def _summed_kernel(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, weights: Tensor
) -> tuple[Tensor, GradientFn]:
    """`sum_i s_ti loss_ti` for the anchor weights `s` (`weights`), after the counts.

    The gradient is computed in the forward pass, block by block (three matmuls in all); the
    backward pass only scales it by the upstream value.

    Returns:
        `(packed, gradient)`, `packed` `(T, M + 1)`: the counts, then the sum.
    """
    sums, counts, grad_a, grad_c, grad_t = _summed_blocks(kernel, a, c, t, weights)

    def gradient(*args: Tensor, upstream: Tensor | None = None) -> tuple[Any, ...]:
        u = _upstream(args, upstream)[..., -1]
        u_rows = ops.reshape(u, (-1, 1, 1)) if len(a.shape) == 3 else ops.reshape(u, ())
        u_t = u_rows if len(t.shape) else ops.reshape(u, ())
        return grad_a * u_rows, grad_c * u_rows, grad_t * u_t, None

    return ops.concatenate([counts, ops.expand_dims(sums, -1)], axis=-1), gradient


def _summed_blocks(
    kernel: _Kernel, a: Tensor, c: Tensor, t: Tensor, weights: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """`(sums, counts, d a, d c, d t)` of the weighted sums, over every block."""
    dtype = kernel.dtype
    initial = (
        ops.zeros(weights.shape[:-1], dtype),
        ops.zeros(weights.shape, dtype),
        ops.zeros_like(a),
        ops.zeros_like(c),
        ops.zeros_like(t),
    )

    def step(i: int | Tensor, carry: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return _summed_step(kernel, a, c, t, weights, i, carry)

    if kernel.num_blocks == 1:
        return step(0, initial)
    return backend.fori_loop(0, kernel.num_blocks, step, initial)


def _summed_step(
    kernel: _Kernel,
    a: Tensor,
    c: Tensor,
    t: Tensor,
    weights: Tensor,
    i: int | Tensor,
    carry: tuple[Tensor, ...],
) -> tuple[Tensor, ...]:
    """`carry` `(sums, counts, d a, d c, d t)` with the `i`-th block from the last one added.

    The last block goes first: rows it shares with the block before it count there (weight
    0 here, and that block overwrites their rows after).
    """
    sums, counts, grad_a, grad_c, grad_t = carry
    k = kernel.num_blocks - 1 - i
    start = 0 if kernel.rows is None else _block_start(kernel, k)
    s_rows = take_rows(weights, start, kernel.rows, axis=-1)
    if kernel.rows is not None:
        s_rows = ops.where(_own_rows(kernel, k, start), s_rows, 0.0)
    values, (part_a, part_c, part_t) = _block_gradient(
        kernel, _rows_of(kernel, a, start), c, t, start, s_rows
    )
    sums = sums + ops.sum(ops.where(values[1] > 0, s_rows * values[0], 0.0), axis=-1)
    counts = ops.slice_update(counts, _at(len(counts.shape), -1, start), values[1])
    grad_a = ops.slice_update(grad_a, _at(len(a.shape), -2, start), part_a)
    return sums, counts, grad_a, grad_c + part_c, grad_t + part_t


# The custom-gradient wiring.


def _with_custom_gradient(
    forward: Callable[..., tuple[Tensor, GradientFn]], kernel: _Kernel, *tensors: Tensor
) -> Tensor:
    """`forward(kernel, *tensors)`'s value, differentiated in `tensors` by the gradient
    function it returns (`keras.ops.custom_gradient`)."""

    def of_tensors(*tensors: Tensor) -> tuple[Tensor, GradientFn]:
        return forward(kernel, *tensors)

    return ops.custom_gradient(of_tensors)(*tensors)


def _upstream(args: tuple[Tensor, ...], upstream: Tensor | None) -> Tensor:
    """The upstream gradient: passed alone (JAX, TensorFlow) or as `upstream=` after the
    inputs (torch)."""
    if upstream is None:
        (upstream,) = args
    return upstream


def _at(rank: int, axis: int, start: int | Tensor) -> list[int | Tensor]:
    """The `start_indices` of `ops.slice_update` for `start` on `axis`, 0 elsewhere."""
    begin: list[int | Tensor] = [0] * rank
    begin[axis % rank] = start
    return begin
