"""MultiSupCon: Jaccard-weighted SupCon with a threshold on the weights."""

from typing import Any

import keras

from keras_mlcl.losses.supcon import SupCon


@keras.saving.register_keras_serializable(package="keras_mlcl")
class MultiSupCon(SupCon):
    """Multi-label SupCon with thresholded Jaccard positive weights.

    ```
    w_ij = J_ij if J_ij >= min_weight else 0,  J_ij = |y_i & y_j| / |y_i | y_j|
    ```

    A pair with `J_ij = 0` is never a positive, even with `min_weight=0`;
    with `min_weight=0` this is `SupCon(positives="jaccard")`.
    pytorch-metric-learning has no such loss: an open, unmerged pull request
    there (#667) proposes a `MultiSupConLoss` with a `threshold` (0.3 by
    default, as `min_weight` here).

    Args:
        temperature: float >= 1e-4 (`keras_mlcl.losses.temperature`).
            Defaults to 0.1.
        min_weight: Jaccard threshold in [0, 1]. Defaults to 0.3.
        name: the loss name. Defaults to `"multi_supcon"`.
        **kwargs: the arguments every loss takes (`normalization`,
            `normalize`, `block_size`, `reduction`, `dtype`), see
            `ContrastiveLoss`.

    Example:

    >>> loss = MultiSupCon(min_weight=0.5)
    >>> z = keras.ops.normalize(keras.random.normal((4, 8)), axis=-1)
    >>> labels = keras.ops.convert_to_tensor(
    ...     [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]])
    >>> value = loss(labels, z)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        min_weight: float = 0.3,
        *,
        name: str = "multi_supcon",
        **kwargs: Any,
    ) -> None:
        self._fixed(kwargs, "positives")
        super().__init__(
            temperature=temperature, positives="jaccard", min_weight=min_weight, name=name, **kwargs
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["positives"]
        return config
