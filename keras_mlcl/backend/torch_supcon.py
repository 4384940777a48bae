"""The blockwise SupCon kernel as one `torch.autograd.Function` (the torch fast path).

Same contract as the `keras.ops` kernel: anchors against candidates, row block by row block,
with the closed-form gradient. Every `N`-wide pass is an in-place ATen op or a fused one
(`softmax`), and with a single block the backward is two matmuls and no `M x N` pass.
"""

from collections.abc import Callable
from typing import Any

import torch

WeightsFn = Callable[[int, int], torch.Tensor]

NORMALIZATIONS = ("count", "weight")

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

    Anchors are taken `block_rows` rows at a time, each block against all candidates. With
    one block its softmax (folded with the weights) is kept for the backward pass; with
    several, the backward recomputes each block, so extra memory stays
    `O(block_rows * N)`. The gradient with respect to the logits is
    `G_ij = sum_t u_ti / n_ti (W_ti p_ij - w_tij)` (`p` the softmax, `u` the upstream
    gradient of `loss`), back through the similarity matmul and to the inverse temperature.

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

    Returns:
        A tuple `(loss, n_positives)` of float32 tensors `(T, M)`; only `loss` carries a
        gradient.

    Example:

    >>> z = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> weights = lambda start, rows: (labels[start:start + rows, None] == labels).float()[None]
    >>> loss, n = supcon_rows(z, z, torch.tensor(1.0), weights, True, "count", 0)
    >>> loss.round(decimals=4), n  # every anchor: log(1 + 2 exp(-1)), one positive
    (tensor([[0.5514, 0.5514, 0.5514, 0.5514]]), tensor([[1., 1., 1., 1.]]))
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
    return _SupConRows.apply(
        anchors,
        candidates,
        inverse_temperature,
        weights_fn,
        binary,
        normalization,
        anchor_offset,
        candidate_mask,
        block_rows,
    )


class _SupConRows(torch.autograd.Function):
    """The loops over blocks, wired into autograd: what `forward` saves, `backward` reads."""

    @staticmethod
    def forward(
        ctx: Any,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
        weights_fn: WeightsFn,
        binary: bool,
        normalization: str,
        anchor_offset: int | torch.Tensor | None,
        candidate_mask: torch.Tensor | None,
        block_rows: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = anchors.shape[1]
        losses, counts, sums = [], [], []
        kept = None
        for start in range(0, rows, block_rows):
            stop = min(start + block_rows, rows)
            block = _Block(
                anchors,
                candidates,
                inverse_temperature,
                weights_fn(start, stop - start),
                anchor_offset,
                candidate_mask,
                start,
                stop,
            )
            loss, n_positives, weight_sum = _block_forward(block, binary, normalization)
            losses.append(loss)
            counts.append(n_positives)
            sums.append(weight_sum)
            if block_rows == rows:
                kept = block.keep(weight_sum)
        loss, n_positives = torch.cat(losses, dim=-1), torch.cat(counts, dim=-1)
        ctx.mark_non_differentiable(n_positives)
        ctx.weights_fn, ctx.anchor_offset, ctx.block_rows = weights_fn, anchor_offset, block_rows
        ctx.has_mask = candidate_mask is not None
        ctx.folded = kept is not None and kept[1] is None
        saved = [anchors, candidates, inverse_temperature, n_positives, torch.cat(sums, dim=-1)]
        saved.append(candidate_mask if candidate_mask is not None else n_positives)
        if kept is not None:
            saved.extend(t for t in kept if t is not None)
        ctx.save_for_backward(*saved)
        return loss, n_positives

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor, _: Any) -> tuple[torch.Tensor | None, ...]:
        anchors, candidates, inverse_temperature, n_positives, weight_sum, mask, *kept = (
            ctx.saved_tensors
        )
        candidate_mask = mask if ctx.has_mask else None
        valid = n_positives > 0
        coefficient = torch.where(valid, upstream / torch.where(valid, n_positives, 1.0), 0.0)
        need_a, need_c, need_t = ctx.needs_input_grad[:3]
        rows, block_rows = anchors.shape[1], ctx.block_rows
        grad_a = torch.empty_like(anchors) if need_a else None
        grad_c = torch.zeros_like(candidates) if need_c else None
        grad_t = anchors.new_zeros(anchors.shape[0]) if need_t else None
        for start in range(0, rows, block_rows):
            stop = min(start + block_rows, rows)
            c = coefficient[:, start:stop]
            if ctx.folded:
                # kept = [w - W p]; G = c (W p - w), with the row scale c moved onto the matmuls.
                negative, scale = kept[0], c.unsqueeze(-1)
            else:
                if kept:
                    probabilities, weights = kept
                else:
                    block = _Block(
                        anchors,
                        candidates,
                        inverse_temperature,
                        ctx.weights_fn(start, stop - start),
                        ctx.anchor_offset,
                        candidate_mask,
                        start,
                        stop,
                    )
                    block.softmax_()
                    probabilities, weights = block.probabilities, block.weights
                negative, scale = _negative_logit_gradient(
                    probabilities, weights, c, weight_sum[:, start:stop], ctx.anchor_offset, start
                )
            _block_backward_(
                negative,
                scale,
                anchors[:, start:stop],
                candidates,
                inverse_temperature,
                None if grad_a is None else grad_a[:, start:stop],
                grad_c,
                grad_t,
            )
        if grad_t is not None:
            grad_t = grad_t.sum() if inverse_temperature.dim() == 0 else grad_t.view(-1, 1, 1)
        return grad_a, grad_c, grad_t, None, None, None, None, None, None


