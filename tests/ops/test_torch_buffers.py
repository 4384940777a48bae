"""The torch kernel's pool of block buffers: what it keeps, and for whom."""

import keras
import pytest

if keras.backend.backend() != "torch":
    pytest.skip("the torch kernel's buffers run under KERAS_BACKEND=torch", allow_module_level=True)

import torch  # noqa: E402

from keras_mlcl.backend.torch_buffers import BufferPool  # noqa: E402


def test_keeps_the_latest_buffers_and_hands_out_the_smallest_that_fits():
    pool = BufferPool(size=2)
    like = torch.zeros(1)
    small, large, largest = (pool.take(n, like) for n in (10, 100, 1000))
    for buffer in (small, large, largest):
        pool.give(buffer)
    assert [b.numel() for b in pool._free] == [100, 1000]  # the oldest went
    assert pool.take(50, like).data_ptr() == large.data_ptr()
    assert pool.take(50, like).data_ptr() == largest.data_ptr()
    assert pool.take(50, like).data_ptr() not in (large.data_ptr(), largest.data_ptr())
    nothing = BufferPool(size=0)
    nothing.give(small)
    assert nothing._free == []


def test_another_dtype_gets_a_buffer_of_its_own():
    pool = BufferPool()
    pool.give(pool.take(100, torch.zeros(1, dtype=torch.float64)))
    buffer = pool.take(100, torch.zeros(1))
    assert buffer.dtype == torch.float32 and len(pool._free) == 1


def test_inference_tensors_are_never_kept():
    # A buffer made under `torch.inference_mode` could not be written outside it.
    pool = BufferPool()
    with torch.inference_mode():
        buffer = pool.take(100, torch.zeros(1))
    pool.give(buffer)
    assert pool._free == []


def test_a_training_step_after_an_inference_mode_call():
    # Through the loss: a validation call under inference mode, then a training call.
    from keras_mlcl.losses import SupCon

    loss = SupCon(temperature=0.2)
    z = torch.nn.functional.normalize(torch.randn(32, 8), dim=-1)
    labels = torch.arange(32) % 4
    with torch.inference_mode():
        expected = float(loss(labels, z))
    x = z.clone().requires_grad_(True)
    value = loss(labels, x)
    value.backward()
    assert abs(float(value) - expected) < 1e-5 and x.grad.abs().sum() > 0
