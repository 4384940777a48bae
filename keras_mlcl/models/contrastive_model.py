"""ContrastiveModel: encoder, projection heads and MLCL training under `fit`."""

import os
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_mlcl.distribution import loss_scale_for_replicas
from keras_mlcl.layers import MultiProjectionHead
from keras_mlcl.losses import ContrastiveLoss
from keras_mlcl.losses import MultiLevelSupCon
from keras_mlcl.models.classifier import check_compile_metrics
from keras_mlcl.models.classifier import classification_terms
from keras_mlcl.models.classifier import set_compile_metrics
from keras_mlcl.models.classifier import update_classifier_metrics
from keras_mlcl.models.classifier_refit import fit_classifier
from keras_mlcl.models.epoch_order import EpochOrder
from keras_mlcl.models.export import export_saved_model
from keras_mlcl.models.export import input_signature_of
from keras_mlcl.models.input_checks import InputChecks
from keras_mlcl.models.input_checks import any_nan
from keras_mlcl.models.input_checks import check_classifier
from keras_mlcl.models.input_checks import check_heads
from keras_mlcl.models.input_checks import check_loss
from keras_mlcl.models.input_checks import check_memory_bank
from keras_mlcl.models.label_names import LabelNames
from keras_mlcl.models.label_names import check_class_names
from keras_mlcl.models.memory_bank import MemoryBank
from keras_mlcl.models.monitored_metrics import MonitoredMetrics
from keras_mlcl.models.monitored_metrics import accuracy_tracker
from keras_mlcl.models.monitored_metrics import loss_tracker
from keras_mlcl.models.seed_state import SeedStateSaving
from keras_mlcl.utils.names import layer_name
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_mlcl")
class ContrastiveModel(LabelNames, InputChecks, EpochOrder, SeedStateSaving, keras.Model):
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
        loss: any keras_mlcl `ContrastiveLoss` for these heads: a
            `MultiLevelSupCon` whose head names are the heads', or, with a
            single head, a one-head loss (`SupCon`, `SimDisLoss`,
            `HiMulCon`, ...). It gets `{head: embeddings}` and
            `{head: labels}`. Defaults to
            `MultiLevelSupCon.hierarchical(levels=<head names>)`;
            `compile(loss=...)` is refused (the loss is set here).
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
        class_names: optional dict `{level: [name of class 0, name of
            class 1, ...]}` (a level being a head or a classifier level):
            the names that string labels at that level map to. Levels
            without names get theirs in the first `fit` with string labels
            (sorted); see `model.class_names`. Defaults to None.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Labels (`y` in `fit`): a dict `{head or level: labels}`; an `(N, L)`
    int array whose columns are the heads, coarse to fine; or, for a loss
    with one head or with label `columns`, the one array it takes. Sample
    weights (or `fit(class_weight=...)`, by class at the finest level) weigh
    each sample's anchors in every head and its cross-entropy terms.
    Labels may also be class names (strings; None, "" or NaN unlabelled) in
    NumPy arrays or lists: `fit`, its `validation_data` and `evaluate` map
    them to class ids with the level's `class_names`, saved with the model
    (`keras_mlcl.models.label_names`; `class_ids` and `class_name_of` map
    by hand, e.g. for a dataset's batches).

    Also: under data parallelism (`keras.distribution`, `tf.distribute`,
    `torch.distributed`) the loss is that of the global batch
    (docs/scaling.md); a NaN in a batch's float inputs or in any output makes
    every logged loss NaN on every backend, so `TerminateOnNaN` stops
    training (`input_checks.any_nan`); `save` and `save_weights` keep the
    random layers' seed states, so `BackupAndRestore` resumes the same views
    (`keras_mlcl.models.seed_state`); with `shuffle=True` (the default),
    `fit` shuffles NumPy arrays itself, each epoch's order drawn from the
    epoch and a seed saved with the model, so a resumed run visits its
    remaining epochs in the same orders (`keras_mlcl.models.epoch_order`;
    `shuffle="batch"` and other data are Keras'); `compile(metrics=...)`
    applies Keras metrics to the classifiers, logged as `<level>_<name>`.

    Example:

    >>> encoder = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32)])
    >>> model = ContrastiveModel(encoder, heads={"coarse": 8, "fine": 8})
    >>> model.compile(optimizer="adam")
    >>> x = np.random.rand(64, 16).astype("float32")
    >>> y = {"coarse": np.repeat([0, 1], 32), "fine": np.repeat([0, 1, 2, 3], 16)}
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> sorted(model.predict(x, verbose=0))
    ['coarse', 'embedding', 'fine']
    """


    def __init__(
        self,
        encoder: keras.Model,
        heads: Mapping[str, int] | MultiProjectionHead,
        loss: ContrastiveLoss | None = None,
        views: int = 2,
        augment: keras.layers.Layer | None = None,
        classifier: Mapping[str, int] | None = None,
        ce_weight: float = 0.0,
        memory_bank: MemoryBank | int | None = None,
        class_names: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        heads = check_heads(heads)
        loss = MultiLevelSupCon.hierarchical(levels=heads.head_names) if loss is None else loss
        self.contrastive_loss = check_loss(loss, heads.head_names)
        self.memory_bank = check_memory_bank(memory_bank)
        self.views = check_positive_int("views", views)
        self.classifier, self.ce_weight = check_classifier(classifier, ce_weight)
        self._class_names = check_class_names(
            class_names, [*heads.head_names, *self.classifier], self.classifier
        )
        self.encoder = encoder
        self.heads = heads
        self.augment = augment
        self.classifier_layers = {
            level: keras.layers.Dense(n, name=f"{layer_name(level)}_classifier")
            for level, n in self.classifier.items()
        }
        self.head_loss_trackers = [loss_tracker(f"{h}_loss") for h in heads.head_names]
        self.ce_trackers = [loss_tracker(f"{level}_ce") for level in self.classifier]
        self.accuracy_trackers = [accuracy_tracker(f"{level}_acc") for level in self.classifier]
        self.training_metrics = MonitoredMetrics(
            self.head_loss_trackers + self.ce_trackers + self.accuracy_trackers
        )

    @property
    def head_names(self) -> list[str]:
        """The heads' names, coarse to fine."""
        return self.heads.head_names

    def build(self, input_shape: Any) -> None:
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

    def call(self, inputs: Any, training: bool = False) -> dict[str, Tensor]:
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

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Tensor:
        views = self.views if training else 1
        # A NaN must reach the loss (and `TerminateOnNaN`) on every backend,
        # but TensorFlow's oneDNN CPU kernel for a fused MatMul + BiasAdd +
        # Relu (a Dense layer with ReLU, outside XLA) outputs 0 for a NaN;
        # so NaN inputs or outputs make every loss term NaN (see class doc).
        has_nan = any_nan((x, y_pred))

        def surface_nan(value: Tensor) -> Tensor:
            return ops.where(has_nan, float("nan"), value)

        def tile(t: Tensor) -> Tensor:
            return t if views == 1 else ops.concatenate([t] * views, axis=0)

        labels, classifier_labels = keras.tree.map_structure(tile, self.split_labels(y))
        if sample_weight is not None:
            # Keras replicates one sample-weight array over the label dict.
            sample_weight = tile(ops.convert_to_tensor(keras.tree.flatten(sample_weight)[0]))
        loss = self.contrastive_loss
        embeddings = {name: y_pred[name] for name in self.head_names}
        bank = self.memory_bank if training else None
        if bank is not None:
            terms = bank.term_losses(loss, labels, embeddings, sample_weight)
        else:
            terms = loss.term_losses(labels, embeddings, sample_weight)
        # The terms are the global values: the scale for replicas comes last.
        total = loss.combine(terms)
        per_head = loss.per_head(terms, self.head_names)
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

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        *,
        metrics: Any = None,
        weighted_metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """`keras.Model.compile`, with `metrics` for the classifier outputs.

        Args:
            optimizer: as for `keras.Model.compile`.
            loss: not accepted: the contrastive loss is the constructor's
                `loss`, the classifiers' cross-entropy its `ce_weight`.
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
        if loss is not None:
            raise ValueError(
                "`ContrastiveModel.compile` takes no `loss`: training uses the constructor's "
                f"`loss` ({self.contrastive_loss.name}) and, with a `classifier`, `ce_weight` "
                f"times its cross-entropy. Received: `loss`={loss!r}"
            )
        classifier_metrics = check_compile_metrics(metrics, weighted_metrics, list(self.classifier))
        super().compile(optimizer=optimizer, **kwargs)
        self._compile_config.config.update(metrics=metrics, weighted_metrics=weighted_metrics)
        if classifier_metrics is not None:
            set_compile_metrics(self, classifier_metrics)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Compiles the model as `get_compile_config` saved it (when loading)."""
        config = keras.saving.deserialize_keras_object(config)
        # Keras' compile config always holds `loss`, None here.
        self.compile(**{key: v for key, v in config.items() if key != "loss" or v is not None})
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Updates the `compile` metrics on the classifier outputs; returns all metrics."""
        if self._compile_metrics is not None:
            update_classifier_metrics(
                self._compile_metrics, self.split_labels(y)[1], y_pred, sample_weight
            )
        return self.get_metrics_result()

    def embed(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The encoder embedding of `x`, as NumPy."""
        return self.encoder.predict(x, batch_size=batch_size, verbose=0)

    def fit_classifier(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        steps: int = 1000,
        batch_size: int = 8192,
        learning_rate: float = 0.05,
    ) -> dict[str, dict[str, float]]:
        """Refits the classifiers on the frozen encoder, after `fit`.

        Joint training often leaves the classifier far from what its
        embedding allows (under a contrastive loss the embedding's scale is
        free, and small). This finishes each classifier's training on the
        embeddings of `x` with the encoder frozen: on standardised
        embeddings, with an L2 penalty like a logistic regression's, the
        standardisation then folded back into the Dense layer
        (`keras_mlcl.models.classifier_refit`). `keras-mlcl train` and the
        quality bench call it after `fit`.

        Args:
            x: the training inputs, not augmented.
            y: their labels, as `fit` takes them.
            sample_weight: optional `(N,)` weights of the samples.
            steps: Adam steps per level. Defaults to 1000.
            batch_size: rows per step (all rows, up to it). Defaults to 8192.
            learning_rate: Adam's initial learning rate, decayed to 0 along
                a cosine over the steps. Defaults to 0.05.

        Returns:
            `{level: {"initial_loss", "loss"}}`: each classifier's
            penalised training loss before and after.

        Example:

        >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
        >>> model = ContrastiveModel(encoder, {"fine": 4}, classifier={"fine": 2}, ce_weight=1.0)
        >>> model.compile(optimizer="adam")
        >>> x = np.random.rand(32, 4).astype("float32")
        >>> y = {"fine": np.repeat([0, 1], 16)}
        >>> _ = model.fit(x, y, epochs=1, verbose=0)
        >>> losses = model.fit_classifier(x, y, steps=20)
        >>> losses["fine"]["loss"] < losses["fine"]["initial_loss"]
        True
        """
        return fit_classifier(
            self,
            x,
            y,
            sample_weight=sample_weight,
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
        )

    def export(
        self,
        filepath: str | os.PathLike[str],
        format: str = "tf_saved_model",
        input_signature: Sequence[keras.InputSpec] | None = None,
        verbose: bool = True,
        search_indexes: Mapping[str, Any] | None = None,
        search_k: int = 10,
        **kwargs: Any,
    ) -> None:
        """Exports the inference model (`call` with `training=False`).

        With `format="tf_saved_model"` this works from every backend: from
        torch it goes through a TensorFlow child process (see
        `keras_mlcl.models.export`). The `serve` endpoint returns the dict
        of `predict`. `input_signature` defaults to the encoder's inputs
        with an open batch size.

        `search_indexes` (`tf_saved_model` only), `{output: (embeddings,
        ids)}` with `output` `"embedding"` or a head name, adds an endpoint
        per entry (`search`, `search_<head>`) taking the input of `serve`
        and returning the `search_k` stored rows most cosine-similar to
        that output: `{"ids", "scores", "rows"}` (see
        `keras_mlcl.models.export`).
        """
        if format != "tf_saved_model":
            if search_indexes is not None:
                raise ValueError(
                    "`search_indexes` needs `format='tf_saved_model'`. "
                    f"Received: `format`={format!r}"
                )
            return super().export(
                filepath, format=format, input_signature=input_signature, verbose=verbose, **kwargs
            )
        if input_signature is None:
            input_signature = input_signature_of(self)
        export_saved_model(
            self,
            filepath,
            input_signature,
            modules=kwargs.pop("modules", ()),
            verbose=verbose,
            search_indexes=search_indexes,
            search_k=search_k,
        )

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
            "class_names": self.class_names or None,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ContrastiveModel":
        config = dict(config)
        deserialize = keras.saving.deserialize_keras_object
        for key in ("encoder", "heads", "loss", "augment", "memory_bank"):
            if config.get(key) is not None:
                config[key] = deserialize(config[key])
        return cls(**config)
