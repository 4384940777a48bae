"""An MLP encoder for feature vectors."""

import keras
import numpy as np


def vector_encoder(
    x_train: np.ndarray, embedding_dim: int = 128, width: int = 256
) -> keras.Sequential:
    """An MLP for feature vectors, standardised by a `Normalization` layer fit on `x_train`.

    ```
    x -> Normalization (mean and variance of x_train) -> Dense(width, relu)
      -> Dense(embedding_dim)
    ```

    A feature constant in `x_train` gets variance 1 (it is only centred), as in
    scikit-learn's `StandardScaler`: dividing by a zero spread would blow up any
    later input where that feature differs (on sparse bag-of-words inputs such as
    MULAN medical, 555 of 1,449 features are constant in training and half the
    test rows use one).

    A feature whose variance overflows float32 is refused (`ValueError`).

    Args:
        x_train: float array `(N, F)`, the training features.
        embedding_dim: positive int, the embedding size. Defaults to 128.
        width: positive int, the hidden layer width. Defaults to 256.

    Returns:
        A `keras.Sequential` mapping `(B, F)` features to embeddings
        `(B, embedding_dim)`.

    Example:

    >>> encoder = vector_encoder(np.random.rand(100, 12).astype("float32"), 32)
    >>> encoder.output_shape
    (None, 32)
    """
    x_train = np.asarray(x_train, dtype="float64")
    variance = x_train.var(axis=0)
    too_wide = np.flatnonzero(~(variance <= np.finfo("float32").max))
    if too_wide.size:
        column = int(too_wide[0])
        raise ValueError(
            f"`x_train` column {column} spreads too widely to standardise in float32 (variance "
            f"{variance[column]:.3g}, above {np.finfo('float32').max:.3g}; {too_wide.size} "
            "column(s) in all): rescale the feature."
        )
    normalization = keras.layers.Normalization(
        mean=x_train.mean(axis=0), variance=np.where(variance > 0, variance, 1.0)
    )
    return keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            normalization,
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(embedding_dim),
        ],
        name="vector_encoder",
    )
