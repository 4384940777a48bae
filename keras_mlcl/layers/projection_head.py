"""ProjectionHead: an MLP whose output is L2-normalised."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_mlcl.ops.normalization import l2_normalize
from keras_mlcl.utils.types import Tensor
from keras_mlcl.utils.validation import check_positive_int


def clone_initializer(initializer: Any, seed_offset: int) -> keras.initializers.Initializer:
    """A new initializer instance; an explicit int seed is moved by `seed_offset`.

    Keras initializers are stateless: one instance (or clones with the same
    seed) gives every layer the same starting weights. Offsetting the seed
    keeps runs reproducible while each layer starts differently.
    """
    initializer = keras.initializers.get(initializer)
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        config["seed"] = config["seed"] + seed_offset
    return initializer.__class__.from_config(config)


def normalize_hidden_dims(hidden_dims: int | Sequence[int] | None) -> tuple[int, ...]:
    """`hidden_dims` as a tuple of positive ints (an int means one layer)."""
    if hidden_dims is None:
        return ()
    if isinstance(hidden_dims, int):
        hidden_dims = (hidden_dims,)
    if not isinstance(hidden_dims, (list, tuple)):
        raise ValueError(
            "`hidden_dims` should be a sequence of positive integers. "
            f"Received: `hidden_dims`={hidden_dims!r}"
        )
    return tuple(check_positive_int("hidden_dims", d) for d in hidden_dims)


@keras.saving.register_keras_serializable(package="keras_mlcl")
class ProjectionHead(keras.layers.Layer):
    """Projection head: Dense layers, then an L2-normalised output.

    ```
    z = g(h) / ||g(h)||,  g = Dense(output_dim) o act o Dense(hidden_dims[-1]) o ...
    ```

    The norm is computed in float32 (so float16 activations do not
    overflow) with a small floor, and the output is cast back to the
    layer's compute dtype.

    Args:
        output_dim: positive int, the embedding size. Defaults to 128.
        hidden_dims: sequence of hidden layer sizes. Defaults to `(512,)`;
            `()` gives a linear head.
        activation: activation of the hidden layers. Defaults to `"relu"`.
        normalize: L2-normalise the output. Defaults to True.
        use_bias: whether the Dense layers use a bias. Defaults to True.
        kernel_initializer: initializer of the Dense kernels; every layer
            gets its own instance (an int seed is offset per layer).
        bias_initializer: initializer of the biases.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> head = ProjectionHead(output_dim=32, hidden_dims=(64,))
    >>> z = keras.ops.convert_to_numpy(head(keras.random.normal((4, 16))))
    >>> z.shape, np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)  # unit rows
    ((4, 32), True)
    """

    def __init__(
        self,
        output_dim: int = 128,
        hidden_dims: int | Sequence[int] | None = (512,),
        activation: str | Any = "relu",
        normalize: bool = True,
        use_bias: bool = True,
        kernel_initializer: str | Any = "glorot_uniform",
        bias_initializer: str | Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.hidden_dims = normalize_hidden_dims(hidden_dims)
        self.activation = keras.activations.get(activation)
        self.normalize = bool(normalize)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        sizes = self.hidden_dims + (self.output_dim,)
        self.dense_layers = [
            keras.layers.Dense(
                size,
                activation=self.activation if i < len(self.hidden_dims) else None,
                use_bias=self.use_bias,
                kernel_initializer=clone_initializer(self.kernel_initializer, i),
                bias_initializer=clone_initializer(self.bias_initializer, i),
                dtype=self.dtype_policy,
                name=f"dense_{i}",
            )
            for i, size in enumerate(sizes)
        ]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs
        for layer in self.dense_layers:
            x = layer(x)
        if not self.normalize:
            return x
        return ops.cast(l2_normalize(x), self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "hidden_dims": list(self.hidden_dims),
                "activation": keras.activations.serialize(self.activation),
                "normalize": self.normalize,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
