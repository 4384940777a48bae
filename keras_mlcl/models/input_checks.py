"""What a ContrastiveModel checks before it trains: its arguments, its labels, the first batch.

Bad input raises a `ValueError` naming the argument, before any training
step; labels are routed to the loss as `{head: labels}` and to the
classifiers as `{level: labels}`.
"""

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_mlcl.distribution import variable_scope
from keras_mlcl.layers import MultiProjectionHead
from keras_mlcl.losses import ContrastiveLoss
from keras_mlcl.models.label_names import refuse_string_labels
from keras_mlcl.models.memory_bank import MemoryBank
from keras_mlcl.utils.labels import as_class_ids
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_int


def check_heads(heads: Any) -> MultiProjectionHead:
    """`heads` as a `MultiProjectionHead` (built from its heads dict if need be)."""
    if isinstance(heads, dict):
        heads = MultiProjectionHead(heads)
    if not isinstance(heads, MultiProjectionHead):
        raise ValueError(
            "`heads` should be a `MultiProjectionHead` or its heads dict. "
            f"Received: `heads`={heads!r}"
        )
    return heads


def check_loss(loss: Any, head_names: list[str]) -> ContrastiveLoss:
    """The model's contrastive loss for its heads (Keras' `compile(loss=...)` is refused)."""
    if not isinstance(loss, ContrastiveLoss):
        raise ValueError(
            "`loss` should be a keras_mlcl contrastive loss (e.g. MultiLevelSupCon). "
            f"Received: `loss`={loss!r}"
        )
    loss.check_heads(head_names)
    return loss


def check_memory_bank(memory_bank: Any) -> MemoryBank | None:
    """A `MemoryBank`, from itself or its size, or None."""
    if memory_bank is None:
        return None
    if isinstance(memory_bank, int) and not isinstance(memory_bank, bool):
        memory_bank = MemoryBank(size=memory_bank)
    if not isinstance(memory_bank, MemoryBank):
        raise ValueError(
            "`memory_bank` should be a `MemoryBank`, its size (a positive int) or "
            f"None. Received: `memory_bank`={memory_bank!r}"
        )
    return memory_bank


def check_classifier(classifier: Any, ce_weight: Any) -> tuple[dict[str, int], float]:
    """`({level: num_classes}, ce_weight)`, which go together."""
    classifier = dict(classifier or {})
    for level, n_classes in classifier.items():
        check_positive_int(f"classifier[{level!r}]", n_classes)
    weight = check_non_negative_float("ce_weight", ce_weight)
    if bool(classifier) != (weight > 0):
        raise ValueError(
            "`classifier` and `ce_weight` go together: a classifier needs "
            "`ce_weight` > 0 and `ce_weight` > 0 needs a classifier. Received: "
            f"`classifier`={classifier or None}, `ce_weight`={ce_weight}"
        )
    return classifier, weight


