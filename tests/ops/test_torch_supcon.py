"""The torch-native blockwise SupCon kernel against autodiff of the plain formula."""

import keras
import numpy as np
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("the torch fast path runs under KERAS_BACKEND=torch", allow_module_level=True)

import torch  # noqa: E402

from keras_mlcl.backend.torch_buffers import POOL  # noqa: E402
from keras_mlcl.backend.torch_supcon import SYMMETRIC_SPREAD  # noqa: E402
from keras_mlcl.backend.torch_supcon import supcon_rows  # noqa: E402


def equal_weights(ids):
    """The `"equal"` rule's weights function over one id tensor per head (-1 unlabelled)."""

    def weights(start, rows):
        return torch.stack(
            [
                (y[start : start + rows, None] == y) & (y[start : start + rows, None] >= 0)
                for y in ids
            ]
        ).float()

    return weights


def reference(
    anchors, candidates, inverse_temperature, weights, binary, normalization, offset, mask
):
    """`(loss, n)` from the formula with every pair materialised, for torch autograd."""
    heads, rows, _ = anchors.shape
    size = candidates.shape[1]
    logits = inverse_temperature * anchors @ candidates.transpose(-1, -2)
    kept = torch.ones(rows, size, dtype=torch.bool)
    if offset is not None:
        kept[torch.arange(rows), torch.arange(rows) + int(offset)] = False
    if mask is not None:
        kept = kept & mask
    logits = logits.masked_fill(~kept, -torch.inf)
    log_denominator = torch.logsumexp(logits, dim=-1)
    weights = weights * kept
    weight_sum = weights.sum(-1)
    weighted = (weights * logits.masked_fill(~kept, 0.0)).sum(-1)
    if normalization == "count" and not binary:
        n = (weights > 0).sum(-1).to(anchors.dtype)
    else:
        n = weight_sum
    raw = weight_sum * log_denominator - weighted
    valid = n > 0
    return torch.where(valid, raw / torch.where(valid, n, 1.0), 0.0), n


def make_case(
    rng,
    heads=1,
    terms=1,
    rows=12,
    size=20,
    dim=5,
    binary=True,
    offset=None,
    mask=False,
    temperature=0.3,
    per_head=False,
):
    """Embeddings, weights `(T, size, size)` over all candidates, temperature and mask."""
    candidates = rng.normal(size=(heads, size, dim))
    candidates /= np.linalg.norm(candidates, axis=-1, keepdims=True)
    if offset is None:
        anchors = rng.normal(size=(heads, rows, dim))
        anchors /= np.linalg.norm(anchors, axis=-1, keepdims=True)
    else:
        anchors = candidates[:, offset : offset + rows]
    total = rows if offset is None else size
    labels = rng.integers(0, 4, size=(terms, max(total, size)))
    weights = (labels[:, :, None] == labels[:, None, :size]).astype("float64")
    if not binary:
        weights *= rng.choice([0.25, 0.5, 1.0], size=weights.shape)
    if offset is not None:
        weights = weights[:, offset : offset + rows]
    else:
        weights = weights[:, :rows]
    # A row with no positive at all: loss 0, zero gradient.
    weights[:, 1] = 0.0
    if per_head:
        inverse_temperature = (1.0 / np.linspace(temperature, 2 * temperature, heads)).reshape(
            heads, 1, 1
        )
    else:
        inverse_temperature = np.array(1.0 / temperature)
    candidate_mask = rng.random(size) > 0.25 if mask else None
    return anchors, candidates, inverse_temperature, weights, candidate_mask


