"""SimDis: similarity-dissimilarity weighted SupCon for multi-label data."""

from typing import Any

import keras

from keras_mlcl.losses.supcon import SupCon


@keras.saving.register_keras_serializable(package="keras_mlcl")
class SimDisLoss(SupCon):
    """SupCon with similarity-dissimilarity positive weights (arXiv 2410.13439).

    ```
    w_ij = K^s_ij * K^d_ij,  K^s_ij = |S & T| / |S|,  K^d_ij = 1 / (1 + |T - S|)
    ```

    where `S` is the anchor's label set (row `i` of the multi-hot `y_true`)
    and `T` the sample's (row `j`). The five relations of the paper follow:
    disjoint sets weigh 0, identical sets 1, `T` a strict subset of `S`
    `|T| / |S|`, `S` a strict subset of `T` `1 / (1 + |T| - |S|)`, partial
    overlaps the product. The weights are asymmetric. On single-label
    (one-hot) data every weight is 0 or 1 and the loss equals `SupCon`.

    Args:
        temperature: positive float. Defaults to 0.07.
        normalization: `"count"` (default) or `"weight"`.
        normalize: L2-normalise `y_pred` inside the loss. Defaults to False.
        block_size: anchor rows per block of the kernel. Defaults to None
            (automatic).
        reduction: see `ContrastiveLoss`.
        name: the loss name. Defaults to `"simdis"`.
        dtype: the dtype of the returned loss.

    Example:

    >>> loss = SimDisLoss()
    >>> z = keras.ops.normalize(keras.random.normal((4, 8)), axis=-1)
    >>> labels = keras.ops.convert_to_tensor(
    ...     [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]])
    >>> value = loss(labels, z)
    """

    def __init__(
        self,
        temperature: float = 0.07,
        normalization: str = "count",
        normalize: bool = False,
        block_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "simdis",
        dtype: str | None = None,
    ) -> None:
        super().__init__(
            temperature=temperature,
            positives="simdis",
            normalization=normalization,
            normalize=normalize,
            block_size=block_size,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["positives"], config["min_weight"]
        return config