def split_labels(
    y: Any, loss: ContrastiveLoss, head_names: list[str], levels: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`({head: labels}, {level: labels})` from `y` as `fit` takes it.

    Args:
        y: a dict `{head or level: labels}`; or an `(N, L)` array whose
            columns are the heads (coarse to fine); or one array that every
            head takes (a loss with one head, or heads selecting columns).
        loss: the model's contrastive loss.
        head_names: the model's heads.
        levels: the classifier levels.
    """
    if y is None:
        raise ValueError(f"`y` is needed: labels for the heads {head_names}.")
    if not isinstance(y, Mapping):
        if loss.labels_in_one_array:
            extra = [level for level in levels if level != head_names[0]]
            if extra:
                raise ValueError(f"Classifier levels {extra} need `y` as a dict with those keys.")
            return {h: y for h in head_names}, {level: y for level in levels}
        y = ops.convert_to_tensor(y) if not hasattr(y, "shape") else y
        if len(y.shape) != 2 or y.shape[1] != len(head_names):
            raise ValueError(
                f"`y` should be a dict {{head: labels}} for heads {head_names}, "
                f"or an (N, {len(head_names)}) array of levels (coarse to "
                f"fine, in that order). Received shape {tuple(y.shape)}"
            )
        y = {name: y[:, i] for i, name in enumerate(head_names)}
    expected = [*head_names, *[level for level in levels if level not in head_names]]
    missing = sorted(k for k in expected if k not in y)
    if missing:
        raise ValueError(
            f"Labels are missing for {missing}: `y` should have one entry per "
            f"head {head_names}"
            + (f" and per classifier level {levels}" if levels else "")
            + f". Received keys {sorted(y)}"
        )
    unknown = sorted(set(y) - set(expected))
    if unknown:
        raise ValueError(
            f"`y` has labels {unknown} that no head or classifier uses. Expected "
            f"keys {sorted(expected)}"
        )
    return {h: y[h] for h in head_names}, {level: y[level] for level in levels}


def check_class_weight(class_weight: Any) -> None:
    """Raises unless `class_weight` is a dict `{class id (int): weight}`."""
    if not isinstance(class_weight, dict) or not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in class_weight
    ):
        raise ValueError(
            "`class_weight` should be a dict {class id (int): weight} for the "
            f"finest level's classes. Received: `class_weight`={class_weight!r}"
        )


def class_weight_to_sample_weight(
    finest_labels: Any, class_weight: dict[Any, float], finest: str
) -> np.ndarray:
    """One weight per sample: `class_weight[label]` of its finest-level class (1 if absent)."""
    given = np.asarray(keras.tree.map_structure(ops.convert_to_numpy, finest_labels))
    labels = as_class_ids(given)
    if labels is None:
        raise ValueError(
            f"`class_weight` needs one int class id per sample at the finest level "
            f"{finest!r}; its labels have shape {given.shape} and dtype "
            f"{given.dtype} (multi-hot or several columns). Pass `sample_weight` "
            "(one weight per sample) instead."
        )
    weights = np.ones(labels.shape, dtype="float32")
    for class_id, weight in class_weight.items():
        weights[labels == class_id] = float(weight)
    return weights


def check_fit_weights(x: Any, y: Any, class_weight: Any, kwargs: dict[str, Any]) -> None:
    """Raises for `class_weight` or `sample_weight` that `fit` cannot use."""
    if class_weight is not None:
        if kwargs.get("sample_weight") is not None:
            raise ValueError("Pass either `class_weight` or `sample_weight` to `fit`, not both.")
        if y is None or isinstance(x, keras.utils.PyDataset) or hasattr(x, "__next__"):
            raise ValueError(
                "`class_weight` needs array `x` and `y`. For a PyDataset, a "
                "tf.data.Dataset or a generator, yield `(x, y, sample_weight)` "
                "batches, with weights from `model.sample_weight_from_class_weight(y, "
                "class_weight)`."
            )
    weights = kwargs.get("sample_weight")
    if isinstance(weights, dict):
        arrays = [np.asarray(w) for w in weights.values()]
        if any(not np.array_equal(arrays[0], a) for a in arrays[1:]):
            raise ValueError(
                "`sample_weight` should be one array (one weight per sample, "
                "shared by all heads). Received a dict of different arrays."
            )


def label_dtype(labels: Any) -> str:
    """The dtype a memory bank stores `labels` in: float32 for float labels, else int32."""
    return "float32" if np.issubdtype(np.asarray(labels).dtype, np.floating) else "int32"


def batch_size_of(x: Any) -> int:
    """The number of rows of the first array of `x`."""
    return int(np.shape(keras.tree.flatten(x)[0])[0])


def first_batch(x: Any, y: Any, batch_size: int | None) -> tuple[Any, Any] | None:
    """The first `(x, y)` batch as NumPy, or None for data types not inspected."""
    if isinstance(x, keras.utils.PyDataset):
        batch = x[0]
    elif hasattr(x, "take") and hasattr(x, "element_spec"):  # tf.data.Dataset
        batch = next(iter(x.take(1)))
    elif x is not None and not hasattr(x, "__next__"):
        n = batch_size_of(x)
        named = y.items() if isinstance(y, dict) else [("y", y)]
        for name, labels in named if y is not None else []:
            if labels is not None and int(np.shape(labels)[0]) != n:
                raise ValueError(
                    f"{name if name == 'y' else f'y[{name!r}]'} has {np.shape(labels)[0]} "
                    f"rows but `x` has {n}: labels should have one row per input."
                )
        size = min(n, batch_size or 32)

        def cut(t: Any) -> np.ndarray:
            return np.asarray(t)[:size]

        return keras.tree.map_structure(cut, x), (
            None if y is None else keras.tree.map_structure(cut, y)
        )
    else:
        return None
    batch = keras.tree.map_structure(np.asarray, tuple(batch))
    return batch[0], batch[1] if len(batch) > 1 else None


def any_nan(values: Any) -> Tensor | bool:
    """A boolean scalar: whether any floating-point tensor in `values` holds a NaN.

    Each tensor is summed (one pass, no boolean copy of it, half precision
    in float32): the sum is NaN when a value is NaN, and also for values
    that hold both infinities (or partial sums overflowing to both, near
    float32's largest value), which no trainable batch holds.

    Args:
        values: a nested structure of tensors or arrays; other leaves (ints,
            strings, `None`) are skipped.

    Example:

    >>> bool(any_nan({"x": np.array([1.0, np.nan]), "ids": np.array([1])}))
    True
    """
    flags = [
        ops.isnan(ops.sum(t if _wide_float(t) else ops.cast(t, "float32")))
        for t in keras.tree.flatten(values)
        if "float" in str(getattr(t, "dtype", ""))
    ]
    return ops.any(ops.stack(flags)) if flags else False


def _wide_float(t: Any) -> bool:
    """Whether `t` is float32 or float64 (summed as it is; half precision is cast first)."""
    return keras.backend.standardize_dtype(t.dtype) in ("float32", "float64")


class InputChecks:
    """A `ContrastiveModel` mixin: label routing and the checks `fit` runs before training."""

    contrastive_loss: ContrastiveLoss
    classifier: dict[str, int]
    memory_bank: MemoryBank | None
    heads: MultiProjectionHead
    augment: Any
    built: bool
    __call__: Callable[..., Any]

    def split_labels(self, y: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """`({head: labels}, {level: labels})`: `y` as the loss and the classifiers take it."""
        return split_labels(
            y, self.contrastive_loss, self.heads.head_names, list(self.classifier)
        )

    def fit(
        self, x: Any = None, y: Any = None, *args: Any, class_weight: Any = None, **kwargs: Any
    ) -> keras.callbacks.History:
        """`keras.Model.fit`, after checking the first batch (see class doc).

        `class_weight` (a dict `{class id: weight}` for the finest level's
        classes, the last head) becomes one weight per sample, applied to
        that sample's contrastive anchors and cross-entropy terms, as
        `sample_weight` would be; classes not in the dict weigh 1. It needs
        array `x` and `y` and int class ids at the finest level (see
        `sample_weight_from_class_weight` for the other cases).
        """
        check_fit_weights(x, y, class_weight, kwargs)
        if class_weight is not None:
            kwargs["sample_weight"] = self.sample_weight_from_class_weight(y, class_weight)
        self.check_training_data(x, y, kwargs.get("batch_size"))
        return super().fit(x, y, *args, **kwargs)  # type: ignore[misc]

    def sample_weight_from_class_weight(self, y: Any, class_weight: Any) -> np.ndarray:
        """One weight per sample from the class weights of the finest level.

        Args:
            y: the labels, as `fit` takes them (NumPy arrays).
            class_weight: a dict `{class id: weight}` for the classes of the
                finest level (the last head); classes not in it weigh 1.

        Returns:
            A float32 NumPy array `(N,)`: `class_weight[y_fine[i]]` for each
            sample `i`, usable as `sample_weight` in `fit` or in the batches
            of a `PyDataset`.

        Example:

        >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
        >>> model = keras_mlcl.ContrastiveModel(encoder, heads={"coarse": 4, "fine": 4})
        >>> y = {"coarse": np.array([0, 0, 1]), "fine": np.array([0, 1, 2])}
        >>> model.sample_weight_from_class_weight(y, {1: 3.0}).tolist()
        [1.0, 3.0, 1.0]
        """
        finest = self.heads.head_names[-1]
        check_class_weight(class_weight)
        labels = self.split_labels(y)[0][finest]
        return class_weight_to_sample_weight(labels, class_weight, finest)

    def check_training_data(self, x: Any, y: Any = None, batch_size: int | None = None) -> None:
        """Raises a `ValueError` for training data that cannot work, before any step.

        Checks, on the first batch where the data type allows: labels for
        every head (and classifier level), no string labels (a dataset's
        need mapping first), label and input batch sizes, and
        that `augment` keeps the batch size. Builds the model and its memory bank.
        """
        first = first_batch(x, y, batch_size)
        if first is None:
            return
        xb, yb = first
        refuse_string_labels(yb)
        n = batch_size_of(xb)
        if not self.built:  # callbacks such as BackupAndRestore need the variables
            with variable_scope(self):  # a tf.distribute strategy's, if any
                self(xb, training=False)
        labels, classifier_labels = self.split_labels(yb)
        for name, values in {**labels, **classifier_labels}.items():
            if int(np.shape(values)[0]) != n:
                raise ValueError(
                    f"Labels {name!r} have {np.shape(values)[0]} rows but the inputs "
                    f"have {n}: every label array should have one row per input."
                )
        if self.memory_bank is not None and not self.memory_bank.built:
            self.build_memory_bank(xb, yb)
        if self.augment is not None:
            augmented = self.augment(xb, training=True)
            got = batch_size_of(keras.tree.map_structure(ops.convert_to_numpy, augmented))
            if got != n:
                raise ValueError(
                    f"`augment` should keep the batch size: it turned a batch of {n} into {got}."
                )

    def build_memory_bank(self, x: Any, y: Any) -> None:
        """Builds `memory_bank` for the heads' sizes and the labels of `(x, y)`.

        `fit` calls it on its first batch; call it yourself before a custom
        training loop (`train_on_batch`, or generator data `fit` cannot peek at).
        """
        if self.memory_bank is None:
            raise ValueError("This model has no `memory_bank` to build.")
        outputs = self(x, training=False)
        labels, _ = self.split_labels(y)
        with variable_scope(self):
            self.memory_bank.build(
                {h: int(outputs[h].shape[-1]) for h in self.heads.head_names},
                {h: tuple(np.shape(labels[h])[1:]) for h in self.heads.head_names},
                {h: label_dtype(labels[h]) for h in self.heads.head_names},
            )
