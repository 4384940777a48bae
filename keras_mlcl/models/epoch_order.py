"""Each epoch's order of array data, from a seed saved with the model and the epoch.

Keras shuffles array data with a global random generator, so a run resumed
by `keras.callbacks.BackupAndRestore` would visit its remaining epochs in
other orders than the interrupted run. `ContrastiveModel.fit` shuffles NumPy
array data itself instead: epoch `e` visits the rows in the order
`epoch_permutation(seed, e, n)`, where `seed` is drawn at the start of each
`fit` from NumPy's global generator (which `keras.utils.set_random_seed`
seeds) and saved with the model's variables, so a resumed run restores it
with the weights. The rows are gathered one batch at a time, as Keras' own
array adapter does.
"""

import inspect
import math
from typing import Any

import keras
import numpy as np

# The entry of the model's own variables that holds the seed of the epoch orders.
EPOCH_ORDER_SEED_KEY = "epoch_order_seed"


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` visits `n` rows, a function of `seed` and `epoch` only.

    Args:
        seed: non-negative int, the seed of a `fit`.
        epoch: non-negative int, the epoch index (as Keras counts it).
        n: the number of rows.

    Returns:
        An int64 NumPy array, a permutation of `range(n)`.

    Example:

    >>> order = epoch_permutation(7, 0, 5)
    >>> sorted(order.tolist())
    [0, 1, 2, 3, 4]
    >>> bool((order == epoch_permutation(7, 0, 5)).all())
    True
    """
    return np.random.default_rng((seed, epoch)).permutation(n)


def as_floatx(array: np.ndarray | None) -> np.ndarray | None:
    """`array` cast to Keras' float type if it holds other floats (as Keras' adapter does)."""
    if (
        array is not None
        and np.issubdtype(array.dtype, np.floating)
        and array.dtype != keras.config.floatx()
    ):
        return array.astype(keras.config.floatx())
    return array


class EpochOrderDataset(keras.utils.PyDataset):
    """Batches of arrays in the order of the current epoch (see module doc).

    Args:
        data: `(x, y, sample_weight)`, nested structures of NumPy arrays
            with the same number of rows (`y` and `sample_weight` may be None).
        batch_size: positive int, rows per batch (the last batch may be smaller).
    """

    def __init__(self, data: tuple[Any, Any, Any], batch_size: int) -> None:
        super().__init__()
        self.data = keras.tree.map_structure(as_floatx, data)
        self.rows = int(keras.tree.flatten(data)[0].shape[0])
        self.batch_size = batch_size
        self.order = np.arange(self.rows)

    def start_epoch(self, seed: int, epoch: int) -> None:
        """Sets the order of epoch `epoch` of `seed`; call it before the epoch's first batch."""
        self.order = epoch_permutation(seed, epoch, self.rows)

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x, y, sample_weight = keras.tree.map_structure(
            lambda a: None if a is None else a[rows], self.data
        )
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


class EpochOrderCallback(keras.callbacks.Callback):
    """Sets `dataset`'s order as each epoch begins, from `owner`'s seed and the epoch.

    The seed is read then, after `BackupAndRestore` may have restored it.
    """

    def __init__(self, dataset: EpochOrderDataset, owner: "EpochOrder") -> None:
        super().__init__()
        self.dataset = dataset
        self.owner = owner

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.dataset.start_epoch(self.owner.epoch_order_seed, epoch)


def numpy_data(data: Any) -> bool:
    """Whether every leaf of `data` (None leaves aside) is a NumPy array, and there is one."""
    leaves = [leaf for leaf in keras.tree.flatten(data) if leaf is not None]
    return bool(leaves) and all(isinstance(leaf, np.ndarray) for leaf in leaves)


def split_off_validation(
    data: tuple[Any, Any, Any], fraction: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """`(training data, validation data)`: the last `fraction` of the rows validate, as in Keras."""
    rows = int(keras.tree.flatten(data)[0].shape[0])
    split = math.floor(rows * (1.0 - fraction)) if 0 < fraction < 1 else 0
    if split == 0 or split == rows:
        raise ValueError(
            "`validation_split` should be a fraction in (0, 1) that leaves training and "
            f"validation rows out of {rows}. Received: `validation_split`={fraction}"
        )

    def rows_of(part: slice) -> Any:
        return keras.tree.map_structure(lambda a: None if a is None else a[part], data)

    return rows_of(slice(None, split)), rows_of(slice(split, None))


class EpochOrder:
    """A `keras.Model` mixin: `fit` shuffles NumPy arrays by epoch orders (see module doc)."""

    _epoch_order_seed: int | None = None

    @property
    def epoch_order_seed(self) -> int:
        """The seed of the epoch orders of the last `fit` that shuffled arrays (0 before)."""
        return self._epoch_order_seed or 0

    def fit(self, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        """`keras.Model.fit`, shuffling NumPy arrays by epoch orders (see module doc).

        With `shuffle=True` (the default) and NumPy arrays `x`, `y` and
        `sample_weight`, epoch `e` visits the rows in the order
        `epoch_permutation(seed, e, rows)`; `validation_split` takes the
        last rows first, as Keras does. Other data, `shuffle="batch"` or
        `False`, and a `steps_per_epoch` go to Keras as they are.
        """
        fit = super().fit  # type: ignore[misc]
        arguments = inspect.signature(fit).bind(*args, **kwargs)
        arguments.apply_defaults()
        given = arguments.arguments
        data = (given["x"], given["y"], given["sample_weight"])
        shuffle = given["shuffle"]
        if (
            not shuffle
            or shuffle == "batch"
            or given["steps_per_epoch"] is not None
            or given["x"] is None
            or not numpy_data(data)
            or isinstance(given["callbacks"], keras.callbacks.CallbackList)
        ):
            return fit(*args, **kwargs)
        if given["validation_split"] and given["validation_data"] is None:
            data, given["validation_data"] = split_off_validation(data, given["validation_split"])
        self._epoch_order_seed = int(np.random.randint(2**31 - 1))
        dataset = EpochOrderDataset(data, given["batch_size"] or 32)
        given.update(
            x=dataset,
            y=None,
            sample_weight=None,
            batch_size=None,
            shuffle=False,
            validation_split=0.0,
            callbacks=[EpochOrderCallback(dataset, self), *(given["callbacks"] or [])],
        )
        return fit(**given)

    def save_own_variables(self, store: Any) -> None:
        """Saves the model's own variables and the seed of the epoch orders."""
        super().save_own_variables(store)  # type: ignore[misc]
        if self._epoch_order_seed is not None:
            store[EPOCH_ORDER_SEED_KEY] = np.array(self._epoch_order_seed, dtype="int64")

    def load_own_variables(self, store: Any) -> None:
        """Loads what `save_own_variables` saved (files without the seed load too)."""
        if EPOCH_ORDER_SEED_KEY in store:
            self._epoch_order_seed = int(np.asarray(store[EPOCH_ORDER_SEED_KEY]))
        super().load_own_variables(  # type: ignore[misc]
            {key: store[key] for key in store.keys() if key != EPOCH_ORDER_SEED_KEY}
        )
