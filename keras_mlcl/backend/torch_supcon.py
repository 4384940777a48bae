"""The blockwise SupCon kernel as `torch.autograd.Function`s (the torch fast path).

Same contract as the `keras.ops` kernel: anchors against candidates, row block by row block,
with the closed-form gradient. Every `N`-wide pass is an in-place ATen op or a fused one
(`softmax`) on block buffers taken once per call (from a pool, on the CPU). Positives come two
ways: a weights function (any rule), or the heads' class ids (the `"equal"` rule), whose sums per
class replace every `rows x N` weight pass; the backward pass is then two matmuls and no `M x N`
weight pass, and one matmul for the whole batch against itself (its logits are symmetric). The
gradient is not differentiable again: a backward pass with `create_graph=True` raises.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import torch

from keras_mlcl.backend.torch_buffers import POOL

WeightsFn = Callable[[int, int], torch.Tensor]

NORMALIZATIONS = ("count", "weight")

# The largest spread of a head's row log-sum-exps for the one-matmul gradient of the whole
# batch (`_ClassPositives.whole_batch_gradient`), which reads `p_ji` as
# `p_ij exp(LSE_i - LSE_j)`: `p_ij` then falls below float32's normal range (exp(-87)) only
# where `p_ji < exp(-27)`, too small to count beside the row's largest terms.
SYMMETRIC_SPREAD = 60.0

# Written over masked logits before the softmax: exp of it minus any row maximum
# is exactly 0, and a row with every pair masked stays finite (uniform).
_MASKED_LOGIT = -1e30


def supcon_rows(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    inverse_temperature: torch.Tensor,
    weights_fn: WeightsFn,
    binary: bool,
    normalization: str,
    anchor_offset: int | torch.Tensor | None = None,
    candidate_mask: torch.Tensor | None = None,
    block_rows: int | None = None,
    anchor_weights: torch.Tensor | None = None,
    class_ids: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-term, per-anchor SupCon losses of anchors against candidates, block by block.

    For term `t` (a head, or a level sharing the similarities) and anchor `i`:

    ```
    l_ij     = inverse_temperature * a_i . c_j
    LSE_i    = log sum_j exp(l_ij)
    loss_ti  = (W_ti LSE_i - S_ti) / n_ti      (0 when n_ti = 0)
    ```

    where:
    - `j` runs over the candidates except masked pairs: the anchor itself (candidate
      `anchor_offset + i`) and empty slots (`candidate_mask` False);
    - `w_tij >= 0` are the positive weights, `W_ti = sum_j w_tij`, `S_ti = sum_j w_tij l_ij`;
    - `n_ti = W_ti` when `binary` or `normalization="weight"`, else `#{j : w_tij > 0}`.

    Anchors are taken `block_rows` rows at a time, each block against all candidates, in
    one buffer per call (the softmax overwrites the logits; on the CPU the buffer comes from
    `keras_mlcl.backend.torch_buffers`). The gradient with
    respect to the logits is `G_ij = sum_t u_ti / n_ti (W_ti p_ij - w_tij)` (`p` the
    softmax, `u` the upstream gradient of `loss`), back through the similarity matmul and to
    the inverse temperature.
    Per anchor, a single block keeps its softmax for the backward pass, and several blocks
    are recomputed there (as is a single block in a second backward pass of a retained
    graph). The whole batch against itself (`anchors is candidates`, `anchor_offset=0`, the
    same class id tensors, one block, no empty slot, no `anchor_weights`, on the CPU) takes
    its gradient from one matmul instead of two, see `_ClassPositives.whole_batch_gradient`.
    With `anchor_weights` the gradient is computed in the forward pass, block by block
    (three matmuls in all), and the backward pass only scales it.

    With `class_ids`, `w_hij = 1` when anchor `i` and candidate `j` have the same class id
    on head `h` (ids `>= 0`; a negative id is unlabelled), and `weights_fn` is not called:
    `W` and `S` come from per-class sums of the candidates, and the `w` part of the
    gradient from per-class sums of the anchors, so no weight is ever held per pair.

    Args:
        anchors: float32 tensor `(H, M, D)`.
        candidates: float32 tensor `(H, N, D)`.
        inverse_temperature: float32 tensor of shape `()` or `(H, 1, 1)`, `1 / tau`.
        weights_fn: `weights_fn(start, rows)` returns the float32 weights `(T, rows, N)` of
            anchors `start..start+rows-1` against all candidates, with `T == H`, or
            `H == 1` and any `T >= 1`. The self pair needs not be zero.
        binary: True when every weight is 0 or 1.
        normalization: `"count"` or `"weight"`.
        anchor_offset: None (anchors are not candidates), or an int or 0-d integer tensor:
            anchor `i` is candidate `anchor_offset + i`. Defaults to None.
        candidate_mask: None or a bool tensor `(N,)`, or `(H, N)` for slots that differ
            per head, False marking an empty slot. Defaults to None.
        block_rows: anchors per block; None (default) or `>= M` means one block.
        anchor_weights: None, or constant weights `s_hi` `(H, M)` of the anchors, with
            `T == H`: the kernel then returns `sum_i s_hi loss_hi` `(H,)` in place of the
            per-anchor losses. Defaults to None.
        class_ids: None, or `(anchor_ids, candidate_ids)`: one `(M,)` and one `(N,)` tensor
            of class ids per head (`T == H`), the `"equal"` rule's positives. Defaults to
            None (`weights_fn`, which is also used, when given, under
            `torch.use_deterministic_algorithms(True)`).

    Returns:
        A tuple `(loss, n_positives)` of float32 tensors `(T, M)` (`loss` `(H,)` with
        `anchor_weights`); only `loss` carries a gradient.

    Example:

    >>> z = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> weights = lambda start, rows: (labels[start:start + rows, None] == labels).float()[None]
    >>> loss, n = supcon_rows(z, z, torch.tensor(1.0), weights, True, "count", 0)
    >>> loss.round(decimals=4), n  # every anchor: log(1 + 2 exp(-1)), one positive
    (tensor([[0.5514, 0.5514, 0.5514, 0.5514]]), tensor([[1., 1., 1., 1.]]))
    >>> total, _ = supcon_rows(z, z, torch.tensor(1.0), None, True, "count", 0,
    ...                        anchor_weights=torch.ones(1, 4), class_ids=([labels], [labels]))
    >>> total.round(decimals=4)  # the four anchors' sum
    tensor([2.2058])
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"`normalization` should be one of {NORMALIZATIONS}. "
            f"Received: `normalization`={normalization!r}"
        )
    if anchors.dim() != 3 or candidates.dim() != 3:
        raise ValueError(
            "`anchors` and `candidates` should be 3-D `(H, rows, D)` tensors. Received: "
            f"shapes {tuple(anchors.shape)} and {tuple(candidates.shape)}"
        )
    rows = anchors.shape[1]
    if block_rows is None or block_rows >= rows:
        block_rows = rows
    elif block_rows < 1:
        raise ValueError(f"`block_rows` should be a positive int. Received: {block_rows}")
    if isinstance(anchor_offset, torch.Tensor):
        anchor_offset = int(anchor_offset)
    if torch.are_deterministic_algorithms_enabled() and weights_fn is not None:
        class_ids = None  # the per-class sums scatter-add, which CUDA does in no fixed order
    # The anchors being the candidates themselves (the whole batch) go in once: autograd and
    # `torch.compile` take a tensor given twice badly, and the gradients are added here.
    call = _Call(
        weights_fn,
        binary,
        normalization,
        anchor_offset,
        candidate_mask,
        block_rows,
        class_ids,
        same=anchors is candidates,
    )
    given = None if call.same else anchors
    if anchor_weights is None:
        return _SupConRows.apply(given, candidates, inverse_temperature, call)
    needs_grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (anchors, candidates, inverse_temperature)
    )
    return _SupConSums.apply(
        given,
        candidates,
        inverse_temperature,
        anchor_weights.detach().to(anchors.dtype),
        call,
        needs_grad,
    )


class _Call:
    """The non-tensor arguments of one `supcon_rows` call, shared by its blocks."""

    def __init__(
        self,
        weights_fn: WeightsFn,
        binary: bool,
        normalization: str,
        offset: int | None,
        mask: torch.Tensor | None,
        block_rows: int,
        class_ids: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None,
        same: bool,
    ) -> None:
        self.weights_fn, self.binary, self.normalization = weights_fn, binary, normalization
        self.offset, self.block_rows, self.class_ids = offset, block_rows, class_ids
        self.same = same  # the anchors are the candidates (one input)
        if mask is not None and mask.dim() == 2:  # per head: (H, 1, N) against (H, rows, N)
            mask = mask.unsqueeze(-2)
        self.mask = mask

    def positives(
        self, anchors: torch.Tensor, candidates: torch.Tensor, inverse_temperature: torch.Tensor
    ) -> "_ClassPositives | _WeightPositives":
        """The positives of this call: per-class sums, or the weights function."""
        if self.class_ids is None:
            return _WeightPositives(self, anchors.dtype)
        return _ClassPositives(self, anchors, candidates, inverse_temperature)

    def blocks(self, rows: int) -> list[tuple[int, int]]:
        """`(start, stop)` of each block of anchor rows."""
        step = self.block_rows
        return [(start, min(start + step, rows)) for start in range(0, rows, step)]

    def softmax_(self, logits: torch.Tensor, start: int) -> torch.Tensor:
        """Masks `logits` and overwrites them with their softmax; returns `LSE`, `(H, rows)`."""
        if self.offset is not None:
            _fill_self_pairs_(logits, self.offset, start, _MASKED_LOGIT)
        if self.mask is not None:
            logits.masked_fill_(~self.mask, _MASKED_LOGIT)
        row_max = logits.amax(-1)
        # In place: each element is read before it is written, as in an element-wise op
        # (one block buffer fewer to allocate and fault in).
        probabilities = torch.ops.aten._softmax.out(logits, -1, False, out=logits)
        # The largest p of a row is 1 / sum_j exp(l_ij - max): LSE = max - log(max p).
        return row_max - torch.log(probabilities.amax(-1))


class _Workspace:
    """The block buffer of one call, `(H, block_rows, N)`, viewed at each block's size; taken
    from the pool of `keras_mlcl.backend.torch_buffers` and given back by `release`."""

    def __init__(self, anchors: torch.Tensor, candidates: torch.Tensor, block_rows: int) -> None:
        self.heads, self.columns = anchors.shape[0], candidates.shape[1]
        self.buffer: torch.Tensor | None = POOL.take(
            self.heads * block_rows * self.columns, anchors
        )

    def view(self, rows: int) -> torch.Tensor:
        """A contiguous `(H, rows, N)` view of the buffer."""
        assert self.buffer is not None, "released"
        size = self.heads * rows * self.columns
        return self.buffer[:size].view(self.heads, rows, self.columns)

    def release(self) -> None:
        """Gives the buffer back to the pool: no view of it is used after this."""
        if self.buffer is not None:
            POOL.give(self.buffer)
            self.buffer = None


def _logits(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    inverse_temperature: torch.Tensor,
    start: int,
    stop: int,
    workspace: _Workspace,
) -> torch.Tensor:
    """`t a_i . c_j` of anchors `start..stop-1`, written into the workspace."""
    scaled = anchors[:, start:stop] * inverse_temperature
    return torch.matmul(scaled, candidates.transpose(-1, -2), out=workspace.view(stop - start))


def _joined(blocks: list[torch.Tensor]) -> torch.Tensor:
    """The blocks' `(T, rows)` values side by side, `(T, M)` (one block as it is)."""
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-1)


