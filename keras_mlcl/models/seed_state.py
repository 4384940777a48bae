"""The states of a model's random layers, saved with its weights.

Keras saves each layer's weights but not the state of its
`keras.random.SeedGenerator`s (random views, dropout), so after `load_weights`
a run resumed by `keras.callbacks.BackupAndRestore` would draw its random
views from the initial seeds again, not where the interrupted run stopped.
`ContrastiveModel` saves them in one `(S, 2)` entry of its own variables.
"""

import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

# The entry of the model's own variables that holds the seed-generator states.
SEED_STATES_KEY = "seed_generator_states"


def seed_generator_states(model: keras.Model) -> list[keras.Variable]:
    """The state variables of every `keras.random.SeedGenerator` of `model`'s layers.

    `model.variables` are its `weights` plus these states, in a fixed order.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def save_seed_states(model: keras.Model, store: Any) -> None:
    """Writes the seed-generator states of `model` into `store` (a model's own variables)."""
    states = seed_generator_states(model)
    if states:
        store[SEED_STATES_KEY] = np.stack([ops.convert_to_numpy(s) for s in states])


def without_seed_states(store: Any) -> dict[str, Any]:
    """`store` without the seed-generator entry: what Keras' own loading expects."""
    return {key: store[key] for key in store.keys() if key != SEED_STATES_KEY}


def load_seed_states(model: keras.Model, store: Any) -> None:
    """Restores the states `save_seed_states` wrote, if `store` holds them.

    Files written before the states were saved leave them as they are; so
    do files of a model with other random layers (e.g. trained with
    `augment`, loaded without), with a warning.
    """
    if SEED_STATES_KEY not in store:
        return
    values = store[SEED_STATES_KEY]
    states = seed_generator_states(model)
    if len(values) != len(states):
        warnings.warn(
            f"The file holds {len(values)} seed-generator states but model "
            f"{model.name!r} has {len(states)} (its random layers differ); "
            "the model's random layers keep their current states.",
            stacklevel=3,
        )
        return
    for state, value in zip(states, values, strict=True):
        state.assign(value)


class SeedStateSaving:
    """A `keras.Model` mixin: its own variables also hold its random layers' seed states."""

    def save_own_variables(self, store: Any) -> None:
        """Saves the model's own variables and its random layers' seed states."""
        super().save_own_variables(store)  # type: ignore[misc]
        save_seed_states(self, store)

    def load_own_variables(self, store: Any) -> None:
        """Loads what `save_own_variables` saved (files without the states load too)."""
        super().load_own_variables(without_seed_states(store))  # type: ignore[misc]
        load_seed_states(self, store)
