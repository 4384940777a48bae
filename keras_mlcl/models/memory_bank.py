"""MemoryBank: a cross-batch queue of past embeddings and labels per head."""

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from keras_mlcl.distribution import gather_across_replicas
from keras_mlcl.losses import ContrastiveLoss
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

# The dtypes of the label slots: class ids and multi-hot rows, or float labels.
LABEL_DTYPES = ("int32", "float32")


def _static_shape(values: Any) -> tuple[int | None, ...]:
    """The shape of a tensor or array (None for a dimension unknown while tracing)."""
    if not hasattr(values, "shape"):
        values = ops.convert_to_tensor(values)
    return tuple(None if d is None else int(d) for d in values.shape)


@keras.saving.register_keras_serializable(package="keras_mlcl")
class MemoryBank(keras.layers.Layer):
    """A first-in first-out memory of the last `size` embeddings of each head.

    Contrastive losses improve with more negatives (and positives) than one
    batch holds. A memory bank keeps the embeddings and labels of recent
    batches (MoCo's queue, MulSupCon's label queue, cross-batch memory) and
    the loss contrasts every anchor of the batch against the batch *and*
    the bank:

    ```
    loss_i = - 1 / n_i * sum_{j in P(i)} w_ij log(
        exp(z_i . k_j / tau) / sum_{a != i} exp(z_i . k_a / tau))
    ```

    where `k` runs over the batch `z` and the filled slots of the bank,
    `P(i)` are the positives of anchor `i` among them (by the head's rule
    on the labels) and `n_i = |P(i)|`. Bank entries are constants: no
    gradient flows into them, and they are never anchors. This equals the
    loss of the batch's anchors on the concatenated batch `[z; bank]`.

    The bank holds, per head, `(size, D_h)` float32 embeddings and
    `(size, ...)` labels (as the loss takes them, `{head: labels}`; int32,
    or float32 for a head whose labels are floats),
    newest first, and the number of filled slots. It wraps any contrastive
    loss: `term_losses(loss, y_true, y_pred)` is the loss's terms with the
    bank's rows as extra candidates (prepared by the loss as its batch is),
    after which the batch is pushed (every view, gathered over
    data-parallel replicas). `ContrastiveModel` builds it from the first
    batch in `fit` and uses it in each training step; `evaluate` does not.
    Unlike MoCo there is no momentum encoder: the bank holds the model's
    own recent embeddings (as in cross-batch memory), which
    drift as it trains, so keep `size` to a few batches at high learning
    rates.

    Args:
        size: positive int, the slots per head. Defaults to 4096.
        **kwargs: base `Layer` arguments (`name`, ...).

    Example:

    >>> bank = MemoryBank(size=8)
    >>> bank.build({"fine": 2}, {"fine": ()})
    >>> loss = keras_mlcl.SupCon(temperature=1.0)
    >>> z = {"fine": keras.ops.convert_to_tensor([[1.0, 0.0], [0.0, 1.0]])}
    >>> y = {"fine": keras.ops.convert_to_tensor([0, 1])}
    >>> terms = bank.term_losses(loss, y, z)  # no positive yet: 0, then pushed
    >>> round(float(loss.combine(bank.term_losses(loss, y, z))), 6)
    0.551445

    With a model, `ContrastiveModel(encoder, heads, memory_bank=256)`.
    """

    def __init__(self, size: int = 4096, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = check_positive_int("size", size)
        self.embedding_dims: dict[str, int] = {}
        self.label_shapes: dict[str, list[int]] = {}
        self.label_dtypes: dict[str, str] = {}
        self.embedding_slots: dict[str, keras.Variable] = {}
        self.label_slots: dict[str, keras.Variable] = {}
        self.filled: Any = None

    @property
    def head_names(self) -> list[str]:
        return list(self.embedding_dims)

    def build(
        self,
        embedding_dims: Mapping[str, int],
        label_shapes: Mapping[str, tuple[int, ...]],
        label_dtypes: Mapping[str, str] | None = None,
    ) -> None:
        """Creates the slots.

        Args:
            embedding_dims: dict `{head: D_h}`.
            label_shapes: dict `{head: shape of one sample's labels}`, `()`
                for class ids, `(K,)` for multi-hot rows.
            label_dtypes: optional dict `{head: "int32" or "float32"}`.
                Defaults to None (int32 for every head).
        """
        if not isinstance(embedding_dims, dict) or not embedding_dims:
            raise ValueError(
                "`embedding_dims` should be a non-empty dict {head: dimension}. "
                f"Received: `embedding_dims`={embedding_dims!r}"
            )
        if not isinstance(label_shapes, dict) or set(label_shapes) != set(embedding_dims):
            raise ValueError(
                "`label_shapes` should be a dict with one shape per head "
                f"{sorted(embedding_dims)}. Received: `label_shapes`={label_shapes!r}"
            )
        self.embedding_dims = {
            str(h): check_positive_int(f"embedding_dims[{h!r}]", int(d))
            for h, d in embedding_dims.items()
        }
        self.label_shapes = {str(h): [int(s) for s in label_shapes[h]] for h in embedding_dims}
        self.label_dtypes = {
            str(h): check_choice(
                f"label_dtypes[{h!r}]", (label_dtypes or {}).get(h, "int32"), LABEL_DTYPES
            )
            for h in embedding_dims
        }
        for head, dim in self.embedding_dims.items():
            self.embedding_slots[head] = self.add_weight(
                shape=(self.size, dim),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name=f"{head}_embeddings",
            )
            self.label_slots[head] = self.add_weight(
                shape=(self.size, *self.label_shapes[head]),
                initializer=keras.initializers.Constant(-1),
                dtype=self.label_dtypes[head],
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name=f"{head}_labels",
            )
        self.filled = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="filled",
        )
        self.built = True

    def _check_built(self) -> None:
        if not self.built:
            raise ValueError(
                "The memory bank is not built: `ContrastiveModel.fit` builds it from "
                "its first batch; before `train_on_batch` or a custom loop call "
                "`model.build_memory_bank(x, y)` (or `bank.build(embedding_dims, label_shapes)`)."
            )

    def check_batch(self, embeddings: Mapping[str, Tensor], labels: Mapping[str, Tensor]) -> None:
        """Raises a `ValueError` naming `memory_bank` and the head when a batch's embeddings or
        labels do not fit the bank's slots (the width `D_h`, one sample's label shape).

        Args:
            embeddings: dict `{head: (N, D_h)}`.
            labels: dict `{head: (N, ...)}`.
        """
        for argument, values in (("embeddings", embeddings), ("labels", labels)):
            if not isinstance(values, dict) or set(values) != set(self.embedding_dims):
                raise ValueError(
                    f"`{argument}` should be a dict keyed by the bank's heads "
                    f"{sorted(self.embedding_dims)}. Received: "
                    f"{sorted(values) if isinstance(values, dict) else type(values).__name__}"
                )
        for head, dim in self.embedding_dims.items():
            shape = _static_shape(embeddings[head])
            if len(shape) != 2 or shape[1] not in (None, dim):
                raise ValueError(
                    f"`memory_bank` holds embeddings of shape (N, {dim}) for head {head!r}: the "
                    f"head's embeddings should have that shape. Received: shape {shape}"
                )
            expected = tuple(self.label_shapes[head])
            shape = _static_shape(labels[head])
            if len(shape) != 1 + len(expected) or any(
                got not in (None, want) for got, want in zip(shape[1:], expected, strict=True)
            ):
                rows = "".join(f", {d}" for d in expected)
                raise ValueError(
                    f"`memory_bank` holds labels of shape (N{rows}) for head {head!r}: the "
                    f"head's labels should have that shape. Received: shape {shape}"
                )

    def references(self) -> dict[str, Any]:
        """The bank's contents as the `reference_*` arguments of `ContrastiveLoss.term_losses`.

        Returns:
            A dict with `"reference_embeddings"` `{head: (size, D_h)}`,
            `"reference_labels"` `{head: (size, ...)}` and `"reference_mask"`
            `(size,)` (True for filled slots), copies of the current values.
        """
        self._check_built()
        return {
            "reference_embeddings": {
                h: ops.copy(ops.convert_to_tensor(v)) for h, v in self.embedding_slots.items()
            },
            "reference_labels": {
                h: ops.copy(ops.convert_to_tensor(v)) for h, v in self.label_slots.items()
            },
            "reference_mask": ops.arange(self.size, dtype="int32")
            < ops.convert_to_tensor(self.filled),
        }

    def update(self, embeddings: Mapping[str, Tensor], labels: Mapping[str, Tensor]) -> None:
        """Pushes a batch to the front of the bank; the oldest rows drop out.

        Under data parallelism the batch is first gathered across replicas,
        so every replica's bank holds the same global rows.

        Args:
            embeddings: dict `{head: (N, D_h)}`; no gradient is kept.
            labels: dict `{head: (N, ...)}` of each head's labels, as the
                loss takes them, stored in the slots' dtype.
        """
        self._check_built()
        self.check_batch(embeddings, labels)
        embeddings, labels = gather_across_replicas((dict(embeddings), dict(labels)))
        n = None
        for head in self.embedding_dims:
            new = ops.cast(ops.stop_gradient(ops.convert_to_tensor(embeddings[head])), "float32")
            new_labels = ops.cast(ops.convert_to_tensor(labels[head]), self.label_dtypes[head])
            n = ops.shape(new)[0]
            slots, label_slots = self.embedding_slots[head], self.label_slots[head]
            slots.assign(ops.concatenate([new, ops.convert_to_tensor(slots)], axis=0)[: self.size])
            label_slots.assign(
                ops.concatenate([new_labels, ops.convert_to_tensor(label_slots)], axis=0)[
                    : self.size
                ]
            )
        filled = ops.convert_to_tensor(self.filled) + ops.cast(n, "int32")
        self.filled.assign(ops.minimum(filled, self.size))

    def term_losses(
        self,
        loss: ContrastiveLoss,
        y_true: Mapping[str, Tensor],
        y_pred: Mapping[str, Tensor],
        sample_weight: Tensor | None = None,
    ) -> Tensor:
        """`loss.term_losses` of the batch with the bank's rows as extra candidates; then
        pushes the batch.

        Args:
            loss: any `ContrastiveLoss`.
            y_true: `{head: labels}`, as the loss takes them.
            y_pred: `{head: embeddings}`.
            sample_weight: optional `(N,)` weights of the anchors.

        Returns:
            The reduced terms, as `ContrastiveLoss.term_losses` returns them.
        """
        self._check_built()
        self.check_batch(y_pred, y_true)
        terms = loss.term_losses(y_true, y_pred, sample_weight, **self.references())
        self.update(y_pred, y_true)
        return terms

    def reset(self) -> None:
        """Empties the bank."""
        self._check_built()
        for head in self.embedding_dims:
            slots, label_slots = self.embedding_slots[head], self.label_slots[head]
            slots.assign(ops.zeros(slots.shape, dtype="float32"))
            label_slots.assign(ops.full(label_slots.shape, -1, dtype=self.label_dtypes[head]))
        self.filled.assign(0)

    def get_build_config(self) -> dict[str, Any] | None:
        if not self.built:
            return None
        return {
            "embedding_dims": self.embedding_dims,
            "label_shapes": self.label_shapes,
            "label_dtypes": self.label_dtypes,
        }

    def build_from_config(self, config: dict[str, Any] | None) -> None:
        if config:
            # Files written before label dtypes were saved hold int32 labels.
            self.build(
                config["embedding_dims"], config["label_shapes"], config.get("label_dtypes")
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"size": self.size})
        return config
