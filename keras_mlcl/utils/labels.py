"""Label coercions shared by the evaluation and the model."""

import numpy as np

from keras_mlcl.utils.types import ArrayLike


def as_class_ids(labels: ArrayLike) -> np.ndarray | None:
    """`labels` as one int class id per row `(N,)`, or `None` when they are not that.

    A column `(N, 1)` is flattened to `(N,)`; labels of any other shape (multi-hot `(N, K)`,
    several columns) or of a non-integer dtype give `None`, so that each caller raises the
    error that names its own argument.

    Args:
        labels: the labels, any array-like.

    Returns:
        An integer NumPy array `(N,)`, or `None`.

    Example:

    >>> as_class_ids([[3], [1]]).tolist(), as_class_ids([[0, 1], [1, 0]])
    ([3, 1], None)
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        return None
    return array