def run_both(case, binary, normalization, offset, block_rows, offset_tensor=False):
    anchors, candidates, inverse_temperature, weights, mask = case
    tensors = {}
    for dtype in (torch.float32, torch.float64):
        a = torch.tensor(anchors, dtype=dtype, requires_grad=True)
        c = torch.tensor(candidates, dtype=dtype, requires_grad=True)
        t = torch.tensor(inverse_temperature, dtype=dtype, requires_grad=True)
        tensors[dtype] = (a, c, t)
    a, c, t = tensors[torch.float32]
    w = torch.tensor(weights, dtype=torch.float32)
    m = None if mask is None else torch.tensor(mask)
    given_offset = torch.tensor(offset) if offset_tensor and offset is not None else offset
    loss, n = supcon_rows(
        a,
        c,
        t,
        lambda start, rows: w[:, start : start + rows].clone(),
        binary,
        normalization,
        given_offset,
        m,
        block_rows,
    )
    a64, c64, t64 = tensors[torch.float64]
    expected, expected_n = reference(
        a64, c64, t64, torch.tensor(weights), binary, normalization, offset, m
    )
    upstream = torch.tensor(np.random.default_rng(7).normal(size=tuple(loss.shape)))
    (loss * upstream.float()).sum().backward()
    (expected * upstream).sum().backward()
    np.testing.assert_allclose(n.numpy(), expected_n.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        loss.detach().numpy(), expected.detach().numpy(), atol=2e-5, rtol=1e-4
    )
    for ours, theirs in ((a, a64), (c, c64), (t, t64)):
        assert torch.isfinite(ours.grad).all()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-4, rtol=1e-4)
    return loss, n, a.grad


@pytest.mark.parametrize("block_rows", [None, 5])
@pytest.mark.parametrize("offset", [None, 0, 6])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("normalization", ["count", "weight"])
def test_matches_autodiff_reference(block_rows, offset, binary, normalization):
    rng = np.random.default_rng(0)
    case = make_case(rng, binary=binary, offset=offset)
    loss, n, grad = run_both(case, binary, normalization, offset, block_rows)
    # The row without positives: loss 0, count 0 and no gradient to its anchor.
    assert float(loss[0, 1]) == 0.0 and float(n[0, 1]) == 0.0
    if offset is None:
        assert float(grad[0, 1].abs().max()) == 0.0


@pytest.mark.parametrize("block_rows", [None, 4])
def test_candidate_mask_and_tensor_offset(block_rows):
    rng = np.random.default_rng(1)
    case = make_case(rng, offset=3, mask=True, binary=False)
    run_both(case, False, "count", 3, block_rows, offset_tensor=True)


@pytest.mark.parametrize("block_rows", [None, 5])
@pytest.mark.parametrize("binary", [True, False])
def test_levels_share_one_similarity_matrix(block_rows, binary):
    rng = np.random.default_rng(2)
    case = make_case(rng, terms=3, offset=0, rows=20, binary=binary)
    loss, n, _ = run_both(case, binary, "count", 0, block_rows)
    assert tuple(loss.shape) == (3, 20)


@pytest.mark.parametrize("block_rows", [None, 5])
def test_heads_with_their_own_temperatures(block_rows):
    rng = np.random.default_rng(3)
    case = make_case(rng, heads=2, terms=2, offset=0, rows=20, per_head=True, binary=False)
    run_both(case, False, "weight", 0, block_rows)


@pytest.mark.parametrize("block_rows", [None, 7])
def test_small_temperature_is_stable(block_rows):
    rng = np.random.default_rng(4)
    case = make_case(rng, offset=0, rows=20, temperature=0.05)
    loss, _, _ = run_both(case, True, "count", 0, block_rows)
    assert torch.isfinite(loss).all() and float(loss.max()) > 10.0


def test_hand_computed_value():
    z = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    labels = torch.tensor([0, 0, 1, 1])

    def weights(start, rows):
        return (labels[start : start + rows, None] == labels).float()[None]

    loss, n = supcon_rows(z, z, torch.tensor(1.0), weights, True, "count", 0, None, None)
    np.testing.assert_allclose(
        loss.numpy(), np.full((1, 4), np.log(1 + 2 * np.exp(-1.0))), rtol=1e-6
    )
    np.testing.assert_array_equal(n.numpy(), np.ones((1, 4)))


