"""SupCon: supervised contrastive loss (Khosla et al., 2020, L_out)."""

from typing import Any

import keras

from keras_mlcl.backend import as_tensor
from keras_mlcl.losses.contrastive_loss import ContrastiveInputs
from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.contrastive_loss import embeddings_tensor
from keras_mlcl.ops import POSITIVE_RULES
from keras_mlcl.ops import check_labels_for_rule
from keras_mlcl.ops.positives import BINARY_RULES
from keras_mlcl.ops.supcon import labels_weights_fn
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_float
from keras_mlcl.utils.validation import check_same_batch_size


@keras.saving.register_keras_serializable(package="keras_mlcl")
class SupCon(ContrastiveLoss):
    """Supervised contrastive loss over one set of embeddings.

    ```
    loss_i = - 1 / n_i * sum_{j in P(i)} w_ij log(
        exp(z_i . z_j / tau) / sum_{a != i} exp(z_i . z_a / tau))
    ```

    where:
    - `z` are the L2-normalised embeddings `y_pred` (all views stacked),
    - `w_ij` is the positive weight of the rule `positives` on `y_true`,
      `P(i) = {j != i : w_ij >= min_weight, w_ij > 0}`,
    - `n_i = |P(i)|` (`normalization="count"`) or `sum_j w_ij` (`"weight"`),
    - `tau` is `temperature`.

    With `positives="equal"` and one label per sample this is Khosla et
    al.'s `L_out`; `positives="jaccard"` is the multi-label "base" loss of
    arXiv 2412.00101. The loss is the mean over anchors that have a positive
    (0 when none has).

    Args:
        temperature: positive float, `tau`. Defaults to 0.1.
        positives: the positive rule, one of `"equal"` (int class ids `(N,)`,
            -1 unlabelled), `"any"`, `"exact"`, `"jaccard"`, `"simdis"`
            (multi-hot `(N, K)`). Defaults to `"equal"`.
        normalization: `"count"` (default) or `"weight"`.
        min_weight: weights below it are set to 0 (a thresholded rule, as in
            pytorch-metric-learning's `MultiSupConLoss`). Defaults to 0.
        normalize: if True, L2-normalise `y_pred` inside the loss (zero rows
            raise a `ValueError`). Defaults to False: heads normalise.
        block_size: anchor rows per block of the kernel. Defaults to None
            (automatic, see `keras_mlcl.ops.supcon_from_labels`).
        reduction: see `ContrastiveLoss`. Defaults to the mean over valid
            anchors.
        name: the loss name. Defaults to `"supcon"`.
        dtype: the dtype of the returned loss.

    Example:

    >>> loss = SupCon(temperature=0.1)
    >>> z = keras.ops.normalize(keras.random.normal((8, 16)), axis=-1)
    >>> labels = keras.ops.convert_to_tensor([0, 0, 1, 1, 2, 2, 3, 3])
    >>> value = loss(labels, z)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        positives: str = "equal",
        normalization: str = "count",
        min_weight: float = 0.0,
        normalize: bool = False,
        block_size: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "supcon",
        dtype: str | None = None,
    ) -> None:
        super().__init__(
            normalization=normalization,
            block_size=block_size,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.temperature = check_positive_float("temperature", temperature)
        self.positives = check_choice("positives", positives, POSITIVE_RULES)
        self.min_weight = check_non_negative_float("min_weight", min_weight)
        self.normalize = bool(normalize)

    def bank_labels(self, y_true: Tensor) -> Tensor:
        return check_labels_for_rule(as_tensor(y_true), self.positives, name="y_true")

    def contrastive_inputs(self, y_true: Tensor, y_pred: Tensor) -> ContrastiveInputs:
        z = embeddings_tensor(y_pred, normalize=self.normalize)
        labels = self.bank_labels(y_true)
        check_same_batch_size("y_true", labels, "y_pred", z)
        rule, min_weight = self.positives, self.min_weight
        return ContrastiveInputs(
            embeddings=z[None],
            labels=[labels],
            weights=lambda own, other: labels_weights_fn(own, other, [rule], min_weight),
            binary=rule in BINARY_RULES,
            temperature=self.temperature,
        )

    def reference_inputs(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, list[Tensor]]:
        bank = embeddings_tensor(embeddings, name="reference_embeddings")
        return bank[None], [
            check_labels_for_rule(as_tensor(labels), self.positives, name="reference_labels")
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "temperature": self.temperature,
                "positives": self.positives,
                "min_weight": self.min_weight,
                "normalize": self.normalize,
            }
        )
        return config
