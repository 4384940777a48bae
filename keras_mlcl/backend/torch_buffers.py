"""Block buffers of the torch SupCon kernel, handed on from one call to the next (CPU only).

A buffer of megabytes that the allocator has just taken from the operating system is paged
in on first use, one fault per 4 KB page; glibc gives large freed buffers back at once, so
every call of the kernel would pay that again (at N = 1024, about as long as its softmax).
The kernel takes its `(heads, rows, N)` buffers from here and gives them back once no pass
reads them any more: after its backward pass, or at the end of the forward pass when there
is no backward pass to come or the blocks are recomputed there. CUDA's caching allocator
already reuses memory, so on other devices this is plain allocation; so it is for tensors of
other kinds (inference-mode tensors, the fake tensors of `torch.export`), which are never
kept.
"""

import threading

import torch

# Buffers kept between calls: a call holds at most two at a time.
KEPT_BUFFERS = 2


class BufferPool:
    """Freed block buffers, kept for the next call (at most `size`, the latest).

    Args:
        size: how many free buffers to keep. Defaults to `KEPT_BUFFERS`.

    Example:

    >>> pool = BufferPool()
    >>> like = torch.zeros(2)
    >>> first = pool.take(1000, like)
    >>> pool.give(first)
    >>> pool.take(800, like).data_ptr() == first.data_ptr()  # the same memory again
    True
    """

    def __init__(self, size: int = KEPT_BUFFERS) -> None:
        self.size = size
        self._free: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def take(self, numel: int, like: torch.Tensor) -> torch.Tensor:
        """A 1-D buffer of at least `numel` elements of `like`'s dtype and device: the
        smallest kept one that fits (a plain CPU tensor `like`), or a new one."""
        if _poolable(like):
            with self._lock:
                fits = [
                    i
                    for i, b in enumerate(self._free)
                    if b.dtype == like.dtype and b.numel() >= numel
                ]
                if fits:
                    return self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        return like.new_empty(numel)

    def give(self, buffer: torch.Tensor) -> None:
        """Keeps `buffer` (from `take`, no longer in use) for a later `take`: a plain CPU
        tensor only."""
        if not _poolable(buffer) or buffer.is_inference():
            return
        with self._lock:
            self._free.append(buffer)
            del self._free[: max(0, len(self._free) - self.size)]


def _poolable(tensor: torch.Tensor) -> bool:
    """Whether `tensor` is a plain CPU tensor (not a subclass such as `torch.export`'s fake
    tensors), the only kind the pool keeps or hands out."""
    return type(tensor) is torch.Tensor and tensor.device.type == "cpu"


POOL = BufferPool()