def test_invalid_normalization_is_named():
    z = torch.zeros(1, 2, 2)
    with pytest.raises(ValueError, match="`normalization`"):
        supcon_rows(z, z, torch.tensor(1.0), None, True, "mean", 0, None, None)


@pytest.mark.parametrize("block_rows", [None, 3])
def test_anchors_as_a_view_of_the_candidates(block_rows):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(16, 4))
    labels = torch.tensor(rng.integers(0, 3, size=16))
    weights = (labels[2:10, None] == labels).double()[None]
    gradients = []
    for dtype, kernel in ((torch.float32, supcon_rows), (torch.float64, None)):
        leaf = torch.tensor(z, dtype=dtype, requires_grad=True)
        t = torch.tensor(4.0, dtype=dtype)
        if kernel is None:
            loss, _ = reference(leaf[None, 2:10], leaf[None], t, weights, True, "count", 2, None)
        else:
            loss, _ = kernel(
                leaf[None, 2:10],
                leaf[None],
                t,
                lambda start, rows: weights[:, start : start + rows].float(),
                True,
                "count",
                2,
                None,
                block_rows,
            )
        loss.sum().backward()
        gradients.append(leaf.grad.double().numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], atol=1e-4, rtol=1e-4)
    assert np.abs(gradients[0][10:]).max() > 0.0


@pytest.mark.parametrize("rule", ["equal", "jaccard"])
@pytest.mark.parametrize("block_size", [None, 5])
def test_native_kernel_equals_the_keras_ops_kernel(rule, block_size):
    # `supcon_rows` dispatches to this kernel on torch; `native=False` runs
    # the keras.ops kernel: values and gradients (embeddings, temperatures)
    # agree, for two heads with their own rules, a replica's slice of rows
    # and empty slots.
    from keras_mlcl.ops.blockwise import supcon_rows as dispatched
    from keras_mlcl.ops.blockwise import take_rows
    from keras_mlcl.ops.positives import rule_weights

    rng = np.random.default_rng(11)
    n, rows, offset = 24, 10, 7
    coarse = torch.as_tensor(rng.integers(0, 3, n))
    multi_hot = torch.as_tensor((rng.random((n, 4)) < 0.4).astype("int32"))
    labels = [coarse, multi_hot] if rule == "jaccard" else [coarse, coarse]
    rules = ["equal", rule]
    z = rng.normal(size=(2, n, 6))
    z = torch.tensor(z / np.linalg.norm(z, axis=-1, keepdims=True), dtype=torch.float32)
    mask = torch.as_tensor(rng.random(n) < 0.85)
    mask[offset : offset + rows] = True

    def run(native):
        x = z.clone().requires_grad_(True)
        t = torch.tensor([[[2.0]], [[8.0]]], requires_grad=True)
        anchor_labels = [y[offset : offset + rows] for y in labels]
        loss, count = dispatched(
            x[:, offset : offset + rows],
            x,
            t,
            lambda start, size: rule_weights(rules)(
                [take_rows(y, start, size) for y in anchor_labels], labels
            ),
            binary=rule == "equal",
            normalization="count",
            anchor_offset=offset,
            candidate_mask=mask,
            block_rows=block_size,
            native=native,
            # Both heads "equal": the native kernel sums per class (keras.ops ignores it).
            class_ids=(anchor_labels, labels) if rule == "equal" else None,
        )
        (loss * torch.linspace(0.5, 1.5, rows)).sum().backward()
        return loss.detach(), count, x.grad, t.grad

    for fast, plain in zip(run(True), run(False), strict=True):
        np.testing.assert_allclose(fast.detach(), plain.detach(), atol=2e-5, rtol=1e-5)
    assert run(True)[0].abs().sum() > 0


