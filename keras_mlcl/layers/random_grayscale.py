"""`RandomGrayscale` whose config keeps its seed."""

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="keras_mlcl")
class RandomGrayscale(keras.layers.RandomGrayscale):
    """`keras.layers.RandomGrayscale` whose config keeps its `seed`.

    Keras 3.15's layer leaves `seed` (and `data_format`) out of
    `get_config`, so a seeded pipeline rebuilt from its config would draw
    different images. Same arguments and behaviour as the Keras layer.
    """

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"seed": self.seed, "data_format": self.data_format})
        return config