def _losses(
    weight_sum: torch.Tensor,
    weighted_logits: torch.Tensor,
    n_positives: torch.Tensor,
    log_denominator: torch.Tensor,
) -> torch.Tensor:
    """`(W LSE - S) / n`, 0 where `n = 0`."""
    return _per_positive(weight_sum * log_denominator - weighted_logits, n_positives)


def _per_positive(values: torch.Tensor, n_positives: torch.Tensor) -> torch.Tensor:
    """`values / n`, 0 for the anchors without positives (`n = 0`)."""
    valid = n_positives > 0
    return torch.where(valid, values / torch.where(valid, n_positives, 1.0), 0.0)


class _SupConRows(torch.autograd.Function):
    """Per-anchor losses: the forward loop over blocks, and the backward one."""

    @staticmethod
    def forward(
        ctx: Any,
        anchors: torch.Tensor | None,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
        call: _Call,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        anchors = candidates if anchors is None else anchors
        positives = call.positives(anchors, candidates, inverse_temperature)
        blocks = call.blocks(anchors.shape[1])
        workspace = _Workspace(anchors, candidates, call.block_rows)
        losses, counts, sums = [], [], []
        for start, stop in blocks:
            logits = _logits(anchors, candidates, inverse_temperature, start, stop, workspace)
            weight_sum, weighted, n_positives = positives.statistics(logits, start, stop)
            log_denominator = call.softmax_(logits, start)
            losses.append(_losses(weight_sum, weighted, n_positives, log_denominator))
            counts.append(n_positives)
            sums.append(weight_sum)
        loss, n_positives, weight_sum = (_joined(parts) for parts in (losses, counts, sums))
        ctx.mark_non_differentiable(n_positives)
        ctx.call, ctx.positives = call, positives
        # One block keeps its softmax (in the workspace) for the backward pass, if any.
        ctx.kept = ctx.workspace = ctx.log_denominator = None
        if len(blocks) == 1 and any(ctx.needs_input_grad[:3]):
            ctx.kept = positives.keep(logits, weight_sum, 0)
            ctx.workspace, ctx.log_denominator = workspace, log_denominator
        else:
            workspace.release()
        ctx.save_for_backward(anchors, candidates, inverse_temperature, n_positives, weight_sum)
        return loss, n_positives

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor, _: Any) -> tuple[torch.Tensor | None, ...]:
        _refuse_create_graph()
        anchors, candidates, inverse_temperature, n_positives, weight_sum = ctx.saved_tensors
        call = ctx.call
        # Recomputed blocks get positives of their own.
        if ctx.kept is not None:
            positives = ctx.positives
        else:
            positives = call.positives(anchors, candidates, inverse_temperature)
        coefficient = _per_positive(upstream, n_positives)
        needed = ctx.needs_input_grad[:3]
        if call.same:
            needed = (needed[1], *needed[1:])
        kept, workspace = ctx.kept, ctx.workspace
        # The kept block is used once: a second backward pass (a retained graph) recomputes.
        ctx.kept = ctx.workspace = None
        result = None
        if kept is not None and positives.symmetric:
            result = positives.whole_batch_gradient(
                kept[0], ctx.log_denominator, coefficient, weight_sum, needed
            )
        if result is None:
            result = _backward_blocks(ctx, positives, kept, coefficient, weight_sum, needed)
        if workspace is not None:
            workspace.release()
        return result