@pytest.mark.parametrize("summed", [False, True])
@pytest.mark.parametrize("block_rows", [None, 4])
@pytest.mark.parametrize("offset", [None, 0, 5, "whole batch"])
def test_class_ids_equal_the_reference(summed, block_rows, offset):
    # Per-class sums in place of weights: two heads with their own ids and
    # temperatures, float and negative (unlabelled) ids, per-head empty slots,
    # per anchor and summed with anchor weights, one block and several; the
    # whole batch against itself is one tensor and one list of ids.
    rng = np.random.default_rng(12)
    whole = offset == "whole batch"
    heads, size, rows, dim = 2, 22, 22 if whole else 9, 5
    offset = 0 if whole else offset
    z = rng.normal(size=(heads, size, dim))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    other = rng.normal(size=(heads, rows, dim))
    other /= np.linalg.norm(other, axis=-1, keepdims=True)
    ids = rng.integers(-1, 4, size=(heads, size)).astype("float64")
    ids[0, :3] = 7.0  # a class with no other member among some anchors
    anchor_ids = ids[:, offset : offset + rows] if offset is not None else ids[:, :rows][:, ::-1]
    mask = rng.random((heads, size)) > (0.0 if whole else 0.2)  # no empty slot: one matmul
    if offset is not None:
        mask[:, offset : offset + rows] = True
    weights = (anchor_ids[:, :, None] == ids[:, None, :]) & (anchor_ids[:, :, None] >= 0)
    anchor_weights = torch.tensor(rng.uniform(0.5, 1.5, size=(heads, rows)))
    results = []
    for dtype in (torch.float32, torch.float64):
        c = torch.tensor(z, dtype=dtype, requires_grad=True)
        a_values = z[:, offset : offset + rows] if offset is not None else other
        a = torch.tensor(a_values, dtype=dtype, requires_grad=True)
        t = torch.tensor([[[2.0]], [[5.0]]], dtype=dtype, requires_grad=True)
        m = torch.tensor(mask)
        if dtype == torch.float32:
            candidate_ids = [torch.tensor(y, dtype=torch.float32) for y in ids]
            loss, n = supcon_rows(
                c if whole else a,
                c,
                t,
                None,
                True,
                "count",
                offset,
                None if whole else m,
                block_rows,
                anchor_weights=anchor_weights.float() if summed else None,
                class_ids=(
                    candidate_ids if whole else [torch.tensor(y.copy()) for y in anchor_ids],
                    candidate_ids,
                ),
            )
        else:
            loss, n = reference(
                a, c, t, torch.tensor(weights, dtype=dtype), True, "count", offset, m.unsqueeze(1)
            )
            if summed:
                loss = torch.where(n > 0, loss * anchor_weights, 0.0).sum(-1)
        upstream = torch.linspace(0.5, 2.0, int(np.prod(loss.shape)), dtype=dtype)
        (loss * upstream.view(loss.shape)).sum().backward()
        grads = (a.grad, c.grad)
        if whole:  # one input: its gradient is the sum of both roles'
            grads = (c.grad if a.grad is None else a.grad + c.grad,)
        results.append((loss.detach(), n, *grads, t.grad))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours.double().numpy(), theirs.numpy(), atol=1e-4, rtol=1e-4)
    assert float(results[1][0].abs().sum()) > 0 and float(results[1][1].min()) == 0.0


