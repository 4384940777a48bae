"""SupCon: supervised contrastive loss (Khosla et al., 2020, L_out)."""

from typing import Any

import keras

from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.temperature import check_temperature
from keras_mlcl.ops import POSITIVE_RULES
from keras_mlcl.ops import check_labels_for_rule
from keras_mlcl.ops.positives import BINARY_RULES
from keras_mlcl.ops.positives import rule_weights
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float


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
        temperature: float >= 1e-4 (`keras_mlcl.losses.temperature`), `tau`.
            Defaults to 0.1.
        positives: the positive rule, one of `"equal"` (int class ids `(N,)`,
            -1 unlabelled), `"any"`, `"exact"`, `"jaccard"`, `"simdis"`
            (multi-hot `(N, K)`). Defaults to `"equal"`.
        min_weight: weights below it are set to 0 (a thresholded rule, as in
            `MultiSupCon`). Defaults to 0.
        name: the loss name. Defaults to `"supcon"`.
        **kwargs: the arguments every loss takes (`normalization`,
            `normalize`, `block_size`, `reduction`, `dtype`), see
            `ContrastiveLoss`.

    Example:

    Two classes, each sample's one positive aligned with it and orthogonal
    to the others: `log(1 + 2 exp(-1 / tau))`.

    >>> loss = SupCon(temperature=1.0)
    >>> z = keras.ops.convert_to_tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> round(float(loss(keras.ops.convert_to_tensor([0, 0, 1, 1]), z)), 6)
    0.551445
    """

    def __init__(
        self,
        temperature: float = 0.1,
        positives: str = "equal",
        *,
        min_weight: float = 0.0,
        name: str = "supcon",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.temperature = check_temperature("temperature", temperature)
        self.positives = check_choice("positives", positives, POSITIVE_RULES)
        self.min_weight = check_non_negative_float("min_weight", min_weight)
        self.binary_weights = self.positives in BINARY_RULES
        self.equal_classes = self.positives == "equal" and self.min_weight <= 1.0
        self._weights = rule_weights([self.positives], self.min_weight)

    def _fixed(self, kwargs: dict[str, Any], *names: str) -> None:
        """Refuses arguments a preset of SupCon fixes (they would not be saved)."""
        for name in names:
            if name in kwargs:
                raise TypeError(
                    f"{type(self).__name__} fixes `{name}`; use `SupCon({name}=...)`. "
                    f"Received: `{name}`={kwargs[name]!r}"
                )

    def check_labels(self, labels: Tensor, head: str | None, name: str) -> Tensor:
        return check_labels_for_rule(labels, self.positives, name=name)

    def pair_weights(self, anchor_labels: list[Tensor], candidate_labels: list[Tensor]) -> Tensor:
        return self._weights(anchor_labels, candidate_labels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "temperature": self.temperature,
                "positives": self.positives,
                "min_weight": self.min_weight,
            }
        )
        return config
