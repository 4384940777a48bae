"""MultiProjectionHead: one ProjectionHead per level, label or label group."""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import keras

from keras_mlcl.layers.projection_head import ProjectionHead
from keras_mlcl.layers.projection_head import clone_initializer
from keras_mlcl.layers.projection_head import normalize_hidden_dims
from keras_mlcl.utils.names import layer_name
from keras_mlcl.utils.types import Tensor

_HEAD_KEYS = ("output_dim", "hidden_dims", "activation", "normalize", "use_bias")


@keras.saving.register_keras_serializable(package="keras_mlcl")
class MultiProjectionHead(keras.layers.Layer):
    """Several projection heads on one input, returning a dict of embeddings.

    Each head is a `ProjectionHead` with its own weights and its own
    initializer instance (an int seed is offset per head and layer), so
    heads never start identical. A head's name is the key of its output; its
    layer is named after it by `keras_mlcl.utils.names.layer_name` (the same
    name when it is a plain ASCII identifier), so any string, such as
    `"fine level"`, names a head on every backend.

    Args:
        heads: dict `{name: output_dim}` or `{name: {"output_dim": ...,
            "hidden_dims": ..., "activation": ..., "normalize": ...,
            "use_bias": ...}}`; missing keys take the shared defaults below.
        hidden_dims: default hidden sizes of every head. Defaults to `(512,)`.
        activation: default hidden activation. Defaults to `"relu"`.
        normalize: default L2 normalisation of outputs. Defaults to True.
        kernel_initializer: initializer shared (as clones) by all heads.
        bias_initializer: bias initializer shared (as clones) by all heads.
        **kwargs: base `Layer` arguments.

    Returns (when called):
        A dict `{name: (batch, output_dim)}`.

    Example:

    >>> heads = MultiProjectionHead({"coarse": 32, "fine": 64}, hidden_dims=(64,))
    >>> out = heads(keras.random.normal((4, 16)))
    >>> {name: tuple(keras.ops.shape(z)) for name, z in out.items()}
    {'coarse': (4, 32), 'fine': (4, 64)}
    """

    def __init__(
        self,
        heads: Mapping[str, int],
        hidden_dims: int | Sequence[int] | None = (512,),
        activation: str | Any = "relu",
        normalize: bool = True,
        kernel_initializer: str | Any = "glorot_uniform",
        bias_initializer: str | Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(heads, dict) or not heads:
            raise ValueError(
                "`heads` should be a non-empty dict {name: output_dim or head "
                f"config}}. Received: `heads`={heads!r}"
            )
        self.hidden_dims = list(normalize_hidden_dims(hidden_dims))
        self.activation = activation
        self.normalize = normalize
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.head_configs = {}
        self.projection_heads = {}
        for index, (name, spec) in enumerate(heads.items()):
            spec = {"output_dim": spec} if isinstance(spec, int) else dict(spec or {})
            unknown = sorted(set(spec) - set(_HEAD_KEYS))
            if unknown:
                raise ValueError(
                    f"`heads[{name!r}]` has unknown keys {unknown}; expected an int "
                    f"or a dict with keys among {list(_HEAD_KEYS)}."
                )
            defaults = {
                "hidden_dims": self.hidden_dims,
                "activation": activation,
                "normalize": normalize,
            }
            spec = {**defaults, **spec}
            spec["hidden_dims"] = list(normalize_hidden_dims(spec["hidden_dims"]))
            self.head_configs[name] = spec
            offset = 1000 * index
            self.projection_heads[name] = ProjectionHead(
                **spec,
                kernel_initializer=clone_initializer(self.kernel_initializer, offset),
                bias_initializer=clone_initializer(self.bias_initializer, offset),
                dtype=self.dtype_policy,
                name=layer_name(name),
            )

    @property
    def head_names(self) -> list[str]:
        return list(self.projection_heads)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        for head in self.projection_heads.values():
            head.build(input_shape)

    def call(self, inputs: Tensor) -> dict[str, Tensor]:
        return {name: head(inputs) for name, head in self.projection_heads.items()}

    def compute_output_shape(
        self, input_shape: tuple[int | None, ...]
    ) -> dict[str, tuple[int | None, ...]]:
        return {
            name: head.compute_output_shape(input_shape)
            for name, head in self.projection_heads.items()
        }

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "heads": {name: dict(spec) for name, spec in self.head_configs.items()},
                "hidden_dims": self.hidden_dims,
                "activation": self.activation,
                "normalize": self.normalize,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