def test_deterministic_algorithms_use_the_weights():
    # Under `torch.use_deterministic_algorithms(True)` the class sums (scatter-adds) give
    # way to the weights function: same value, and the weights function is called.
    z = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]]])
    labels = torch.tensor([0, 0, 1, 1])
    calls = []

    def weights(start, rows):
        calls.append(rows)
        return (labels[start : start + rows, None] == labels).float()[None]

    expected, _ = supcon_rows(z, z, torch.tensor(2.0), weights, True, "count", 0)
    assert calls == [4]
    was = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        loss, _ = supcon_rows(
            z, z, torch.tensor(2.0), weights, True, "count", 0, class_ids=([labels], [labels])
        )
    finally:
        torch.use_deterministic_algorithms(was)
    assert calls == [4, 4]
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("class_ids", [False, True])
def test_summed_heads_share_a_scalar_temperature(class_ids):
    # Two heads, one scalar temperature: the summed kernel's gradient to it is the sum over
    # heads of each head's, scaled by that head's upstream (as the per-anchor kernel's).
    rng = np.random.default_rng(13)
    z = rng.normal(size=(2, 10, 4))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    ids = [torch.tensor(rng.integers(-1, 3, size=10)) for _ in range(2)]

    weights = equal_weights(ids)

    upstream = torch.tensor([0.7, 1.9])
    results = []
    for summed in (False, True):
        x = torch.tensor(z, dtype=torch.float32, requires_grad=True)
        t = torch.tensor(3.0, requires_grad=True)
        loss, n = supcon_rows(
            x,
            x,
            t,
            weights,
            True,
            "count",
            0,
            anchor_weights=torch.ones(2, 10, dtype=torch.float64) if summed else None,
            class_ids=(ids, ids) if class_ids else None,
        )
        total = loss if summed else torch.where(n > 0, loss, 0.0).sum(-1)
        (total * upstream).sum().backward()
        results.append((total.detach(), x.grad, t.grad))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("class_ids", [False, True])
def test_backward_twice_with_a_retained_graph(class_ids):
    # The first backward pass gives the kept block's buffer back to the pool: a second one
    # of the same graph recomputes the block, with the same result.
    rng = np.random.default_rng(14)
    z = rng.normal(size=(2, 12, 4))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    ids = [torch.tensor(rng.integers(-1, 3, size=12)) for _ in range(2)]

    weights = equal_weights(ids)

    x = torch.tensor(z, dtype=torch.float32, requires_grad=True)
    t = torch.tensor(3.0, requires_grad=True)
    loss, n = supcon_rows(
        x, x, t, weights, True, "count", 0, class_ids=(ids, ids) if class_ids else None
    )
    total = (loss * torch.linspace(0.5, 1.5, 24).view(2, 12)).sum()
    total.backward(retain_graph=True)
    once = x.grad.clone(), t.grad.clone()
    total.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), 2 * once[1].numpy(), rtol=1e-5, atol=1e-6)


