"""Class names: string labels mapped to int class ids, the mapping kept with the model.

A `ContrastiveModel` trains on int class ids. Given string labels at a level
(a head or a classifier level), the first `fit` records that level's names,
sorted (class id `i` is `names[i]`); every later use (later fits,
`validation_data`, `evaluate`, `class_ids`) maps with the recorded names, so
ids keep their meaning, and the names are saved in the model's config.
Missing labels (`None`, NaN, empty or blank strings) become -1. The mapping runs on
the host, on NumPy arrays and lists, before Keras sees the data.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl.layers import MultiProjectionHead
from keras_mlcl.losses import ContrastiveLoss
from keras_mlcl.utils.class_names import encode_class_names
from keras_mlcl.utils.class_names import names_from_ids
from keras_mlcl.utils.class_names import string_labels
from keras_mlcl.utils.types import ArrayLike


def check_names_fit(level: str, count: int, classifier: Mapping[str, int]) -> None:
    """Raises when a level has more class names than its classifier has classes."""
    if level in classifier and count > classifier[level]:
        raise ValueError(
            f"Level {level!r} has {count} class names but `classifier[{level!r}]` has "
            f"{classifier[level]} classes: the classifier needs one class per name."
        )


def check_class_names(
    class_names: Any, levels: list[str], classifier: Mapping[str, int]
) -> dict[str, list[str]]:
    """`class_names` as `{level: [name of class 0, ...]}`, checked against the levels.

    Args:
        class_names: None, or a dict `{level: list of distinct str names}`.
        levels: the model's heads and classifier levels.
        classifier: `{level: num_classes}` of the classifiers.
    """
    if class_names is None:
        return {}
    if not isinstance(class_names, Mapping):
        raise ValueError(
            "`class_names` should be a dict {level: [name of class 0, ...]} or None. "
            f"Received: `class_names`={class_names!r}"
        )
    checked = {}
    for level, names in class_names.items():
        if level not in levels:
            raise ValueError(
                f"`class_names` has level {level!r}, which is no head or classifier "
                f"level. Expected keys among {levels}."
            )
        if (
            isinstance(names, (str, bytes))
            or not isinstance(names, Sequence)
            or not all(isinstance(n, str) and n for n in names)
            or len(set(names)) != len(names)
        ):
            raise ValueError(
                f"`class_names[{level!r}]` should be a list of distinct non-empty "
                f"strings. Received: {names!r}"
            )
        check_names_fit(level, len(names), classifier)
        checked[level] = list(names)
    return checked


def refuse_string_labels(labels: Any) -> None:
    """Raises when a dataset's batch holds string labels (they need mapping first).

    Args:
        labels: the labels of a batch (NumPy), or the `tf.TensorSpec`s of a
            `tf.data.Dataset`'s labels.
    """
    if any(
        string_labels(v) is not None or getattr(getattr(v, "dtype", None), "name", "") == "string"
        for v in keras.tree.flatten(labels)
    ):
        raise ValueError(
            "String labels in a PyDataset or tf.data.Dataset cannot be mapped to class "
            "ids by the model: yield int class ids, mapped first with "
            "`model.class_ids(level, names)` (or pass NumPy arrays or lists)."
        )


def dataset_labels(x: Any) -> Any:
    """The labels of a PyDataset's first batch or of a tf.data.Dataset's spec; else None."""
    if isinstance(x, keras.utils.PyDataset):
        return tuple(x[0])[1:2]
    spec = getattr(x, "element_spec", None) if hasattr(x, "take") else None
    return spec[1:2] if isinstance(spec, tuple) else None


class LabelNames:
    """A `ContrastiveModel` mixin: string labels in `fit` and `evaluate` (see module doc)."""

    _class_names: dict[str, list[str]]
    classifier: dict[str, int]
    contrastive_loss: ContrastiveLoss
    heads: MultiProjectionHead

    @property
    def class_names(self) -> dict[str, list[str]]:
        """`{level: [name of class 0, name of class 1, ...]}`, `{}` when none (a copy)."""
        return {level: list(names) for level, names in self._class_names.items()}

    def class_ids(self, level: str, names: ArrayLike) -> np.ndarray:
        """Class names as the int32 class ids the model was trained with.

        Args:
            level: a head or classifier level with class names.
            names: names (any array-like of str); None, "" or NaN give -1.

        Returns:
            An int32 NumPy array of the shape of `names`.

        Example:

        >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
        >>> model = keras_mlcl.ContrastiveModel(
        ...     encoder, heads={"fine": 4}, class_names={"fine": ["cat", "dog"]})
        >>> model.class_ids("fine", ["dog", None, "cat"]).tolist()
        [1, -1, 0]
        """
        return encode_class_names(level, {"names": names}, self.names_of_level(level))[0]["names"]

    def class_name_of(self, level: str, ids: ArrayLike) -> np.ndarray:
        """Int class ids as their class names (None for unlabelled ids, -1).

        Args:
            level: a head or classifier level with class names.
            ids: int class ids, any shape.

        Returns:
            An object NumPy array of names, of the shape of `ids`.

        Example:

        >>> encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
        >>> model = keras_mlcl.ContrastiveModel(
        ...     encoder, heads={"fine": 4}, class_names={"fine": ["cat", "dog"]})
        >>> model.class_name_of("fine", [0, 1, -1]).tolist()
        ['cat', 'dog', None]
        """
        return names_from_ids(level, ids, self.names_of_level(level))

    def names_of_level(self, level: str) -> list[str]:
        """The class names of `level`; raises if it has none."""
        if level not in self._class_names:
            raise ValueError(
                f"Level {level!r} has no class names: they come from the constructor's "
                "`class_names` or the first `fit` with string labels. Levels with names: "
                f"{sorted(self._class_names)}"
            )
        return self._class_names[level]

    def labels_as_ids(
        self,
        y: Any,
        names: dict[str, list[str]] | None = None,
        argument: str = "y",
        record: bool = False,
    ) -> Any:
        """`y` with its string labels as int32 class ids; other labels as they are.

        Args:
            y: labels as `fit` takes them: a dict `{level: labels}`, or one
                array (a plain string array is the first head's labels; an
                `(N, L)` string array gives the heads' labels by column).
            names: the class names to map with; None for the model's.
            argument: the name of `y` in error messages.
            record: whether levels without names get theirs (sorted) from
                `y`, added to `names`; if False, string labels at a level
                without names raise. Defaults to False.

        Returns:
            `y`, with int32 arrays in place of string labels.
        """
        known = self._class_names if names is None else names
        heads = self.heads.head_names

        def as_ids(level: str, argument: str, labels: np.ndarray) -> np.ndarray:
            if level not in known and not record:
                self.names_of_level(level)  # raises
            ids, found = encode_class_names(level, {argument: labels}, known.get(level))
            if level not in known:
                check_names_fit(level, len(found), self.classifier)
                known[level] = found
            return ids[argument]

        if isinstance(y, Mapping):
            mapped = dict(y)
            for level, labels in y.items():
                array = string_labels(labels)
                if array is not None:
                    mapped[level] = as_ids(level, f"{argument}[{level!r}]", array)
            return mapped
        array = string_labels(y)
        if array is None:
            return y
        if self.contrastive_loss.labels_in_one_array and array.ndim == 1:
            return as_ids(heads[0], argument, array)
        if not self.contrastive_loss.labels_in_one_array and array.shape[1:] == (len(heads),):
            return {h: as_ids(h, f"{argument}[:, {i}]", array[:, i]) for i, h in enumerate(heads)}
        raise ValueError(
            f"String labels in one array (`{argument}`) should be the labels of a one-head "
            f"model (N,) or one column per head {heads} (N, {len(heads)}); otherwise pass a dict "
            f"{{level: labels}}. Received shape {array.shape}"
        )

    def fit(
        self, x: Any = None, y: Any = None, *args: Any, validation_data: Any = None, **kwargs: Any
    ) -> keras.callbacks.History:
        """`fit`, with string labels mapped to class ids first (see module doc)."""
        names = self.class_names
        y = self.labels_as_ids(y, names, record=True)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) > 1:
            validation_data = list(validation_data)
            validation_data[1] = self.labels_as_ids(validation_data[1], names, "validation_data[1]")
            validation_data = tuple(validation_data)
        self._class_names = names
        return super().fit(  # type: ignore[misc]
            x, y, *args, validation_data=validation_data, **kwargs
        )

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        """`evaluate`, with string labels mapped to class ids by the model's class names."""
        refuse_string_labels(dataset_labels(x))
        return super().evaluate(x, self.labels_as_ids(y), *args, **kwargs)  # type: ignore[misc]

    def sample_weight_from_class_weight(self, y: Any, class_weight: Any) -> np.ndarray:
        """The input checks' weights per sample, for string labels too (mapped first)."""
        return super().sample_weight_from_class_weight(  # type: ignore[misc]
            self.labels_as_ids(y), class_weight
        )
