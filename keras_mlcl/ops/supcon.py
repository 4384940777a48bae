"""SupCon from a weight matrix or from labels: the two front ends of the blockwise kernel."""

from collections.abc import Sequence

import keras
from keras import ops

from keras_mlcl.backend import as_tensor
from keras_mlcl.ops.blockwise import auto_block_rows
from keras_mlcl.ops.blockwise import supcon_rows
from keras_mlcl.ops.blockwise import take_rows
from keras_mlcl.ops.positives import BINARY_RULES
from keras_mlcl.ops.positives import PairWeights
from keras_mlcl.ops.positives import check_labels_for_rule
from keras_mlcl.ops.positives import rule_weights
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

NORMALIZATIONS = ("count", "weight")


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

    It runs the blockwise kernel (`keras_mlcl.ops.blockwise.supcon_rows`)
    as one block, since `w` is materialised anyway: the gradient is written
    out in closed form (no autodiff through the `N x N` intermediates),
    `d loss_i / d logit_ij = (W_i p_ij - w_ij) / n_i` with
    `W_i = sum_j w_ij`, back through the similarity matmul, and to the
    temperature. `w` is treated as a constant (it comes from labels): no
    gradient reaches it. For large batches use `supcon_from_labels`, which
    never holds an `N x N` matrix.

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
    >>> w = keras_mlcl.ops.positive_weights(keras.ops.convert_to_tensor([0, 0, 1, 1]))
    >>> loss, valid = supcon_from_weights(z, w, temperature=1.0)  # log(1 + 2 exp(-1)) each
    >>> [round(float(v), 6) for v in keras.ops.convert_to_numpy(loss)]
    [0.551445, 0.551445, 0.551445, 0.551445]
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    if (reference is None) != (reference_weights is None):
        raise ValueError(
            "`reference` and `reference_weights` go together: pass both or neither. "
            f"Received: `reference` {'is None' if reference is None else 'given'}, "
            f"`reference_weights` {'is None' if reference_weights is None else 'given'}"
        )
    z = float_embeddings(z)
    dtype = z.dtype
    w = ops.cast(w, dtype)
    squeeze = len(z.shape) == 2 and len(w.shape) == 2
    anchors = z if len(z.shape) == 3 else z[None]
    w = w if len(w.shape) == 3 else w[None]
    candidates, candidate_mask = anchors, None
    if reference is not None:
        reference = ops.cast(as_tensor(reference), dtype)
        reference = reference if len(reference.shape) == 3 else reference[None]
        reference_weights = ops.cast(reference_weights, dtype)
        reference_weights = (
            reference_weights if len(reference_weights.shape) == 3 else reference_weights[None]
        )
        candidates = ops.concatenate([anchors, reference], axis=-2)
        w = ops.concatenate([w, reference_weights], axis=-1)
        if reference_mask is not None:
            present = ops.cast(reference_mask, "bool")
            own = ops.ones((*present.shape[:-1], ops.shape(anchors)[-2]), dtype="bool")
            candidate_mask = ops.concatenate([own, present], axis=-1)

    def weights_fn(start: int | Tensor, rows: int | None) -> Tensor:
        return take_rows(w, start, rows, axis=1)

    loss, n_positives = supcon_rows(
        anchors,
        candidates,
        inverse_temperature(temperature, dtype),
        weights_fn,
        binary=False,
        normalization=normalization,
        anchor_offset=0,
        candidate_mask=candidate_mask,
    )
    if squeeze:
        loss, n_positives = loss[0], n_positives[0]
    return loss, n_positives > 0