def _backward_blocks(
    ctx: Any,
    positives: "_ClassPositives | _WeightPositives",
    kept: list[torch.Tensor] | None,
    coefficient: torch.Tensor,
    weight_sum: torch.Tensor,
    needed: tuple[bool, ...],
) -> tuple[torch.Tensor | None, ...]:
    """The per-anchor kernel's gradients block by block, from the `kept` block or recomputed."""
    anchors, candidates, inverse_temperature = ctx.saved_tensors[:3]
    call = ctx.call
    gradients = _Gradients(anchors, candidates, inverse_temperature, needed, call.same)
    workspace = None if kept is not None else _Workspace(anchors, candidates, call.block_rows)
    for start, stop in call.blocks(anchors.shape[1]):
        if workspace is not None:
            logits = _logits(anchors, candidates, inverse_temperature, start, stop, workspace)
            positives.statistics(logits, start, stop)
            call.softmax_(logits, start)
            kept = positives.keep(logits, weight_sum[:, start:stop], start)
        assert kept is not None
        positives.add_gradient(
            kept, coefficient[:, start:stop], weight_sum[:, start:stop], start, gradients
        )
    if workspace is not None:
        workspace.release()
    return (*positives.finish(gradients), None)


class _SupConSums(torch.autograd.Function):
    """Weighted sums of the anchors' losses, their gradient computed block by block in the
    forward pass."""

    @staticmethod
    def forward(
        ctx: Any,
        anchors: torch.Tensor | None,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
        anchor_weights: torch.Tensor,
        call: _Call,
        needs_grad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        anchors = candidates if anchors is None else anchors
        positives = call.positives(anchors, candidates, inverse_temperature)
        workspace = _Workspace(anchors, candidates, call.block_rows)
        gradients = _Gradients(
            anchors, candidates, inverse_temperature, (needs_grad,) * 3, call.same
        )
        heads, rows = anchors.shape[:2]
        sums = anchors.new_zeros(heads)
        n_positives = anchors.new_empty(heads, rows)
        for start, stop in call.blocks(rows):
            logits = _logits(anchors, candidates, inverse_temperature, start, stop, workspace)
            weight_sum, weighted, count = positives.statistics(logits, start, stop)
            log_denominator = call.softmax_(logits, start)
            loss = _losses(weight_sum, weighted, count, log_denominator)
            weights = anchor_weights[:, start:stop]
            sums += torch.where(count > 0, weights * loss, 0.0).sum(-1)
            n_positives[:, start:stop] = count
            if needs_grad:
                coefficient = _per_positive(weights, count)
                kept = positives.keep(logits, weight_sum, start)
                positives.add_gradient(kept, coefficient, weight_sum, start, gradients)
        workspace.release()
        ctx.mark_non_differentiable(n_positives)
        ctx.scalar_temperature = inverse_temperature.dim() == 0
        if needs_grad:
            grad_a, grad_c, _ = positives.finish(gradients)
            ctx.gradients = grad_a, grad_c, gradients.t  # `t`'s per head: scaled by each
        return sums, n_positives

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor, _: Any) -> tuple[torch.Tensor | None, ...]:
        _refuse_create_graph()
        grad_a, grad_c, grad_t = ctx.gradients
        scale = upstream.view(-1, 1, 1)
        grad_a = None if grad_a is None else grad_a * scale
        grad_c = None if grad_c is None else grad_c * scale
        if grad_t is not None:
            grad_t = grad_t * upstream
            grad_t = grad_t.sum() if ctx.scalar_temperature else grad_t.view(-1, 1, 1)
        return grad_a, grad_c, grad_t, None, None, None


