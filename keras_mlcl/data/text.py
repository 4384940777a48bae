"""A small keras-hub text encoder and its host-side tokenizer.

`text_encoder(texts=...)` builds both halves from the training texts, with
random weights and no download: a WordPiece vocabulary computed from the
texts, and a small BERT backbone built from a config. `text_encoder(preset=...)`
loads a keras-hub preset instead (this needs the network the first time, or a
local preset directory).

Tokenization runs on the host and returns NumPy token ids, so that the model
(for instance a `ContrastiveModel`, whose augmentation such as `TokenDropout`
works on token ids) only ever sees integer arrays.
"""

import os
import tempfile

import keras
import numpy as np
from keras import ops

from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_non_negative_float
from keras_mlcl.utils.validation import check_positive_int

RESERVED_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
POOLINGS = ("mean", "cls")


def import_keras_hub():
    """Imports keras-hub, or raises an `ImportError` saying how to get it."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "The text encoder needs keras-hub (and tensorflow-text): "
            "`pip install 'keras-mlcl[hub]'`."
        ) from error
    return keras_hub


def check_sequence_length(sequence_length):
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
        sequence_length = None
    if sequence_length is None or sequence_length < 3:
        raise ValueError(
            "`sequence_length` should be an integer >= 3 (start token, text, end "
            f"token). Received: `sequence_length`={sequence_length!r}"
        )
    return sequence_length


def as_text_list(texts, name="texts"):
    """`texts` (a string, or a sequence / array of strings or bytes) as a list of str."""
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    try:
        items = list(np.asarray(texts, dtype=object).reshape(-1))
    except (TypeError, ValueError):
        items = None
    if items is None or not all(isinstance(t, (str, bytes)) for t in items):
        raise ValueError(
            f"`{name}` should be a string or a sequence of strings. Received: `{name}`={texts!r}"
        )
    return [t.decode("utf-8") if isinstance(t, bytes) else t for t in items]


def compute_vocabulary(texts, vocabulary_size=2000, lowercase=True):
    """Computes a WordPiece vocabulary from training texts, offline.

    Uses `keras_hub.tokenizers.compute_word_piece_vocabulary` (which needs
    tensorflow-text). The reserved tokens come first: `[PAD]` = 0, `[CLS]` =
    1, `[SEP]` = 2, `[UNK]` = 3, `[MASK]` = 4.

    Args:
        texts: non-empty sequence of strings.
        vocabulary_size: positive int, the largest vocabulary size (the
            result may be smaller on a small corpus). Defaults to 2000.
        lowercase: lowercase the texts first. Defaults to True.

    Returns:
        The vocabulary, a list of strings.

    Example:

    >>> vocabulary = compute_vocabulary(["the cat sat", "the dog ran"], 50)
    >>> vocabulary[:5]
    ['[PAD]', '[CLS]', '[SEP]', '[UNK]', '[MASK]']
    """
    texts = as_text_list(texts)
    if not texts:
        raise ValueError("`texts` should be a non-empty sequence of strings. Received: `texts`=[]")
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    if vocabulary_size <= len(RESERVED_TOKENS):
        raise ValueError(
            f"`vocabulary_size` should be larger than the {len(RESERVED_TOKENS)} reserved "
            f"tokens. Received: `vocabulary_size`={vocabulary_size!r}"
        )
    keras_hub = import_keras_hub()
    # A text file per corpus keeps TensorFlow out of this module: keras-hub
    # reads it line by line (newlines inside a text only split words).
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "texts.txt")
        with open(path, "w", encoding="utf-8") as file:
            for text in texts:
                file.write(text.replace("\r", " ").replace("\n", " ") + "\n")
        return keras_hub.tokenizers.compute_word_piece_vocabulary(
            [path],
            vocabulary_size=vocabulary_size,
            lowercase=lowercase,
            reserved_tokens=list(RESERVED_TOKENS),
        )


def load_preset(loader, preset):
    """`loader.from_preset(preset)`, with a clear error when it cannot be had."""
    try:
        return loader.from_preset(preset)
    except Exception as error:
        raise RuntimeError(
            f"Could not load the keras-hub preset `preset`={preset!r} "
            f"({type(error).__name__}: {error}). Presets are downloaded on first use; "
            "offline, pass a local preset directory, or build a small encoder from "
            "your texts with `text_encoder(texts=...)`."
        ) from error


def token_id(tokenizer, attribute):
    """A special token id of `tokenizer` as an int, or None when it has none."""
    value = getattr(tokenizer, attribute, None)
    return None if value is None else int(value)


class TextPreprocessor:
    """Maps raw strings to fixed-length token ids, on the host.

    ```
    ids = [start] + tokens[: sequence_length - 2] + [end] + [pad] * ...
    ```

    where `tokens` are the WordPiece ids of a text (truncated to fit),
    `start`/`end` the tokenizer's start and end tokens (`[CLS]`, `[SEP]`) and
    `pad` its padding id (0 for a vocabulary from `compute_vocabulary`).

    Args:
        vocabulary: list of WordPiece tokens (reserved tokens first, as
            `compute_vocabulary` returns them). Give this or `preset`.
        sequence_length: int >= 3, the length of every output row.
            Defaults to 64.
        lowercase: lowercase texts before tokenizing (vocabulary only).
            Defaults to True.
        preset: name or local path of a keras-hub preset whose tokenizer to
            use, instead of `vocabulary`.

    Attributes:
        tokenizer: the keras-hub tokenizer.
        vocabulary_size, padding_id, mask_token_id, start_token_id,
        end_token_id: the ids a model and `TokenDropout` need.

    Example:

    >>> preprocessor = TextPreprocessor.from_texts(["a cat", "a dog"], sequence_length=8)
    >>> preprocessor(["a cat"])  # [CLS] a c ##a ##t [SEP] [PAD] [PAD]: [[1, 5, 6, 11, 16, 2, 0, 0]]
    """

    def __init__(self, vocabulary=None, sequence_length=64, lowercase=True, preset=None):
        if (vocabulary is None) == (preset is None):
            raise ValueError(
                "Pass exactly one of `vocabulary` and `preset`. Received: "
                f"`vocabulary`={'None' if vocabulary is None else '[...]'}, `preset`={preset!r}"
            )
        self.sequence_length = check_sequence_length(sequence_length)
        self.lowercase = bool(lowercase)
        self.preset = preset
        keras_hub = import_keras_hub()
        if preset is not None:
            self.tokenizer = load_preset(keras_hub.tokenizers.Tokenizer, preset)
        else:
            vocabulary = [str(token) for token in vocabulary]
            missing = [token for token in RESERVED_TOKENS if token not in vocabulary]
            if missing:
                raise ValueError(
                    f"`vocabulary` should contain the tokens {list(RESERVED_TOKENS)}. "
                    f"Missing: {missing}"
                )
            self.tokenizer = keras_hub.models.BertTokenizer(
                vocabulary=vocabulary, lowercase=self.lowercase
            )
        self.start_token_id = token_id(self.tokenizer, "start_token_id")
        self.end_token_id = token_id(self.tokenizer, "end_token_id")
        self.mask_token_id = token_id(self.tokenizer, "mask_token_id")
        padding_id = token_id(self.tokenizer, "pad_token_id")
        self.padding_id = 0 if padding_id is None else padding_id
        self.vocabulary_size = int(self.tokenizer.vocabulary_size())

    @classmethod
    def from_texts(cls, texts, vocabulary_size=2000, sequence_length=64, lowercase=True):
        """A preprocessor whose vocabulary is computed from `texts`."""
        vocabulary = compute_vocabulary(texts, vocabulary_size, lowercase=lowercase)
        return cls(vocabulary, sequence_length=sequence_length, lowercase=lowercase)

    def get_vocabulary(self):
        """The vocabulary, a list of strings (index = token id)."""
        return list(self.tokenizer.get_vocabulary())

    def __call__(self, texts, batch_size=4096):
        """Token ids of `texts`.

        Args:
            texts: a string, or a sequence / array of strings.
            batch_size: how many texts the tokenizer takes at a time.

        Returns:
            An int32 NumPy array `(len(texts), sequence_length)`.
        """
        texts = as_text_list(texts)
        specials = [t for t in (self.start_token_id, self.end_token_id) if t is not None]
        room = self.sequence_length - len(specials)
        ids = np.full((len(texts), self.sequence_length), self.padding_id, dtype="int32")
        for begin in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[begin : begin + batch_size])
            if hasattr(tokens, "to_list"):
                tokens = tokens.to_list()
            for row, sequence in enumerate(tokens, start=begin):
                sequence = [int(t) for t in sequence[:room]]
                if self.start_token_id is not None:
                    sequence = [int(self.start_token_id)] + sequence
                if self.end_token_id is not None:
                    sequence = sequence + [int(self.end_token_id)]
                ids[row, : len(sequence)] = sequence
        return ids

    def get_config(self):
        return {
            "vocabulary": None if self.preset is not None else self.get_vocabulary(),
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "preset": self.preset,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def backbone_encoder(backbone, sequence_length, padding_id=0, pooling="mean", name="text_encoder"):
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
    texts=None,
    preset=None,
    sequence_length=64,
    vocabulary_size=2000,
    num_layers=2,
    num_heads=2,
    hidden_dim=64,
    intermediate_dim=128,
    dropout=0.1,
    pooling="mean",
    lowercase=True,
    name="text_encoder",
):
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
    >>> embeddings = encoder(preprocessor(texts))  # (4, 32)
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
    else:
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
