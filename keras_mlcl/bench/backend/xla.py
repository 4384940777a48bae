"""What the XLA-compiled benches share (JAX, TensorFlow): one mode, no peer library."""

from collections.abc import Callable

import keras


def optional_modes() -> list[str]:
    """None: the default XLA compilation is the only mode timed."""
    return []


def supcon_peer(temperature: float) -> tuple[Callable | None, str]:
    """None: the peer library (pytorch-metric-learning) runs on torch only.

    Args:
        temperature: the SupCon temperature the peer would use.

    Returns:
        `(None, reason)`.
    """
    active = keras.backend.backend()
    return None, f"pytorch-metric-learning needs the torch backend (active: {active})"
