"""`TokenDropout`: the augmentation of a contrastive view of token ids."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_mlcl.layers.layer_utils import check_rate
from keras_mlcl.layers.layer_utils import check_token_id
from keras_mlcl.utils.types import Tensor


@keras.saving.register_keras_serializable(package="keras_mlcl")
class TokenDropout(keras.layers.Layer):
    """Randomly drops or masks tokens of a batch of token-id sequences.

    ```
    keep_ij = u_ij >= rate  or  x_ij = padding_id  or  x_ij in protected_ids
    y_ij    = x_ij if keep_ij else r
    ```

    where `u_ij ~ U[0, 1)` is drawn afresh on every call, and the
    replacement `r` is `padding_id` (the token is dropped: an encoder that
    masks padding ignores it) or `mask_token_id` when one is given (BERT-style
    masking). Padding positions are never changed, so about `rate` of the
    real tokens are hit and the sequence length is kept.

    With `training=False` the layer is the identity.

    Args:
        rate: float in [0, 1), the probability of hitting each real token.
        mask_token_id: optional int; when given, hit tokens become this id
            instead of `padding_id`. Defaults to None (drop).
        padding_id: int, the padding token id. Defaults to 0.
        protected_ids: sequence of token ids never changed (e.g. the ids of
            `[CLS]` and `[SEP]`). Defaults to `()`.
        seed: optional int seed of the layer's `SeedGenerator`.
        **kwargs: base `Layer` arguments (`name`, ...).

    Input:
        Integer token ids `(B, T)` (any shape works), `padding_id` = padding.

    Output:
        Token ids of the same shape and dtype.

    Example: `[CLS]` (1), three tokens, `[SEP]` (2) and padding; a hit token becomes
    `[MASK]` (4).

    >>> ids = np.array([[1, 5, 6, 7, 2, 0, 0]], "int32")
    >>> layer = TokenDropout(0.5, mask_token_id=4, protected_ids=(1, 2), seed=0)
    >>> view = keras.ops.convert_to_numpy(layer(ids, training=True))
    >>> view.shape, str(view.dtype)
    ((1, 7), 'int32')
    >>> bool(np.all((view == ids) | (view == 4)))  # every token kept or masked
    True
    >>> view[0, [0, 4, 5, 6]].tolist()  # [CLS], [SEP] and padding never change
    [1, 2, 0, 0]
    >>> keras.ops.convert_to_numpy(layer(ids, training=False)).tolist()
    [[1, 5, 6, 7, 2, 0, 0]]
    """

    def __init__(
        self,
        rate: float,
        mask_token_id: int | None = None,
        padding_id: int = 0,
        protected_ids: Sequence[int] = (),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.mask_token_id = check_token_id("mask_token_id", mask_token_id, allow_none=True)
        self.padding_id = check_token_id("padding_id", padding_id)
        if protected_ids is None:
            protected_ids = ()
        if not isinstance(protected_ids, (list, tuple)):
            raise ValueError(
                "`protected_ids` should be a sequence of token ids. "
                f"Received: `protected_ids`={protected_ids!r}"
            )
        self.protected_ids = tuple(check_token_id("protected_ids", i) for i in protected_ids)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs: Tensor, training: bool = False) -> Tensor:
        if not training or self.rate == 0.0:
            return inputs
        droppable = ops.not_equal(inputs, self.padding_id)
        for token_id in self.protected_ids:
            droppable = ops.logical_and(droppable, ops.not_equal(inputs, token_id))
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        hit = ops.logical_and(ops.less(noise, self.rate), droppable)
        replacement = self.padding_id if self.mask_token_id is None else self.mask_token_id
        return ops.where(hit, ops.full_like(inputs, replacement), inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "mask_token_id": self.mask_token_id,
                "padding_id": self.padding_id,
                "protected_ids": list(self.protected_ids),
                "seed": self.seed,
            }
        )
        return config