def _block_forward(
    block: "_Block", binary: bool, normalization: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(loss, n_positives, W)` of one block, `(T, rows)`; masks its logits, keeps its softmax.

    ```
    loss_ti = (W_ti LSE_i - S_ti) / n_ti      (0 when n_ti = 0)
    ```

    with `W`, `S` and `n` from `_Block.statistics` and `LSE` from `_Block.softmax_`.
    """
    weight_sum, weighted_logits, n_positives = block.statistics(binary, normalization)
    log_denominator = block.softmax_()
    raw = weight_sum * log_denominator - weighted_logits
    valid = n_positives > 0
    loss = torch.where(valid, raw / torch.where(valid, n_positives, 1.0), 0.0)
    return loss, n_positives, weight_sum


def _block_backward_(
    negative: torch.Tensor,
    scale: torch.Tensor,
    block_anchors: torch.Tensor,
    candidates: torch.Tensor,
    inverse_temperature: torch.Tensor,
    grad_a_rows: torch.Tensor | None,
    grad_c: torch.Tensor | None,
    grad_t: torch.Tensor | None,
) -> None:
    """Adds one block's gradients, for the logit gradient `G = -scale * negative`, in place.

    ```
    d a = t G C,   d c = t G^T A,   d t = sum_i a_i . (G C)_i
    ```

    Args:
        negative: `(H, rows, N)`, from `_negative_logit_gradient` (or the kept `w - W p`).
        scale: the row scale `(H, rows, 1)`, or 1.
        block_anchors: the block's anchors `(H, rows, D)`.
        candidates: `(H, N, D)`.
        inverse_temperature: `t`, `()` or `(H, 1, 1)`.
        grad_a_rows: the block's rows of `d a` `(H, rows, D)`, overwritten; None when the
            anchors need no gradient, and likewise:
        grad_c: `d c` `(H, N, D)`, added to.
        grad_t: `d t` per head `(H,)`, added to.
    """
    if grad_a_rows is not None or grad_t is not None:
        product = torch.matmul(negative, candidates).mul_(scale)
        if grad_t is not None:
            grad_t -= torch.einsum("hmd,hmd->h", product, block_anchors)
        if grad_a_rows is not None:
            grad_a_rows.copy_(product.mul_(-inverse_temperature))
    if grad_c is not None:
        right = block_anchors * (-inverse_temperature * scale)
        grad_c += torch.matmul(negative.transpose(-1, -2), right)


def _negative_logit_gradient(
    probabilities: torch.Tensor,
    weights: torch.Tensor,
    coefficient: torch.Tensor,
    weight_sum: torch.Tensor,
    offset: int | torch.Tensor | None,
    start: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(negative, scale)` of one block with `G = -scale * negative`, self pairs zeroed.

    When the terms are the heads, `negative = w - W p` `(H, rows, N)` and `scale = c`
    `(H, rows, 1)`, the row scale left to the matmuls; several terms sharing one `p` are
    summed first: `negative = sum_t c_t (w_t - W_t p)` `(1, rows, N)` and `scale = 1`.
    """
    if weights.shape[0] == probabilities.shape[0]:
        negative = torch.addcmul(weights, probabilities, weight_sum.unsqueeze(-1), value=-1.0)
        scale = coefficient.unsqueeze(-1)
    else:
        negative = torch.einsum("tmn,tm->mn", weights, coefficient).unsqueeze(0)
        negative.sub_(probabilities * (coefficient * weight_sum).sum(0).view(1, -1, 1))
        scale = torch.ones((), dtype=negative.dtype, device=negative.device)
    if offset is not None:
        _fill_self_pairs_(negative, offset, start, 0.0)
    return negative, scale


def _self_pairs(block: torch.Tensor, offset: int | torch.Tensor, start: int) -> torch.Tensor:
    """The anchor-to-itself entries of a block `(H, rows, N)` of rows `start..`, `(H, rows)`."""
    if isinstance(offset, torch.Tensor):
        rows = torch.arange(block.shape[-2], device=block.device)
        return block[:, rows, rows + (offset + start)]
    return block.diagonal(offset + start, -2, -1)


def _fill_self_pairs_(
    block: torch.Tensor, offset: int | torch.Tensor, start: int, value: float
) -> None:
    """Writes `value` over the anchor-to-itself entries of a block, in place."""
    if isinstance(offset, torch.Tensor):
        rows = torch.arange(block.shape[-2], device=block.device)
        block[:, rows, rows + (offset + start)] = value
    else:
        block.diagonal(offset + start, -2, -1).fill_(value)


class _Block:
    """One row block: its logits (masked in place by `softmax_`) and weights."""

    def __init__(
        self,
        anchors: torch.Tensor,
        candidates: torch.Tensor,
        inverse_temperature: torch.Tensor,
        weights: torch.Tensor,
        offset: int | torch.Tensor | None,
        mask: torch.Tensor | None,
        start: int,
        stop: int,
    ) -> None:
        scaled = anchors[:, start:stop] * inverse_temperature
        self.logits = torch.matmul(scaled, candidates.transpose(-1, -2))
        if mask is not None:
            if mask.dim() == 2:  # per head: (H, 1, N) against (H, rows, N)
                mask = mask.unsqueeze(-2)
            weights = weights.masked_fill(~mask, 0.0)
        self.weights, self.offset, self.mask, self.start = weights, offset, mask, start

    def statistics(
        self, binary: bool, normalization: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`W`, `S` and `n` of every term and anchor, `(T, rows)`, self pairs excluded."""
        weights, logits = self.weights, self.logits
        weight_sum = weights.sum(-1)
        if weights.shape[0] == logits.shape[0]:
            weighted = torch.einsum("hmn,hmn->hm", weights, logits)
        else:
            weighted = torch.einsum("tmn,mn->tm", weights, logits[0])
        count = normalization == "count" and not binary
        n_positives = torch.count_nonzero(weights, dim=-1).float() if count else None
        if self.offset is not None:
            self_weight = _self_pairs(weights, self.offset, self.start)
            weight_sum = weight_sum - self_weight
            weighted = weighted - self_weight * _self_pairs(logits, self.offset, self.start)
            if n_positives is not None:
                n_positives = n_positives - (self_weight > 0).float()
        return weight_sum, weighted, weight_sum if n_positives is None else n_positives

    def softmax_(self) -> torch.Tensor:
        """Masks the logits in place, keeps their softmax; returns `LSE`, `(H, rows)`."""
        logits = self.logits
        if self.offset is not None:
            _fill_self_pairs_(logits, self.offset, self.start, _MASKED_LOGIT)
        if self.mask is not None:
            logits.masked_fill_(~self.mask, _MASKED_LOGIT)
        row_max = logits.amax(-1)
        self.probabilities = torch.softmax(logits, -1)
        # The largest p of a row is 1 / sum_j exp(l_ij - max): LSE = max - log(max p).
        return row_max - torch.log(self.probabilities.amax(-1))

    def keep(self, weight_sum: torch.Tensor) -> list[torch.Tensor | None]:
        """What the backward of a single block needs: `[w - W p]` when the terms are the
        heads, else `[p, w]`."""
        probabilities, weights = self.probabilities, self.weights
        if weights.shape[0] != probabilities.shape[0]:
            return [probabilities, weights]
        negative = torch.addcmul(
            weights, probabilities, weight_sum.unsqueeze(-1), value=-1.0, out=probabilities
        )
        if self.offset is not None:
            _fill_self_pairs_(negative, self.offset, self.start, 0.0)
        return [negative, None]
