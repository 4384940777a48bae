"""Type aliases used in the signatures of the public API."""

from collections.abc import Mapping
from typing import Any
from typing import TypeAlias

import numpy.typing as npt

Tensor: TypeAlias = Any
"""A tensor of the active backend (`tf.Tensor`, `jax.Array`, `torch.Tensor`) or a NumPy array."""

ArrayLike: TypeAlias = npt.ArrayLike
"""Host data: a NumPy array or anything `np.asarray` takes."""

LevelLabels: TypeAlias = Mapping[str, ArrayLike]
"""Labels per level name, e.g. `{"coarse": (N,) ids, "fine": (N,) ids}`."""
