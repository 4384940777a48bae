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
        temperature: float >= 1e-4 (`keras_mlcl.losses.temperature`).
            Defaults to 0.07.
        name: the loss name. Defaults to `"simdis"`.
        **kwargs: the arguments every loss takes (`normalization`,
            `normalize`, `block_size`, `reduction`, `dtype`), see
            `ContrastiveLoss`.

    Example:

    Label sets `{a, b}`, `{a, b, c}` and `{d}`: the first two are positives
    of each other with weights 1/2 and 2/3 (asymmetric).

    >>> loss = SimDisLoss(temperature=1.0)
    >>> z = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> labels = keras.ops.convert_to_tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    >>> round(float(loss(labels, z)), 6)
    0.182736
    """

    def __init__(self, temperature: float = 0.07, *, name: str = "simdis", **kwargs: Any) -> None:
        self._fixed(kwargs, "positives", "min_weight")
        super().__init__(temperature=temperature, positives="simdis", name=name, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["positives"], config["min_weight"]
        return config
