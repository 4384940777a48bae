"""Small clustered problems and model builders shared by the model tests."""

import keras
import numpy as np

from keras_mlcl import ContrastiveModel


def clustered(seed=0, n=256, features=16, fine_classes=8, per_coarse=4):
    """Inputs around one centre per fine class; coarse = fine // per_coarse."""
    rng = np.random.default_rng(seed)
    fine = rng.integers(0, fine_classes, size=n)
    centres = rng.normal(size=(fine_classes, features)) * 2.0
    x = (centres[fine] + rng.normal(size=(n, features))).astype("float32")
    return x, {"coarse": fine // per_coarse, "fine": fine}


def encoder(features=16, width=32, out=16):
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(out),
        ],
        name="encoder",
    )


def model(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs.setdefault("heads", {"coarse": 8, "fine": 8})
    return ContrastiveModel(encoder(), **kwargs)
