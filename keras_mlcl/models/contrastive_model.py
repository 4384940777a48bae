"""ContrastiveModel: encoder, projection heads and MLCL training under `fit`."""

import os
import warnings
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_mlcl.distribution import loss_scale_for_replicas
from keras_mlcl.distribution import variable_scope
from keras_mlcl.layers import MultiProjectionHead
from keras_mlcl.losses import ContrastiveLoss
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.models.classifier_metrics import ClassifierMetrics
from keras_mlcl.models.classifier_metrics import classifier_outputs
from keras_mlcl.models.classifier_metrics import metrics_per_level
from keras_mlcl.models.classifier_metrics import set_compile_metrics
from keras_mlcl.models.export import export_saved_model
from keras_mlcl.models.export import input_signature_of
from keras_mlcl.models.memory_bank import MemoryBank
from keras_mlcl.models.monitored_metrics import MonitoredMetrics
from keras_mlcl.models.monitored_metrics import accuracy_tracker
from keras_mlcl.models.monitored_metrics import loss_tracker
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_int

# The entry of the model's own variables that holds the seed-generator states.
SEED_STATES_KEY = "seed_generator_states"


@keras.saving.register_keras_serializable(package="keras_mlcl")
class ContrastiveModel(keras.Model):
    """An encoder with projection heads, trained by a contrastive loss in `fit`.

    At each training step the batch `x` becomes `views` augmented copies
    (the `augment` layer called with `training=True`, inside the step, so it
    runs on the device), concatenated along the batch axis; labels and
    sample weights are tiled to match. The encoder embeds all views, the
    heads project them, and the loss is

    ```
    L = contrastive_loss(labels, heads(encoder(views)))
        + ce_weight * sum_l CE(classifier_l(encoder(views)), labels_l)
    ```

    where the optional classifier is one Dense layer per level on the
    encoder embedding (the joint objective the MLCL paper uses for text).
    Each head's loss is logged as `<head>_loss`, each classifier's
    cross-entropy as `<level>_ce` and its accuracy as `<level>_acc`.
    `evaluate` uses one view, without augmentation.

    Args:
        encoder: a Keras model or layer mapping inputs to an embedding
            `(B, F)`; it stays a plain Keras model users can reuse.
        heads: a `MultiProjectionHead`, or its `heads` dict (e.g.
            `{"coarse": 64, "fine": 128}`) to build one.
        loss: a `MultiLevelSupCon` whose head names are the heads', or, with
            a single head, any `ContrastiveLoss` (`SupCon`, `SimDisLoss`,
            `HiMulCon`, ...). Defaults to
            `MultiLevelSupCon.hierarchical(levels=<head names>)`.
        views: positive int, views per sample in training. Defaults to 2.
        augment: a layer or model applied to each view with `training=True`;
            it must keep the batch size. Defaults to None (identical views).
        classifier: optional dict `{level: num_classes}`: a linear classifier
            per label level, trained with softmax cross-entropy on int labels
            (-1 ignored) or sigmoid cross-entropy on multi-hot labels (rows
            with a negative entry ignored). Needs `ce_weight > 0`.
        ce_weight: non-negative float, the weight of the cross-entropy.
        memory_bank: optional `MemoryBank`, or its `size` (an int): a queue
            of past embeddings and labels per head that training anchors
            are also contrasted against (with any keras_mlcl contrastive loss).
            Built from the first batch in `fit`; not used by `evaluate`.
            Defaults to None.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Data parallelism: the contrastive loss is computed on the global batch
    (gathered across replicas), so training and `evaluate` under
    `keras.distribution` (JAX), `tf.distribute` or `torch.distributed` give
    the single-device loss; see docs/scaling.md.

    Sample weights: one weight per sample, applied to its anchors in every
    head and to its cross-entropy terms. `fit(class_weight={class id:
    weight})` weighs the samples by their class at the finest level (the
    last head); see `fit`.

    Metrics: `compile(metrics=...)` applies Keras metrics to the classifier
    outputs, logged as `<level>_<name>` (e.g. `fine_accuracy`); see
    `compile`. `build(input_shape)` builds every layer, so `summary()` shows
    the heads' and classifiers' output shapes.

    NaN: a NaN in a batch's floating-point inputs or in any model output
    makes the loss (and every logged loss term) NaN, on every backend, so
    `keras.callbacks.TerminateOnNaN` stops training. Without this, on
    TensorFlow outside XLA (CPU), a Dense layer with ReLU maps NaN to 0: the
    loss stays finite while the weights turn NaN. Replace missing values
    before `fit` (an encoder that imputes NaN inputs itself gets a NaN loss).

    Saving: `save_weights` and `save` also store the state of every random
    layer's `keras.random.SeedGenerator` (views, dropout), so a seeded run
    resumed by `keras.callbacks.BackupAndRestore` draws the same views as
    an uninterrupted one.

    Labels (`y` in `fit`): a dict `{head or level: labels}`; or an `(N, L)`
    int array whose columns are the heads (coarse to fine, in the heads'
    order); or, for a loss with a single head or with label `columns`, what
    the loss itself takes.

    Example:

    >>> encoder = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32)])
    >>> model = ContrastiveModel(encoder, heads={"coarse": 8, "fine": 8})
    >>> model.compile(optimizer="adam")
    >>> x = np.random.rand(64, 16).astype("float32")
    >>> y = {"coarse": np.repeat([0, 1], 32), "fine": np.repeat([0, 1, 2, 3], 16)}
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> out = model.predict(x, verbose=0)  # {"embedding", "coarse", "fine"}
    """

    def __init__(
        self,
        encoder: keras.Model,
        heads: Mapping[str, int] | MultiProjectionHead,
        loss: ContrastiveLoss | None = None,
        views: int = 2,
        augment: keras.layers.Layer | None = None,
        classifier: Any = None,
        ce_weight: float = 0.0,
        memory_bank: MemoryBank | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(heads, dict):
            heads = MultiProjectionHead(heads)
        if not isinstance(heads, MultiProjectionHead):
            raise ValueError(
                "`heads` should be a `MultiProjectionHead` or its heads dict. "
                f"Received: `heads`={heads!r}"
            )
        head_names = heads.head_names
        if loss is None:
            loss = MultiLevelSupCon.hierarchical(levels=head_names)
        if not isinstance(loss, ContrastiveLoss):
            raise ValueError(
                "`loss` should be a keras_mlcl contrastive loss (e.g. MultiLevelSupCon). "
                f"Received: `loss`={loss!r}"
            )
        if loss.head_names is not None:
            if sorted(loss.head_names) != sorted(head_names):
                raise ValueError(
                    f"The head names of `loss` {sorted(loss.head_names)} should be those of "
                    f"`heads` {sorted(head_names)}."
                )
        elif len(head_names) != 1:
            raise ValueError(
                f"`loss` {type(loss).__name__} takes one embedding, so `heads` should "
                f"have one head. Received heads {head_names}; use MultiLevelSupCon "
                "for several."
            )
        if memory_bank is not None:
            if isinstance(memory_bank, int) and not isinstance(memory_bank, bool):
                memory_bank = MemoryBank(size=memory_bank)
            if not isinstance(memory_bank, MemoryBank):
                raise ValueError(
                    "`memory_bank` should be a `MemoryBank`, its size (a positive int) or "
                    f"None. Received: `memory_bank`={memory_bank!r}"
                )
        self.memory_bank = memory_bank
        self.views = check_positive_int("views", views)
        classifier = dict(classifier or {})
        for level, n_classes in classifier.items():
            check_positive_int(f"classifier[{level!r}]", n_classes)
        self.ce_weight = check_non_negative_float("ce_weight", ce_weight)
        if bool(classifier) != (self.ce_weight > 0):
            raise ValueError(
                "`classifier` and `ce_weight` go together: a classifier needs "
                "`ce_weight` > 0 and `ce_weight` > 0 needs a classifier. Received: "
                f"`classifier`={classifier or None}, `ce_weight`={ce_weight}"
            )
        self.encoder = encoder
        self.heads = heads
        self.contrastive_loss = loss
        self.augment = augment
        self.classifier = classifier
        self.classifier_layers = {
            level: keras.layers.Dense(n, name=f"{level}_classifier")
            for level, n in classifier.items()
        }
        self.head_loss_trackers = [loss_tracker(f"{h}_loss") for h in head_names]
        self.ce_trackers = [loss_tracker(f"{level}_ce") for level in classifier]
        self.accuracy_trackers = [accuracy_tracker(f"{level}_acc") for level in classifier]
        self.training_metrics = MonitoredMetrics(
            self.head_loss_trackers + self.ce_trackers + self.accuracy_trackers
        )

    @property
    def head_names(self) -> list[str]:
        return self.heads.head_names

    def build(self, input_shape):
        """Builds the encoder, the heads and the classifiers for `input_shape`.

        `augment` builds on its first call in `fit`.

        Args:
            input_shape: the shape of the encoder's inputs, batch axis
                included (e.g. `(None, 16)`), or a structure of shapes for
                an encoder with several inputs.
        """
        embedding_shape = None
        if self.encoder.built:
            try:
                embedding_shape = self.encoder.compute_output_shape(input_shape)
            except NotImplementedError:  # a layer without shape inference
                pass
        if embedding_shape is None:
            # A symbolic call builds any encoder, as a first call on data would.
            inputs = keras.tree.map_shape_structure(keras.KerasTensor, input_shape)
            embedding_shape = self.encoder(inputs).shape
        for layer in [self.heads, *self.classifier_layers.values()]:
            if not layer.built:  # loading builds the heads from their own build config
                layer.build(embedding_shape)
        super().build(input_shape)

    def call(self, inputs: Tensor, training: bool = False) -> dict[str, Tensor]:
        x = inputs
        if training and (self.views > 1 or self.augment is not None):
            copies = [
                self.augment(x, training=True) if self.augment is not None else x
                for _ in range(self.views)
            ]
            x = keras.tree.map_structure(lambda *v: ops.concatenate(v, axis=0), *copies)
        embedding = self.encoder(x, training=training)
        outputs = {"embedding": embedding}
        outputs.update(self.heads(embedding, training=training))
        for level, layer in self.classifier_layers.items():
            outputs[f"{level}_logits"] = layer(embedding)
        return outputs

    def _split_labels(self, y):
        """`(contrastive labels, {level: classifier labels})` from `y`."""
        loss = self.contrastive_loss
        keyed = loss.head_names is not None
        by_columns = loss.labels_by_columns
        if y is None:
            raise ValueError(f"`y` is needed: labels for the heads {self.head_names}.")
        if not isinstance(y, dict) and keyed and not by_columns:
            y = ops.convert_to_tensor(y) if not hasattr(y, "shape") else y
            if len(y.shape) != 2 or y.shape[1] != len(self.head_names):
                raise ValueError(
                    f"`y` should be a dict {{head: labels}} for heads {self.head_names}, "
                    f"or an (N, {len(self.head_names)}) array of levels (coarse to "
                    f"fine, in that order). Received shape {tuple(y.shape)}"
                )
            y = {name: y[:, i] for i, name in enumerate(self.head_names)}
        if isinstance(y, dict):
            expected = set(self.classifier)
            if keyed:
                expected |= set(loss.head_names)
            missing = sorted(
                set(loss.head_names if keyed and not by_columns else []) | set(self.classifier)
            )
            missing = [m for m in missing if m not in y]
            if missing:
                raise ValueError(
                    f"Labels are missing for {missing}: `y` should have one entry per "
                    f"head {self.head_names}"
                    + (
                        f" and per classifier level {list(self.classifier)}"
                        if self.classifier
                        else ""
                    )
                    + f". Received keys {sorted(y)}"
                )
            unknown = sorted(set(y) - expected) if keyed else []
            if unknown:
                raise ValueError(
                    f"`y` has labels {unknown} that no head or classifier uses. Expected "
                    f"keys {sorted(expected)}"
                )
            contrastive = {h: y[h] for h in loss.head_names} if keyed else y[self.head_names[0]]
            return contrastive, {level: y[level] for level in self.classifier}
        extra = [level for level in self.classifier if level != self.head_names[0]]
        if extra:
            raise ValueError(f"Classifier levels {extra} need `y` as a dict with those keys.")
        return y, {level: y for level in self.classifier}

    def _for_loss(self, per_head):
        """`{head: value}` in the structure of the loss's `y_pred` (a dict, or one tensor)."""
        if self.contrastive_loss.head_names is not None:
            return per_head
        return per_head[self.head_names[0]]

    def _per_head(self, value):
        """The inverse of `_for_loss`: `{head: value}`."""
        if self.contrastive_loss.head_names is not None:
            return value
        return {self.head_names[0]: value}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        views = self.views if training else 1
        # A NaN must reach the loss (and `TerminateOnNaN`) on every backend,
        # but TensorFlow's oneDNN CPU kernel for a fused MatMul + BiasAdd +
        # Relu (a Dense layer with ReLU, outside XLA) outputs 0 for a NaN;
        # so NaN inputs or outputs make every loss term NaN (see class doc).
        has_nan = any_nan((x, y_pred))

        def surface_nan(value):
            return ops.where(has_nan, float("nan"), value)

        contrastive_labels, classifier_labels = self._split_labels(y)

        def tile(t):
            return t if views == 1 else ops.concatenate([t] * views, axis=0)

        contrastive_labels = keras.tree.map_structure(tile, contrastive_labels)
        classifier_labels = {k: tile(v) for k, v in classifier_labels.items()}
        if sample_weight is not None:
            # Keras replicates one sample-weight array over the label dict.
            sample_weight = tile(ops.convert_to_tensor(keras.tree.flatten(sample_weight)[0]))

        loss = self.contrastive_loss
        embeddings = {name: y_pred[name] for name in self.head_names}
        bank = self.memory_bank if training else None
        references = {}
        if bank is not None:
            references = bank.references()
            references = {
                "reference_embeddings": self._for_loss(references["reference_embeddings"]),
                "reference_labels": self._for_loss(references["reference_labels"]),
                "reference_mask": references["reference_mask"],
            }
        terms = loss.term_losses(
            contrastive_labels, self._for_loss(embeddings), sample_weight, **references
        )
        # The terms are the global values: the scale for replicas comes last.
        total = loss.combine(terms)
        if loss.head_names is not None:
            per_head = {name: terms[h] for h, name in enumerate(loss.head_names)}
        else:
            per_head = {self.head_names[0]: total}
        if bank is not None:
            bank.update(embeddings, self._per_head(loss.bank_labels(contrastive_labels)))
        for tracker, name in zip(self.head_loss_trackers, self.head_names, strict=True):
            tracker.update_state(surface_nan(per_head[name]))

        for level, ce_tracker, accuracy in zip(
            self.classifier, self.ce_trackers, self.accuracy_trackers, strict=True
        ):
            logits = ops.cast(y_pred[f"{level}_logits"], "float32")
            ce, (correct, labelled) = classification_terms(
                classifier_labels[level], logits, sample_weight
            )
            ce = surface_nan(ce)
            ce_tracker.update_state(ce)
            accuracy.update_state(correct, sample_weight=labelled)
            total = total + self.ce_weight * ce

        if self.losses:
            total = total + sum(self.losses)
        # Keras' TF trainer sums replicas' gradients and un-scales the logged loss.
        return surface_nan(total) * loss_scale_for_replicas()

    def compile(self, *args, metrics=None, weighted_metrics=None, **kwargs):
        """`keras.Model.compile`, with `metrics` for the classifier outputs.

        Args:
            *args: `keras.Model.compile`'s arguments (`optimizer`, ...).
            metrics: metrics of the classifiers: a list (applied to every
                classifier level) or a dict `{level: metric or list}`. Each
                gets the level's labels and class probabilities (softmax,
                or sigmoid for multi-hot labels) over its labelled rows,
                and is logged as `<level>_<name>` (e.g. `fine_accuracy`).
                In training it sees every view. Defaults to None.
            weighted_metrics: the same, also weighted by `sample_weight`
                (or `class_weight`). Defaults to None.
            **kwargs: `keras.Model.compile`'s other arguments.
        """
        if (metrics is not None or weighted_metrics is not None) and not self.classifier:
            raise ValueError(
                "`metrics` and `weighted_metrics` apply to the classifier outputs, and "
                "this model has no `classifier`: build it with `classifier={level: "
                f"num_classes}}` and `ce_weight` > 0. Received: `metrics`={metrics!r}, "
                f"`weighted_metrics`={weighted_metrics!r}"
            )
        levels = list(self.classifier)
        per_level = metrics_per_level(metrics, levels)
        weighted_per_level = metrics_per_level(weighted_metrics, levels, "weighted_metrics")
        super().compile(*args, **kwargs)
        self._compile_config.config.update(metrics=metrics, weighted_metrics=weighted_metrics)
        if per_level is not None or weighted_per_level is not None:
            set_compile_metrics(self, ClassifierMetrics(per_level, weighted_per_level, levels))

    def compile_from_config(self, config):
        """Compiles the model as `get_compile_config` saved it (when loading)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Updates the `compile` metrics on the classifier outputs; returns all metrics."""
        if self._compile_metrics is not None:
            _, classifier_labels = self._split_labels(y)
            labels, probabilities, labelled, weights = {}, {}, {}, {}
            for level, level_labels in classifier_labels.items():
                logits = y_pred[f"{level}_logits"]
                # In training the logits hold every view: row i is sample i % N.
                rows = ops.arange(ops.shape(logits)[0]) % ops.shape(level_labels)[0]
                labels[level], probabilities[level], labelled[level] = classifier_outputs(
                    ops.take(level_labels, rows, axis=0), logits
                )
                if sample_weight is not None:
                    flat = ops.reshape(keras.tree.flatten(sample_weight)[0], (-1,))
                    weights[level] = ops.take(flat, rows, axis=0)
            self._compile_metrics.update_state(
                labels, probabilities, weights or None, labelled=labelled
            )
        return self.get_metrics_result()

    def fit(self, x=None, y=None, *args, class_weight=None, **kwargs):
        """`keras.Model.fit`, after checking the first batch (see class doc).

        `class_weight` (a dict `{class id: weight}` for the finest level's
        classes, the last head) becomes one weight per sample, applied to
        that sample's contrastive anchors and cross-entropy terms, as
        `sample_weight` would be; classes not in the dict weigh 1. It needs
        array `x` and `y` and int class ids at the finest level (see
        `sample_weight_from_class_weight` for the other cases).
        """
        if class_weight is not None:
            if kwargs.get("sample_weight") is not None:
                raise ValueError(
                    "Pass either `class_weight` or `sample_weight` to `fit`, not both."
                )
            if y is None or isinstance(x, keras.utils.PyDataset) or hasattr(x, "__next__"):
                raise ValueError(
                    "`class_weight` needs array `x` and `y`. For a PyDataset, a "
                    "tf.data.Dataset or a generator, yield `(x, y, sample_weight)` "
                    "batches, with weights from `model.sample_weight_from_class_weight(y, "
                    "class_weight)`."
                )
            kwargs["sample_weight"] = self.sample_weight_from_class_weight(y, class_weight)
        weights = kwargs.get("sample_weight")
        if isinstance(weights, dict):
            arrays = [np.asarray(w) for w in weights.values()]
            if any(not np.array_equal(arrays[0], a) for a in arrays[1:]):
                raise ValueError(
                    "`sample_weight` should be one array (one weight per sample, "
                    "shared by all heads). Received a dict of different arrays."
                )
        self.check_training_data(x, y, kwargs.get("batch_size"))
        return super().fit(x, y, *args, **kwargs)

    def sample_weight_from_class_weight(self, y, class_weight):
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
        >>> model = ContrastiveModel(encoder, heads={"coarse": 4, "fine": 4})
        >>> y = {"coarse": np.array([0, 0, 1]), "fine": np.array([0, 1, 2])}
        >>> model.sample_weight_from_class_weight(y, {1: 3.0}).tolist()
        [1.0, 3.0, 1.0]
        """
        if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in class_weight
        ):
            raise ValueError(
                "`class_weight` should be a dict {class id (int): weight} for the "
                f"finest level's classes. Received: `class_weight`={class_weight!r}"
            )
        contrastive, _ = self._split_labels(y)
        finest = self.head_names[-1]
        labels = contrastive[finest] if isinstance(contrastive, dict) else contrastive
        labels = np.asarray(keras.tree.map_structure(ops.convert_to_numpy, labels))
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`class_weight` needs one int class id per sample at the finest level "
                f"{finest!r}; its labels have shape {labels.shape} and dtype "
                f"{labels.dtype} (multi-hot or several columns). Pass `sample_weight` "
                "(one weight per sample) instead."
            )
        weights = np.ones(labels.shape, dtype="float32")
        for class_id, weight in class_weight.items():
            weights[labels == class_id] = float(weight)
        return weights

    def check_training_data(self, x, y=None, batch_size=None):
        """Raises a `ValueError` for training data that cannot work, before any step.

        Checks, on the first batch where the data type allows: labels for
        every head (and classifier level), label and input batch sizes, and
        that `augment` keeps the batch size.
        """
        first = _first_batch(x, y, batch_size)
        if first is None:
            return
        xb, yb = first
        n = _batch_size(xb)
        if not self.built:  # callbacks such as BackupAndRestore need the variables
            with variable_scope(self):  # a tf.distribute strategy's, if any
                self(xb, training=False)
        contrastive, classifier_labels = self._split_labels(yb)
        for name, labels in _flat_named(contrastive, "y") + list(classifier_labels.items()):
            if int(np.shape(labels)[0]) != n:
                raise ValueError(
                    f"Labels {name!r} have {np.shape(labels)[0]} rows but the inputs "
                    f"have {n}: every label array should have one row per input."
                )
        if self.memory_bank is not None and not self.memory_bank.built:
            self.build_memory_bank(xb, yb)
        if self.augment is not None:
            augmented = self.augment(xb, training=True)
            got = _batch_size(keras.tree.map_structure(ops.convert_to_numpy, augmented))
            if got != n:
                raise ValueError(
                    f"`augment` should keep the batch size: it turned a batch of {n} into {got}."
                )

    def build_memory_bank(self, x, y):
        """Builds `memory_bank` for the heads' sizes and the labels of `(x, y)`.

        `fit` calls it on its first batch; call it yourself before a custom
        training loop (`train_on_batch`, or generator data `fit` cannot peek at).
        """
        if self.memory_bank is None:
            raise ValueError("This model has no `memory_bank` to build.")
        outputs = self(x, training=False)
        contrastive, _ = self._split_labels(y)
        labels = self._per_head(self.contrastive_loss.bank_labels(contrastive))
        with variable_scope(self):
            self.memory_bank.build(
                {h: int(outputs[h].shape[-1]) for h in self.head_names},
                {h: tuple(labels[h].shape[1:]) for h in self.head_names},
            )

    def embed(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The encoder embedding of `x`, as NumPy."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)

    def export(
        self,
        filepath: str | os.PathLike[str],
        format: str = "tf_saved_model",
        input_signature: Sequence[keras.InputSpec] | None = None,
        verbose: bool = True,
        **kwargs: Any,
    ) -> None:
        """Exports the inference model (`call` with `training=False`).

        With `format="tf_saved_model"` this works from every backend: from
        torch it goes through a TensorFlow child process (see
        `keras_mlcl.models.export`). The `serve` endpoint returns the dict
        of `predict`. `input_signature` defaults to the encoder's inputs
        with an open batch size.
        """
        if format != "tf_saved_model":
            return super().export(
                filepath,
                format=format,
                input_signature=input_signature,
                verbose=verbose,
                **kwargs,
            )
        if input_signature is None:
            input_signature = input_signature_of(self)
        export_saved_model(
            self, filepath, input_signature, modules=kwargs.pop("modules", ()), verbose=verbose
        )

    def _seed_generator_states(self):
        """The state variables of every `keras.random.SeedGenerator` of the model's layers.

        `variables` are the `weights` plus these states, in a fixed order.
        """
        weights = {id(w) for w in self.weights}
        return [v for v in self.variables if id(v) not in weights]

    def save_own_variables(self, store):
        """Saves the model's own variables and the seed-generator states of its layers.

        Keras saves each layer's weights but not the state of its
        `SeedGenerator`s (random views, dropout), so after `load_weights` a
        run resumed by `keras.callbacks.BackupAndRestore` would draw its
        random views from the initial seeds again, not where the
        interrupted run stopped. The states are saved here, in one
        `(S, 2)` entry of the model's own variables.
        """
        super().save_own_variables(store)
        states = self._seed_generator_states()
        if states:
            store[SEED_STATES_KEY] = np.stack([ops.convert_to_numpy(s) for s in states])

    def load_own_variables(self, store):
        """Loads what `save_own_variables` saved.

        Files written before the seed-generator states were saved load too,
        leaving the states as they are; so do files of a model with other
        random layers (e.g. trained with `augment`, loaded without), with a
        warning.
        """
        super().load_own_variables(
            {key: store[key] for key in store.keys() if key != SEED_STATES_KEY}
        )
        if SEED_STATES_KEY not in store:
            return
        values = store[SEED_STATES_KEY]
        states = self._seed_generator_states()
        if len(values) != len(states):
            warnings.warn(
                f"The file holds {len(values)} seed-generator states but model "
                f"{self.name!r} has {len(states)} (its random layers differ); "
                "the model's random layers keep their current states.",
                stacklevel=2,
            )
            return
        for state, value in zip(states, values, strict=True):
            state.assign(value)

    def get_config(self) -> dict[str, Any]:
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": serialize(self.encoder),
            "heads": serialize(self.heads),
            "loss": serialize(self.contrastive_loss),
            "views": self.views,
            "augment": serialize(self.augment) if self.augment is not None else None,
            "classifier": dict(self.classifier),
            "ce_weight": self.ce_weight,
            "memory_bank": (serialize(self.memory_bank) if self.memory_bank is not None else None),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        for key in ("encoder", "heads", "loss", "augment", "memory_bank"):
            if config.get(key) is not None:
                config[key] = deserialize(config[key])
        return cls(**config)


def classification_terms(labels, logits, sample_weight=None):
    """Mean cross-entropy and the accuracy of each labelled sample.

    Int labels `(N,)`: softmax cross-entropy and top-1 correctness; multi-hot
    `(N, K)`: sigmoid cross-entropy and the fraction of labels right. Rows
    marked unlabelled (negative ids) count in neither. With `sample_weight`,
    the cross-entropy is the weighted sum over the labelled rows divided by
    their number (as the contrastive loss reduces its anchors).

    Args:
        labels: `(N,)` int class ids or `(N, K)` multi-hot labels.
        logits: `(N, C)` classifier logits.
        sample_weight: optional `(N,)` weights. Defaults to None (all 1).

    Returns:
        `(cross_entropy, (correct, labelled))`: a scalar, the `(N,)`
        correctness in [0, 1] and the `(N,)` 0/1 weights of labelled rows.
    """
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[1] != 1:
        targets = ops.cast(labels, "float32")
        labelled = ops.cast(ops.all(targets >= 0, axis=-1), "float32")
        targets = ops.maximum(targets, 0.0)
        per_sample = keras.losses.binary_crossentropy(targets, logits, from_logits=True)
        correct = ops.mean(
            ops.cast(ops.equal(ops.cast(logits > 0, "float32"), targets), "float32"), -1
        )
    else:
        labels = ops.reshape(labels, (-1,))
        labelled = ops.cast(labels >= 0, "float32")
        safe = ops.cast(ops.maximum(labels, 0), "int32")
        per_sample = keras.losses.sparse_categorical_crossentropy(safe, logits, from_logits=True)
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), safe), "float32")
    weighted = labelled
    if sample_weight is not None:
        weighted = labelled * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    ce = ops.divide_no_nan(ops.sum(per_sample * weighted), ops.sum(labelled))
    return ce, (correct * labelled, labelled)


def any_nan(values):
    """A boolean scalar: whether any floating-point tensor in `values` holds a NaN.

    Args:
        values: a nested structure of tensors or arrays; other leaves (ints,
            strings, `None`) are skipped.
    """
    flags = [
        ops.any(ops.isnan(t))
        for t in keras.tree.flatten(values)
        if "float" in str(getattr(t, "dtype", ""))
    ]
    return ops.any(ops.stack(flags)) if flags else False


def _batch_size(x):
    return int(np.shape(keras.tree.flatten(x)[0])[0])


def _flat_named(labels, prefix):
    if isinstance(labels, dict):
        return [(f"{prefix}[{k!r}]", v) for k, v in labels.items()]
    return [(prefix, labels)]


def _first_batch(x, y, batch_size):
    """The first `(x, y)` batch as NumPy, or None for data types not inspected."""
    if isinstance(x, keras.utils.PyDataset):
        batch = x[0]
    elif hasattr(x, "take") and hasattr(x, "element_spec"):  # tf.data.Dataset
        batch = next(iter(x.take(1)))
    elif x is not None and not hasattr(x, "__next__"):
        arrays = keras.tree.flatten(x)
        n = int(np.shape(arrays[0])[0])
        for path, labels in _flat_named(y, "y") if y is not None else []:
            if labels is not None and int(np.shape(labels)[0]) != n:
                raise ValueError(
                    f"{path} has {np.shape(labels)[0]} rows but `x` has {n}: "
                    "labels should have one row per input."
                )
        size = min(n, batch_size or 32)
        cut = lambda t: np.asarray(t)[:size]  # noqa: E731
        return keras.tree.map_structure(cut, x), (
            None if y is None else keras.tree.map_structure(cut, y)
        )
    else:
        return None
    batch = keras.tree.map_structure(np.asarray, tuple(batch))
    return batch[0], batch[1] if len(batch) > 1 else None
