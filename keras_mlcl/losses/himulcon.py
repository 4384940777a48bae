"""HiMulCon: hierarchical multi-label contrastive losses (Zhang et al., 2022)."""

import math
from typing import Any

import keras
from keras import ops

from keras_mlcl.losses.contrastive_loss import ContrastiveLoss
from keras_mlcl.losses.temperature import check_temperature
from keras_mlcl.ops import check_class_ids
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice

VARIANTS = ("hmc", "hce", "hmce")
LEVEL_PENALTIES = {"exp": math.exp, "pow2": lambda x: 2.0**x}


def hierarchy_level_weights(labels: Tensor, candidate_labels: Tensor | None = None) -> Tensor:
    """Positive weights of every hierarchy depth, finest first.

    Depth `k = 1 .. L`: samples `i` and `j` are positives when their labels
    agree on the first `L - k + 1` columns (coarse to fine), i.e. `k = 1`
    matches the full label path and `k = L` only the coarsest level. A
    negative id in the compared columns makes the sample unlabelled at that
    depth.

    Args:
        labels: int class ids `(N, L)`, coarse to fine.
        candidate_labels: optional `(M, L)` ids of the samples `j`.
            Defaults to None (`labels`: the `(N, N)` form).

    Returns:
        A float32 tensor `(L, N, N)` (`(L, N, M)` with `candidate_labels`).

    Example:

    Depth 1 (the full path) pairs each sample with itself only; depth 2
    (the coarse level) pairs both:

    >>> weights = hierarchy_level_weights(keras.ops.convert_to_tensor([[0, 0], [0, 1]]))
    >>> keras.ops.convert_to_numpy(weights).tolist()
    [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]
    """
    if candidate_labels is None:
        candidate_labels = labels
    n_levels = labels.shape[1]
    matches = []
    agree = None
    for level in range(n_levels):
        own, other = labels[:, level], candidate_labels[:, level]
        same = ops.logical_and(
            ops.equal(own[:, None], other[None, :]),
            ops.logical_and((own >= 0)[:, None], (other >= 0)[None, :]),
        )
        agree = same if agree is None else ops.logical_and(agree, same)
        matches.append(agree)
    return ops.cast(ops.stack(matches[::-1]), "float32")


@keras.saving.register_keras_serializable(package="keras_mlcl")
class HiMulCon(ContrastiveLoss):
    """Hierarchy-preserving contrastive losses of "Use All The Labels".

    Labels `y_true` are class ids `(N, L)`, coarse to fine. At depth
    `k = 1 .. L` (1 = the full label path, L = the coarsest level alone),
    samples are positives when they agree on every level down to depth `k`;
    `L_k` is the SupCon loss (mean over valid anchors) with those positives
    on the full batch. Then:

    ```
    hmc:  L = 1/L * sum_k penalty(1/k) * L_k
    hce:  L = 1/L * sum_k max(L_1, ..., L_k)
    hmce: L = 1/L * sum_k penalty(1/k) * max(L_1, ..., L_k)
    ```

    where `penalty` is `exp` or `2**x` (`level_penalty`), so pairs that agree
    on finer levels are pulled harder, and `hce`'s running maximum keeps a
    coarser depth's loss from falling below a finer one's.

    Differences from the reference implementation (Salesforce's
    hierarchicalContrastiveLearning): every depth is computed on the full
    batch, as the paper defines it; the reference code drops duplicate label
    paths between depths (its open issue #7), which changes both positives
    and denominators. All `L` columns given are levels here (the reference
    code treats its finest column as an instance id and skips that depth),
    and there is no `base_temperature` rescaling. The log-softmax is shared
    by all depths: one similarity matrix, `L` positive masks of fixed shape.

    Args:
        variant: `"hmc"`, `"hce"` or `"hmce"` (default).
        temperature: float >= 1e-4 (`keras_mlcl.losses.temperature`).
            Defaults to 0.1.
        level_penalty: `"exp"` (default) or `"pow2"`.
        name: the loss name. Defaults to `"himulcon"`.
        **kwargs: the arguments every loss takes (`normalization`,
            `normalize`, `block_size`, `reduction`, `dtype`), see
            `ContrastiveLoss`; `reduction="none"` is only defined for
            `"hmc"` (the others compare batch losses).

    Example:

    >>> loss = HiMulCon(variant="hmce")
    >>> z = keras.ops.normalize(keras.random.normal((6, 8)), axis=-1)
    >>> labels = keras.ops.convert_to_tensor(
    ...     [[0, 0], [0, 0], [0, 1], [1, 2], [1, 2], [1, 3]])
    >>> value = loss(labels, z)
    """

    binary_weights = True
    shared_terms = True

    def __init__(
        self,
        variant: str = "hmce",
        temperature: float = 0.1,
        level_penalty: str = "exp",
        *,
        name: str = "himulcon",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.variant = check_choice("variant", variant, VARIANTS)
        self.temperature = check_temperature("temperature", temperature)
        self.level_penalty = check_choice("level_penalty", level_penalty, tuple(LEVEL_PENALTIES))
        if self.reduction in ("none", None) and variant != "hmc":
            raise ValueError(
                "`reduction='none'` is only defined for `variant='hmc'`: "
                f"{variant!r} takes a maximum over batch losses. Received: "
                f"`variant`={variant!r}"
            )

    def check_labels(self, labels: Tensor, head: str | None, name: str) -> Tensor:
        if len(labels.shape) != 2 or not (
            "int" in str(labels.dtype) or "float" in str(labels.dtype)
        ):
            raise ValueError(
                f"`{name}` for HiMulCon should be integer class ids of shape "
                "(N, L), one column per level, coarse to fine. Received: "
                f"`{name}.shape`={tuple(labels.shape)}, dtype={labels.dtype}"
            )
        check_class_ids(labels, name)
        return labels

    def pair_weights(self, anchor_labels: list[Tensor], candidate_labels: list[Tensor]) -> Tensor:
        """One weight set per depth over the one embedding: `(L, M, N)`."""
        return hierarchy_level_weights(anchor_labels[0], candidate_labels[0])

    def combine(self, term_losses: Tensor) -> Tensor:
        penalty = LEVEL_PENALTIES[self.level_penalty]
        n_levels = term_losses.shape[0]
        total = 0.0
        running_max = None
        for k in range(n_levels):
            level_loss = term_losses[k]
            if self.variant in ("hce", "hmce"):
                running_max = (
                    level_loss if running_max is None else ops.maximum(running_max, level_loss)
                )
                level_loss = running_max
            if self.variant in ("hmc", "hmce"):
                level_loss = penalty(1.0 / (k + 1)) * level_loss
            total = total + level_loss
        return total / n_levels

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "variant": self.variant,
                "temperature": self.temperature,
                "level_penalty": self.level_penalty,
            }
        )
        return config
