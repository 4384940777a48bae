"""A small keras-hub text encoder: token ids -> pooled embedding.

`text_encoder(texts=...)` builds the encoder and its `TextPreprocessor` from
the training texts, with random weights and no download: a WordPiece
vocabulary computed from the texts and a small BERT backbone built from a
config. `text_encoder(preset=...)` loads a keras-hub preset instead (this
needs the network the first time, or a local preset folder).
"""

from collections.abc import Sequence

import keras
from keras import ops

from keras_mlcl.data.text_preprocessor import TextPreprocessor
from keras_mlcl.data.text_preprocessor import check_sequence_length
from keras_mlcl.data.text_preprocessor import import_keras_hub
from keras_mlcl.data.text_preprocessor import load_preset
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_int

POOLINGS = ("mean", "cls")


def backbone_encoder(
    backbone: keras.Model,
    sequence_length: int,
    padding_id: int = 0,
    pooling: str = "mean",
    name: str = "text_encoder",
) -> keras.Model:
    """Wraps a keras-hub backbone as a token ids -> pooled embedding model.

    ```
    mean:  e = sum_t m_t h_t / max(sum_t m_t, 1),   m_t = [ids_t != padding_id]
    cls:   e = the backbone's pooled output (or h_0 when it has none)
    ```

    where `h_t` is the backbone's sequence output at position `t`. The
    padding mask (and all-zero segment ids, for backbones that take them)
    are computed from the ids inside the model.

    Args:
        backbone: a keras-hub backbone taking `token_ids` and
            `padding_mask` (and optionally `segment_ids`).
        sequence_length: int, the length of the input rows.
        padding_id: int, the padding token id. Defaults to 0.
        pooling: `"mean"` (masked mean of the sequence output) or `"cls"`.
            Defaults to `"mean"`.
        name: name of the returned model.

    Returns:
        A functional `keras.Model`: int token ids `(B, sequence_length)` ->
        float embeddings `(B, hidden_dim)`.
    """
    pooling = check_choice("pooling", pooling, POOLINGS)
    sequence_length = check_sequence_length(sequence_length)
    input_names = set(backbone.input.keys()) if isinstance(backbone.input, dict) else set()
    if not {"token_ids", "padding_mask"} <= input_names:
        raise ValueError(
            "`backbone` should take a dict with `token_ids` and `padding_mask`. "
            f"Received inputs: {sorted(input_names)}"
        )
    outputs = backbone.output
    if pooling == "cls" and isinstance(outputs, dict) and "pooled_output" in outputs:
        body = keras.Model(backbone.input, outputs["pooled_output"], name=f"{backbone.name}_pooled")
    else:
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        # Only the sequence path: a pooling head the model does not use would
        # be a set of weights without gradients.
        body = keras.Model(backbone.input, sequence, name=f"{backbone.name}_sequence")

    token_ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
    padding_mask = ops.not_equal(token_ids, padding_id)
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if "segment_ids" in input_names:
        inputs["segment_ids"] = ops.zeros_like(token_ids)
    hidden = body({key: inputs[key] for key in backbone.input})
    if pooling == "cls" and len(hidden.shape) == 3:
        pooled = hidden[:, 0, :]
    elif pooling == "cls":
        pooled = hidden
    else:
        weights = ops.expand_dims(ops.cast(padding_mask, hidden.dtype), -1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        pooled = ops.sum(hidden * weights, axis=1) / count
    return keras.Model(token_ids, pooled, name=name)


def text_encoder(
    texts: Sequence[str] | None = None,
    preset: str | None = None,
    sequence_length: int = 64,
    vocabulary_size: int = 2000,
    num_layers: int = 2,
    num_heads: int = 2,
    hidden_dim: int = 64,
    intermediate_dim: int = 128,
    dropout: float = 0.1,
    pooling: str = "mean",
    lowercase: bool = True,
    name: str = "text_encoder",
) -> tuple[TextPreprocessor, keras.Model]:
    """Builds a small text encoder and its host-side preprocessor.

    From `texts` (offline, random weights): a WordPiece vocabulary of at
    most `vocabulary_size` tokens computed from the texts, and a
    `keras_hub.models.BertBackbone` with `num_layers` transformer layers of
    width `hidden_dim`. From `preset` (e.g. `"bert_tiny_en_uncased"`, or a
    local preset folder): the preset's tokenizer and pretrained backbone
    (downloaded on first use; the size arguments are then ignored).

    Args:
        texts: the training texts (sequence of strings). Give this or
            `preset`.
        preset: keras-hub preset name or path. Give this or `texts`.
        sequence_length: int >= 3, token ids per text (start and end tokens
            included). Defaults to 64.
        vocabulary_size: largest vocabulary size. Defaults to 2000.
        num_layers: transformer layers. Defaults to 2.
        num_heads: attention heads; must divide `hidden_dim`. Defaults to 2.
        hidden_dim: embedding size `H`. Defaults to 64.
        intermediate_dim: feed-forward width. Defaults to 128.
        dropout: dropout rate inside the backbone. Defaults to 0.1.
        pooling: `"mean"` (masked mean over tokens) or `"cls"` (the
            backbone's pooled `[CLS]` output). Defaults to `"mean"`.
        lowercase: lowercase texts (vocabulary built from `texts` only).
            Defaults to True.
        name: name of the encoder model.

    Returns:
        `(preprocessor, encoder)`: a `TextPreprocessor` (strings -> int32
        NumPy ids `(N, sequence_length)`, padding id
        `preprocessor.padding_id`) and a `keras.Model` (ids
        `(B, sequence_length)` -> embeddings `(B, H)`).

    Example:

    >>> texts = ["the cat sat", "a dog ran", "stocks fell", "team won"]
    >>> preprocessor, encoder = text_encoder(texts, sequence_length=16, hidden_dim=32)
    >>> embeddings = encoder(preprocessor(texts))
    >>> tuple(keras.ops.shape(embeddings))
    (4, 32)
    """
    if (texts is None) == (preset is None):
        raise ValueError(
            "Pass exactly one of `texts` (to build a small encoder from a config) and "
            f"`preset` (to load one). Received: `texts`={'None' if texts is None else '[...]'}, "
            f"`preset`={preset!r}"
        )
    sequence_length = check_sequence_length(sequence_length)
    pooling = check_choice("pooling", pooling, POOLINGS)
    keras_hub = import_keras_hub()
    if preset is not None:
        preprocessor = TextPreprocessor(sequence_length=sequence_length, preset=preset)
        backbone = load_preset(keras_hub.models.Backbone, preset)
        max_length = getattr(backbone, "max_sequence_length", None)
        if max_length is not None and sequence_length > max_length:
            raise ValueError(
                f"`sequence_length` should be at most the preset's {max_length}. "
                f"Received: `sequence_length`={sequence_length}"
            )
    elif texts is not None:
        num_layers = check_positive_int("num_layers", num_layers)
        num_heads = check_positive_int("num_heads", num_heads)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        dropout = check_non_negative_float("dropout", dropout)
        if dropout >= 1:
            raise ValueError(f"`dropout` should be in [0, 1). Received: `dropout`={dropout!r}")
        if hidden_dim % num_heads:
            raise ValueError(
                "`hidden_dim` should be divisible by `num_heads`. Received: "
                f"`hidden_dim`={hidden_dim}, `num_heads`={num_heads}"
            )
        preprocessor = TextPreprocessor.from_texts(
            texts,
            vocabulary_size=vocabulary_size,
            sequence_length=sequence_length,
            lowercase=lowercase,
        )
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=preprocessor.vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_sequence_length=sequence_length,
        )
    encoder = backbone_encoder(
        backbone,
        sequence_length,
        padding_id=preprocessor.padding_id,
        pooling=pooling,
        name=name,
    )
    return preprocessor, encoder