class _Gradients:
    """The gradients being summed, `None` where nobody asked for one; `t` per head `(H,)`."""

    def __init__(
        self,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
        needed: Sequence[bool],
        same: bool,
    ) -> None:
        self.anchors, self.candidates, self.same = anchors, candidates, same
        self.inverse_temperature = inverse_temperature
        self.scalar_temperature = inverse_temperature.dim() == 0
        self.a = torch.empty_like(anchors) if needed[0] else None
        self.c = torch.zeros_like(candidates) if needed[1] else None
        self.t = anchors.new_zeros(anchors.shape[0]) if needed[2] else None
        # What class positives sum for the candidates' gradient: per class, and per anchor.
        self.class_sums: torch.Tensor | None = None
        self.own_coefficient: torch.Tensor | None = None

    def product(self, left: torch.Tensor, start: int, scale: torch.Tensor) -> torch.Tensor | None:
        """`left C` times `scale`, `(H, rows, D)`, written into the anchors' gradient rows
        when there are some; None when neither the anchors nor `t` need a gradient."""
        if self.a is None and self.t is None:
            return None
        out = None if self.a is None else self.a[:, start : start + left.shape[1]]
        return torch.matmul(left, self.candidates, out=out).mul_(scale)

    def add_product_(self, product: torch.Tensor | None, start: int) -> None:
        """Takes one block's `G C` (`product`, from `product`) into the gradients of `t` and
        of the anchors (`t G C`, in place)."""
        if product is None:
            return
        if self.t is not None:
            rows = self.anchors[:, start : start + product.shape[1]]
            self.t += torch.einsum("hmd,hmd->h", product, rows)
        if self.a is not None:
            product.mul_(self.inverse_temperature)

    def add_candidates_(self, left: torch.Tensor, right: torch.Tensor) -> None:
        """Adds `left^T right` to the candidates' gradient (`right` has `t` in it)."""
        if self.c is not None:
            for head in range(left.shape[0]):  # 2-D: faster than `baddbmm_` on CPU
                self.c[head].addmm_(left[head].T, right[head])

    def result(self) -> tuple[torch.Tensor | None, ...]:
        """`(d anchors, d candidates, d inverse temperature)` in the inputs' shapes."""
        grad_t = self.t
        if grad_t is not None:
            grad_t = grad_t.sum() if self.scalar_temperature else grad_t.view(-1, 1, 1)
        if self.same and self.a is not None:  # one input: its two roles' gradients added
            assert self.c is not None
            return None, self.c.add_(self.a), grad_t
        return self.a, self.c, grad_t