def supcon_from_labels(
    anchors: Tensor,
    candidates: Tensor,
    anchor_labels: Tensor | Sequence[Tensor],
    candidate_labels: Tensor | Sequence[Tensor],
    temperature: float | Tensor,
    rule: str | Sequence[str] | PairWeights = "equal",
    anchor_offset: int | Tensor | None = 0,
    normalization: str = "count",
    block_size: int | None = None,
    candidate_mask: Tensor | None = None,
    binary: bool | None = None,
    anchor_weights: Tensor | None = None,
    equal_classes: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-anchor SupCon of `M` anchors against `N` candidates, from labels, block by block.

    The same loss as `supcon_from_weights` on the weights
    `positive_weights` would give, for the anchors only, without ever
    holding an `M x N` matrix when the anchors are split into several
    blocks: each block of anchor rows gets its positive weights from its
    labels (`pair_weights`), its complete log-sum-exp, and, in the
    backward pass, its closed-form gradient recomputed (see
    `keras_mlcl.ops.blockwise.supcon_rows`). Every contrastive loss of
    `keras_mlcl.losses` is computed by this function.

    The anchors are a replica's own rows of a gathered batch
    (`anchor_offset` = their first row), the whole batch (`anchor_offset=0`,
    `candidates` the same tensor), or not candidates at all
    (`anchor_offset=None`). Extra candidates that are never anchors (a
    memory bank) are appended to `candidates`; `candidate_mask` marks empty
    slots.

    Args:
        anchors: `(M, D)` L2-normalised embeddings, or `(H, M, D)` for `H`
            heads.
        candidates: `(N, D)` or `(H, N, D)`.
        anchor_labels: labels of the anchors for `rule` (class ids `(M,)`
            or multi-hot `(M, K)`); with heads, a list of `H` such tensors
            (heads may have different rules and label widths).
        candidate_labels: the candidates' labels, the same kind.
        temperature: a positive float, or `(H,)` with heads.
        rule: a rule of `positive_weights`, a list of `H` rules, or a
            function `rule(anchor_labels, candidate_labels)` of the label
            lists returning `(T, M, N)` weights (labels are then passed as
            they are, unchecked). Defaults to `"equal"`.
        anchor_offset: the candidate index of anchor 0, or None. Defaults
            to 0.
        normalization: `"count"` (default) or `"weight"`.
        block_size: anchor rows per block. Defaults to None: the automatic
            size of `keras_mlcl.ops.blockwise.auto_block_rows` (one block for
            small batches, about 16 MB blocks, at most 256 rows for the
            `keras.ops` kernel, for large ones).
        candidate_mask: optional `(N,)` booleans, False for empty slots.
        binary: whether every weight is 0 or 1 (a cheaper kernel). Defaults
            to None: True for binary named rules, False for a function.
        anchor_weights: optional `(H, M)` weights of the anchors. When
            given, the kernel returns their weighted sum of losses, `(T,)`,
            instead of per-anchor losses (one pass, no per-anchor output).
        equal_classes: whether every head's positives are the `"equal"`
            rule on class ids `(M,)` and `(N,)` (`w_ij = 1` when
            `y_i = y_j >= 0`): a native kernel then counts the positives
            per class, with no weight per pair. Defaults to None: True when
            every named rule is `"equal"`, False for a function.

    Returns:
        A tuple `(loss, valid)`: the per-anchor losses `(M,)` (or `(T, M)`
        with heads; `(T,)` sums with `anchor_weights`) and the booleans of
        the anchors with a positive, `(M,)` or `(T, M)`.

    Example:

    >>> z = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 0.0],
    ...                                  [0.0, 1.0], [0.0, 1.0]])
    >>> labels = keras.ops.convert_to_tensor([0, 0, 1, 1])
    >>> loss, valid = supcon_from_labels(z[2:], z, labels[2:], labels, 1.0,
    ...                                  anchor_offset=2)
    >>> [round(float(v), 6) for v in keras.ops.convert_to_numpy(loss)]
    [0.551445, 0.551445]
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    if block_size is not None:
        check_positive_int("block_size", block_size)
    # The whole batch given as both roles stays one tensor (and its labels one), as the loss
    # classes pass it: a native kernel then takes the symmetry of its logits.
    same = anchors is candidates
    anchors = float_embeddings(anchors)
    candidates = anchors if same else ops.cast(as_tensor(candidates), anchors.dtype)
    heads = len(anchors.shape) == 3
    if heads != (len(candidates.shape) == 3):
        raise ValueError(
            "`anchors` and `candidates` should both be (M, D) and (N, D), or both have a "
            f"leading heads axis. Received shapes {tuple(anchors.shape)} and "
            f"{tuple(candidates.shape)}"
        )
    if heads:
        anchor_labels, candidate_labels = list(anchor_labels), list(candidate_labels)
    else:
        anchor_labels, candidate_labels = [anchor_labels], [candidate_labels]
        anchors = anchors[None]
        candidates = anchors if same else candidates[None]
    rules: list[str] = [] if callable(rule) else [rule] if isinstance(rule, str) else list(rule)
    if len(rules) == 1:
        rules = rules * len(anchor_labels)
    if not len(anchor_labels) == len(candidate_labels) == anchors.shape[0] or (
        rules and len(rules) != anchors.shape[0]
    ):
        raise ValueError(
            "With heads, `anchor_labels`, `candidate_labels` and `rule` (a list, or one "
            f"rule for all) should have one entry per head ({anchors.shape[0]}). Received "
            f"{len(anchor_labels)}, {len(candidate_labels)} and "
            f"{'a function' if callable(rule) else len(rules)}"
        )
    if callable(rule):
        weights = rule
    else:
        given_labels = anchor_labels
        anchor_labels = [
            check_labels_for_rule(y, r, "anchor_labels")
            for y, r in zip(anchor_labels, rules, strict=True)
        ]
        candidate_labels = [
            checked if y is own else check_labels_for_rule(y, r, "candidate_labels")
            for y, own, checked, r in zip(
                candidate_labels, given_labels, anchor_labels, rules, strict=True
            )
        ]
        weights = rule_weights(rules)
        if binary is None:
            binary = all(r in BINARY_RULES for r in rules)
        if equal_classes is None:
            equal_classes = all(r == "equal" for r in rules)

    def weights_fn(start: int | Tensor, rows: int | None) -> Tensor:
        return weights([take_rows(y, start, rows) for y in anchor_labels], candidate_labels)

    if candidate_mask is not None:
        candidate_mask = ops.cast(as_tensor(candidate_mask), "bool")
    loss, n_positives = supcon_rows(
        anchors,
        candidates,
        inverse_temperature(temperature, anchors.dtype),
        weights_fn,
        binary=bool(binary),
        normalization=normalization,
        anchor_offset=anchor_offset,
        candidate_mask=candidate_mask,
        block_rows=block_size
        or auto_block_rows(anchors.shape[-2], candidates.shape[-2], anchors.shape[0]),
        anchor_weights=anchor_weights,
        class_ids=(anchor_labels, candidate_labels) if equal_classes else None,
    )
    if not heads:
        loss, n_positives = loss[0], n_positives[0]
    return loss, n_positives > 0


def float_embeddings(z: Tensor) -> Tensor:
    """`z` in float32 (float64 stays float64): similarities are never computed in half precision."""
    z = as_tensor(z)
    if keras.backend.standardize_dtype(z.dtype) in ("float32", "float64"):
        return z
    return ops.cast(z, "float32")


def inverse_temperature(temperature: float | Tensor, dtype: str) -> Tensor:
    """`1 / temperature` as a scalar tensor, or `(H, 1, 1)` for `(H,)` temperatures."""
    inverse = 1.0 / ops.cast(temperature, dtype)
    if len(ops.shape(inverse)) == 1:
        inverse = ops.reshape(inverse, (-1, 1, 1))
    return inverse