def test_far_apart_row_sums_take_two_matmuls():
    # At a tiny temperature the rows' log-sum-exps lie further apart than the one-matmul
    # gradient of the whole batch allows (SYMMETRIC_SPREAD): the two-matmul gradient is
    # used, equal to that of the weights.
    rng = np.random.default_rng(15)
    z = rng.normal(size=(1, 16, 3))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    ids = [torch.tensor(rng.integers(0, 3, size=16))]
    t = 200.0
    logits = t * z[0] @ z[0].T
    np.fill_diagonal(logits, -np.inf)
    high = logits.max(-1)
    lse = high + np.log(np.exp(logits - high[:, None]).sum(-1))
    assert lse.max() - lse.min() > SYMMETRIC_SPREAD

    def weights(start, rows):
        y = ids[0]
        return (y[start : start + rows, None] == y).float()[None]

    results = []
    for class_ids in ((ids, ids), None):
        x = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        loss, _ = supcon_rows(
            x,
            x,
            torch.tensor(t, dtype=torch.float64),
            weights,
            True,
            "count",
            0,
            class_ids=class_ids,
        )
        (loss * torch.linspace(0.5, 1.5, 16, dtype=torch.float64)).sum().backward()
        results.append((loss.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    assert np.abs(results[0][1]).sum() > 0


def test_block_buffers_go_back_to_the_pool():
    # One block's buffer is held for the backward pass and given back after it, with the
    # scratch buffer of the one-matmul gradient; the next call takes the same memory again.
    z = torch.nn.functional.normalize(torch.randn(1, 64, 8), dim=-1)
    labels = torch.arange(64) % 5
    pools, held = [], []
    for _ in range(2):
        x = z.clone().requires_grad_(True)
        loss, _ = supcon_rows(
            x, x, torch.tensor(5.0), None, True, "count", 0, class_ids=([labels], [labels])
        )
        held.append({b.data_ptr() for b in POOL._free})
        loss.sum().backward()
        pools.append({b.data_ptr() for b in POOL._free})
    assert pools[0] == pools[1] and len(pools[1]) == 2
    assert len(pools[1] - held[1]) == 1  # the workspace, held until the backward pass
    with torch.no_grad():  # no backward pass to wait for: given back at once
        supcon_rows(z, z, torch.tensor(5.0), None, True, "count", 0, class_ids=([labels], [labels]))
    assert {b.data_ptr() for b in POOL._free} == pools[1]


def test_a_compiled_loss_runs_the_kernel_eagerly():
    # Under `torch.compile` the kernel is left out of the graph (it runs eagerly, with its
    # in-place passes): the compiled loss gives the eager loss's value and gradient.
    from keras_mlcl.losses import SupCon

    loss = SupCon(temperature=0.2)
    rng = np.random.default_rng(16)
    z = rng.normal(size=(12, 4))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    labels = torch.tensor(rng.integers(0, 3, size=12))
    results = []
    for fn in (
        lambda x: loss(labels, x),
        torch.compile(lambda x: loss(labels, x), backend="eager"),
    ):
        x = torch.tensor(z, dtype=torch.float32, requires_grad=True)
        value = fn(x)
        value.backward()
        results.append((value.detach().numpy(), x.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("class_ids", [False, True])
def test_the_gradient_is_not_differentiable_again(class_ids):
    # Second-order gradients through the closed-form gradient (computed outside autograd)
    # are refused loudly, never silently zero.
    z = torch.nn.functional.normalize(torch.randn(1, 10, 3, dtype=torch.float64), dim=-1)
    labels = torch.arange(10) % 3

    def weights(start, rows):
        return (labels[start : start + rows, None] == labels).double()[None]

    x = z.clone().requires_grad_(True)
    loss, _ = supcon_rows(
        x,
        x,
        torch.tensor(2.0),
        weights,
        True,
        "count",
        0,
        class_ids=([labels], [labels]) if class_ids else None,
    )
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(loss.sum(), x, create_graph=True)
    (gradient,) = torch.autograd.grad(loss.sum(), x)  # a first-order gradient still works
    assert gradient.abs().sum() > 0


@pytest.mark.parametrize("stacked", [False, True])
def test_supcon_from_labels_gives_one_tensor_the_one_matmul_gradient(stacked, monkeypatch):
    # `supcon_from_labels(z, z, y, y, ...)` keeps `z` (and `y`) one object down to the kernel,
    # as the loss classes do, so the whole batch's gradient takes one matmul.
    from keras_mlcl.backend import torch_supcon
    from keras_mlcl.ops import supcon_from_labels

    taken = []
    original = torch_supcon._ClassPositives.whole_batch_gradient

    def counted(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(torch_supcon._ClassPositives, "whole_batch_gradient", counted)
    z = torch.nn.functional.normalize(torch.randn(2 if stacked else 1, 32, 8), dim=-1)
    x = (z if stacked else z[0]).clone().requires_grad_(True)
    y = torch.randint(0, 4, (32,))
    labels = [y, y] if stacked else y
    temperature = torch.tensor([0.2, 0.5]) if stacked else 0.2
    loss, _ = supcon_from_labels(x, x, labels, labels, temperature)
    loss.sum().backward()
    assert taken == [True]
    # Two objects take the two-matmul gradient.
    taken.clear()
    loss, _ = supcon_from_labels(x, x + 0.0, labels, labels, temperature)
    loss.sum().backward()
    assert taken == []