class _WeightPositives:
    """Positives from the weights function: a `(T, rows, N)` block of weights."""

    symmetric = False  # see `_ClassPositives.symmetric`

    def __init__(self, call: _Call, dtype: torch.dtype) -> None:
        self.call, self.dtype = call, dtype

    def weights(self, start: int, stop: int) -> torch.Tensor:
        """The block's weights, empty slots zeroed."""
        weights = self.call.weights_fn(start, stop - start).to(self.dtype)
        if self.call.mask is not None:
            weights = weights.masked_fill(~self.call.mask, 0.0)
        return weights

    def statistics(
        self, logits: torch.Tensor, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`W`, `S` and `n` of every term and anchor, `(T, rows)`, self pairs excluded
        (`logits` not masked yet); the weights are kept for `keep`."""
        call, weights = self.call, self.weights(start, stop)
        weight_sum = weights.sum(-1)
        if weights.shape[0] == logits.shape[0]:
            weighted = torch.einsum("hmn,hmn->hm", weights, logits)
        else:
            weighted = torch.einsum("tmn,mn->tm", weights, logits[0])
        count = call.normalization == "count" and not call.binary
        n_positives = torch.count_nonzero(weights, dim=-1).to(logits.dtype) if count else None
        if call.offset is not None:
            self_weight = _self_pairs(weights, call.offset, start)
            weight_sum = weight_sum - self_weight
            weighted = weighted - self_weight * _self_pairs(logits, call.offset, start)
            if n_positives is not None:
                n_positives = n_positives - (self_weight > 0).to(logits.dtype)
        self.block_weights = weights
        return weight_sum, weighted, weight_sum if n_positives is None else n_positives

    def keep(
        self, probabilities: torch.Tensor, weight_sum: torch.Tensor, start: int
    ) -> list[torch.Tensor]:
        """What the block's gradient needs: `[w - W p]` (in the softmax's buffer) when the
        terms are the heads, else `[p, w]`."""
        weights = self.block_weights
        if weights.shape[0] != probabilities.shape[0]:
            return [probabilities, weights]
        negative = torch.addcmul(
            weights, probabilities, weight_sum.unsqueeze(-1), value=-1.0, out=probabilities
        )
        if self.call.offset is not None:
            _fill_self_pairs_(negative, self.call.offset, start, 0.0)
        return [negative]

    def add_gradient(
        self,
        kept: list[torch.Tensor],
        coefficient: torch.Tensor,
        weight_sum: torch.Tensor,
        start: int,
        gradients: _Gradients,
    ) -> None:
        """Adds one block's gradient for `G = c (W p - w)`, `c = coefficient` `(T, rows)`.

        Several terms sharing one `p` are summed first: `-G = sum_t c_t (w_t - W_t p)`.
        """
        if len(kept) == 1:
            negative, scale = kept[0], coefficient.unsqueeze(-1)
        else:
            probabilities, weights = kept
            negative = torch.einsum("tmn,tm->mn", weights, coefficient).unsqueeze(0)
            negative.sub_(probabilities * (coefficient * weight_sum).sum(0).view(1, -1, 1))
            if self.call.offset is not None:
                _fill_self_pairs_(negative, self.call.offset, start, 0.0)
            scale = torch.ones((), dtype=negative.dtype, device=negative.device)
        stop = start + negative.shape[1]
        gradients.add_product_(gradients.product(negative, start, -scale), start)
        if gradients.c is not None:
            right = gradients.anchors[:, start:stop] * (-scale * gradients.inverse_temperature)
            gradients.add_candidates_(negative, right)

    def finish(self, gradients: _Gradients) -> tuple[torch.Tensor | None, ...]:
        """The gradients once every block is in."""
        return gradients.result()


class _ClassPositives:
    """Positives from class ids (`w_hij = [y_hi = y_hj >= 0]`), by per-class sums.

    For anchor `i` of class `k` on head `h`, with `v_j` True for labelled, non-empty
    candidates and `s_i` for anchors whose own slot is such a candidate:

    ```
    W_hi = #{j : v_j, y_j = k} - s_i,    P_hi = sum_{j : v_j, y_j = k} c_j - s_i c_self
    S_hi = t a_i . P_hi
    ```

    and the `w` part of the gradient is `c_i P_hi` for the anchors and, for the candidates,
    the per-class sums of `c_i a_i` over the anchors (their own pair taken out).
    """

    def __init__(
        self,
        call: _Call,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
    ) -> None:
        assert call.class_ids is not None
        anchor_ids, candidate_ids = call.class_ids
        heads, rows, dim = anchors.shape
        size = candidates.shape[1]
        if not len(anchor_ids) == len(candidate_ids) == heads:
            raise ValueError(
                f"`class_ids` should hold one id tensor per head ({heads}). Received "
                f"{len(anchor_ids)} and {len(candidate_ids)}"
            )
        # The whole batch against itself, with the same ids: the anchors' ids are the
        # candidates', numbered once.
        shared = call.same and all(a is c for a, c in zip(anchor_ids, candidate_ids, strict=True))
        ids = torch.stack([torch.as_tensor(y).reshape(-1) for y in candidate_ids])
        if not shared:
            own = torch.stack([torch.as_tensor(y).reshape(-1) for y in anchor_ids])
            ids = torch.cat([own.to(ids.dtype), ids], dim=1)
        numbered = _numbered(ids.to(torch.int64))
        unlabelled = classes = numbered.numel()
        first = 0 if shared else rows  # the candidates' first column
        labelled = ids[:, :rows] >= 0
        valid = ids[:, first:] >= 0
        if call.mask is not None:
            valid = valid & call.mask.reshape(-1, size)
        # Two more classes: the unlabelled anchors' (always empty) and that of the candidates
        # that are no positive.
        self.anchor_class = torch.where(labelled, numbered[:, :rows], unlabelled)
        self.candidate_class = torch.where(valid, numbered[:, first:], unlabelled + 1)
        classes += 2
        flat_class = self.candidate_class.reshape(-1)
        counts = anchors.new_zeros(classes).index_add_(
            0, flat_class, anchors.new_ones(()).expand(flat_class.shape)
        )
        sums = anchors.new_zeros(classes, dim)
        sums.index_add_(0, flat_class, candidates.detach().reshape(-1, dim))
        self.weight_sum = _gather(counts, self.anchor_class)
        self.positive_sum = _gather(sums, self.anchor_class)
        self.offset, self.classes = call.offset, classes
        if call.offset is not None:
            stop = call.offset + rows
            self.own = (valid[:, call.offset : stop] & labelled).to(anchors.dtype)
            self.weight_sum -= self.own
            self.positive_sum.addcmul_(
                candidates.detach()[:, call.offset : stop], self.own.unsqueeze(-1), value=-1.0
            )
        self.anchors, self.inverse_temperature = anchors.detach(), inverse_temperature
        # The whole batch against itself in one block: its logits are symmetric, so the
        # gradient is one matmul (`whole_batch_gradient`). On the CPU only, where the matmuls
        # dominate: it reads one value on the host.
        self.symmetric = (
            shared
            and call.offset == 0
            and call.mask is None
            and call.block_rows >= rows
            and anchors.device.type == "cpu"
        )

    def statistics(
        self, logits: torch.Tensor, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`W`, `S` and `n = W` of the block's anchors, `(H, rows)`."""
        t = self.inverse_temperature.reshape(-1, 1)
        weight_sum = self.weight_sum[:, start:stop]
        rows, positives = self.anchors[:, start:stop], self.positive_sum[:, start:stop]
        return weight_sum, torch.linalg.vecdot(rows, positives).mul_(t), weight_sum

    def keep(
        self, probabilities: torch.Tensor, weight_sum: torch.Tensor, start: int
    ) -> list[torch.Tensor]:
        """What the block's gradient needs: its softmax."""
        return [probabilities]

    def add_gradient(
        self,
        kept: list[torch.Tensor],
        coefficient: torch.Tensor,
        weight_sum: torch.Tensor,
        start: int,
        gradients: _Gradients,
    ) -> None:
        """Adds the block's `c W p` part by two matmuls, and its `c w` part for the anchors;
        the candidates' `w` part is summed per class, for `finish`."""
        (probabilities,) = kept
        stop = start + probabilities.shape[1]
        c = coefficient.unsqueeze(-1)
        product = gradients.product(probabilities, start, c * weight_sum.unsqueeze(-1))
        if product is not None:
            product.addcmul_(self.positive_sum[:, start:stop], c, value=-1.0)
        gradients.add_product_(product, start)
        if gradients.c is not None:
            right = self.anchors[:, start:stop] * (c * self.inverse_temperature)
            if gradients.class_sums is None:
                gradients.class_sums = right.new_zeros(self.classes, right.shape[-1])
                gradients.own_coefficient = coefficient.new_zeros(self.weight_sum.shape)
            assert gradients.own_coefficient is not None
            classes = self.anchor_class[:, start:stop].reshape(-1)
            gradients.class_sums.index_add_(0, classes, right.reshape(-1, right.shape[-1]))
            gradients.own_coefficient[:, start:stop] = coefficient
            gradients.add_candidates_(probabilities, right.mul_(weight_sum.unsqueeze(-1)))

    def whole_batch_gradient(
        self,
        probabilities: torch.Tensor,
        log_denominator: torch.Tensor,
        coefficient: torch.Tensor,
        weight_sum: torch.Tensor,
        needed: tuple[bool, ...],
    ) -> tuple[torch.Tensor | None, ...] | None:
        """`(None, d z, d t, None)` of the whole batch `z` against itself in one block, with
        one matmul; None where the row sums are too far apart (see below).

        As anchors `z` gets `t G z`, as candidates `t G^T z`, with
        `G = diag(c W) p - diag(c) w`. The `w` parts come from per-class sums, as in
        `add_gradient`; the `p` parts are one matmul `M z`, with
        `M_ij = (c W)_i p_ij + (c W)_j p_ji`. The logits are symmetric, so
        `p_ji = p_ij exp(LSE_i - LSE_j)`: the second term is `p` scaled by a row and a
        column vector, and `M` takes three element-wise passes into a scratch buffer. Each
        scale is kept within `exp(SYMMETRIC_SPREAD / 2)` of 1, so where two `LSE` are
        further apart (`p_ij` could be 0 while `p_ji` is not) this returns None.
        """
        if not (needed[1] or needed[2]):
            return None, None, None, None
        lse = log_denominator
        high, low = lse.amax(-1, keepdim=True), lse.amin(-1, keepdim=True)
        if float((high - low).max()) > SYMMETRIC_SPREAD:
            return None
        z, t = self.anchors, self.inverse_temperature
        middle = (high + low) / 2
        scale = coefficient * weight_sum
        buffer = POOL.take(probabilities.numel(), probabilities)
        both = torch.mul(
            probabilities,
            (scale * torch.exp(middle - lse)).unsqueeze(-2),
            out=buffer[: probabilities.numel()].view(probabilities.shape),
        )
        both.mul_(torch.exp(lse - middle).unsqueeze(-1)).addcmul_(
            probabilities, scale.unsqueeze(-1)
        )
        gradient = torch.matmul(both, z)
        POOL.give(buffer)
        c = coefficient.unsqueeze(-1)
        right = z * c
        class_sums = right.new_zeros(self.classes, z.shape[-1])
        class_sums.index_add_(0, self.anchor_class.reshape(-1), right.reshape(-1, z.shape[-1]))
        # The `w` parts: each candidate's anchors of its class, and each anchor's positives.
        w_part = self._candidates_w_part(class_sums, right).addcmul_(self.positive_sum, c)
        grad_t = None
        if needed[2]:
            # sum_ij G_ij z_i . z_j: half the sum of M's, less the anchors' `w` part.
            w_sum = torch.linalg.vecdot(right, self.positive_sum).sum(-1)
            grad_t = torch.linalg.vecdot(z, gradient).sum(-1).mul_(0.5).sub_(w_sum)
            grad_t = grad_t.sum() if t.dim() == 0 else grad_t.view(-1, 1, 1)
        grad_z = gradient.sub_(w_part).mul_(t) if needed[1] else None
        return None, grad_z, grad_t, None

    def finish(self, gradients: _Gradients) -> tuple[torch.Tensor | None, ...]:
        """The gradients, with the candidates' per-class `w` part taken off."""
        if gradients.c is not None and gradients.class_sums is not None:
            assert gradients.own_coefficient is not None
            own_rows = self.anchors * (
                gradients.own_coefficient.unsqueeze(-1) * self.inverse_temperature
            )
            gradients.c.sub_(self._candidates_w_part(gradients.class_sums, own_rows))
        return gradients.result()

    def _candidates_w_part(self, class_sums: torch.Tensor, own_rows: torch.Tensor) -> torch.Tensor:
        """`(H, N, D)`: for each candidate, the sum over the anchors of its class
        (`class_sums`, the anchors' rows `own_rows` summed per class), less its own pair."""
        part = _gather(class_sums, self.candidate_class)
        if self.offset is not None:
            stop = self.offset + self.anchors.shape[1]
            part[:, self.offset : stop].addcmul_(own_rows, self.own.unsqueeze(-1), value=-1.0)
        return part


