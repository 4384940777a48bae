"""L2 normalisation of embeddings, with a gradient that stays finite at zero vectors."""

import keras
from keras import ops

from keras_mlcl.utils.types import Tensor

# Floor of the squared norm: rows shorter than 1e-12 are divided by 1e-12.
SQUARED_NORM_FLOOR = 1e-24


def l2_normalize(x: Tensor, axis: int = -1) -> Tensor:
    """Scales `x` to unit L2 norm along `axis`.

    ```
    l2_normalize(x) = x / sqrt(max(sum(x ** 2), 1e-24))
    ```

    The floor is on the squared norm, so the square root never sees 0: a zero row maps to zero
    with a finite gradient. (`keras.ops.normalize` floors the norm after `rsqrt`, whose
    gradient at a zero row is NaN on JAX and PyTorch, and its default `epsilon` of 1e-7 leaves
    rows shorter than 1e-7 short of unit length.)

    Args:
        x: a floating-point tensor.
        axis: the axis to normalise along. Defaults to -1.

    Returns:
        A tensor of the shape and dtype of `x` (computed in float32, or float64 for float64
        inputs).

    Example:

    >>> x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype="float32")
    >>> [[round(float(v), 6) for v in row] for row in keras.ops.convert_to_numpy(l2_normalize(x))]
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    # The floor underflows in float16: compute in float32 (float64 stays float64).
    x = x if dtype == "float64" else ops.cast(x, "float32")
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    floor = ops.convert_to_tensor(SQUARED_NORM_FLOOR, dtype=x.dtype)
    return ops.cast(x / ops.sqrt(ops.maximum(squared_norm, floor)), dtype)