def _refuse_create_graph() -> None:
    """Raises a `RuntimeError` in a backward pass with `create_graph=True`: the gradient is
    computed in closed form, outside autograd, so it has no gradient of its own."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "The SupCon kernel's gradient cannot be differentiated again: a backward pass "
            "with `create_graph=True` (second-order gradients, gradient penalties) is not "
            "supported. Received a backward pass with `create_graph=True`."
        )


def _numbered(ids: torch.Tensor) -> torch.Tensor:
    """Each head's ids `(H, K)` numbered `0, 1, ...` over every head, equal (id, head) pairs
    alike (by one sort, with static shapes)."""
    heads = ids.shape[0]
    keys = ids if heads == 1 else ids * heads + torch.arange(heads, device=ids.device)[:, None]
    ordered, order = torch.sort(keys.reshape(-1))
    new = torch.ones_like(ordered, dtype=torch.bool)
    torch.ne(ordered[1:], ordered[:-1], out=new[1:])
    numbered = torch.empty_like(ordered).scatter_(0, order, torch.cumsum(new, 0) - 1)
    return numbered.view(ids.shape)


def _gather(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`table[index]` for an integer `index` `(H, rows)`: `(H, rows, ...)` (`index_select`,
    several times faster than advanced indexing on CPU)."""
    rows = torch.index_select(table, 0, index.reshape(-1))
    return rows.view(*index.shape, *table.shape[1:])


def _self_pairs(block: torch.Tensor, offset: int, start: int) -> torch.Tensor:
    """The anchor-to-itself entries of a block `(H, rows, N)` of rows `start..`, `(H, rows)`."""
    return block.diagonal(offset + start, -2, -1)


def _fill_self_pairs_(block: torch.Tensor, offset: int, start: int, value: float) -> None:
    """Writes `value` over the anchor-to-itself entries of a block, in place."""
    block.diagonal(offset + start, -2, -1).fill_(value)
