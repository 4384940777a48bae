"""`TextPreprocessor`: raw strings to fixed-length token ids, with its vocabulary.

`TextPreprocessor.from_texts` computes a WordPiece vocabulary from the
training texts, offline; `TextPreprocessor(preset=...)` uses a keras-hub
preset's tokenizer instead (downloaded on first use, or a local preset
folder). Calling it returns NumPy token ids, so that a model (whose
augmentation, such as `TokenDropout`, works on token ids) only ever sees
integer arrays; `pack` gives the same ids as TensorFlow ops, which is how an
exported text model serves raw strings.
"""

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_mlcl.utils.validation import check_positive_int

RESERVED_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")


def import_keras_hub() -> Any:
    """Imports keras-hub, or raises an `ImportError` saying how to get it."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "The text encoder needs keras-hub (and tensorflow-text): "
            "`pip install 'keras-mlcl[hub]'`."
        ) from error
    return keras_hub


def check_sequence_length(sequence_length: Any) -> int:
    """Returns `sequence_length`, or raises if it is not an int >= 3."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
        sequence_length = None
    if sequence_length is None or sequence_length < 3:
        raise ValueError(
            "`sequence_length` should be an integer >= 3 (start token, text, end "
            f"token). Received: `sequence_length`={sequence_length!r}"
        )
    return sequence_length


def as_text_list(texts: Any, name: str = "texts") -> list[str]:
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


def compute_vocabulary(
    texts: Sequence[str], vocabulary_size: int = 2000, lowercase: bool = True
) -> list[str]:
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


def load_preset(loader: Any, preset: str) -> Any:
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


def token_id(tokenizer: Any, attribute: str) -> int | None:
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
        packer: the `keras_hub.layers.StartEndPacker` that adds the start
            and end tokens, truncates and pads.
        vocabulary_size, padding_id, mask_token_id, start_token_id,
        end_token_id: the ids a model and `TokenDropout` need.

    Example: "a cat" becomes `[CLS] a c ##a ##t [SEP] [PAD] [PAD]`.

    >>> preprocessor = TextPreprocessor.from_texts(["a cat", "a dog"], sequence_length=8)
    >>> preprocessor(["a cat"]).tolist()
    [[1, 5, 6, 11, 16, 2, 0, 0]]
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        sequence_length: int = 64,
        lowercase: bool = True,
        preset: str | None = None,
    ) -> None:
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
        elif vocabulary is not None:
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
        self.packer = keras_hub.layers.StartEndPacker(
            sequence_length=self.sequence_length,
            start_value=self.start_token_id,
            end_value=self.end_token_id,
            pad_value=self.padding_id,
        )

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        vocabulary_size: int = 2000,
        sequence_length: int = 64,
        lowercase: bool = True,
    ) -> "TextPreprocessor":
        """A preprocessor whose vocabulary is computed from `texts`."""
        vocabulary = compute_vocabulary(texts, vocabulary_size, lowercase=lowercase)
        return cls(vocabulary, sequence_length=sequence_length, lowercase=lowercase)

    def get_vocabulary(self) -> list[str]:
        """The vocabulary, a list of strings (index = token id)."""
        return list(self.tokenizer.get_vocabulary())

    def __call__(self, texts: str | Sequence[str], batch_size: int = 4096) -> np.ndarray:
        """Token ids of `texts`.

        Args:
            texts: a string, or a sequence / array of strings.
            batch_size: how many texts the tokenizer takes at a time.

        Returns:
            An int32 NumPy array `(len(texts), sequence_length)`.
        """
        texts = as_text_list(texts)
        ids = np.full((len(texts), self.sequence_length), self.padding_id, dtype="int32")
        for begin in range(0, len(texts), batch_size):
            batch = self.pack(texts[begin : begin + batch_size])
            ids[begin : begin + len(batch)] = keras.ops.convert_to_numpy(batch)
        return ids

    def pack(self, texts: Any) -> Any:
        """Tokenizes and packs a batch of strings with the layers' own ops.

        Given a `tf.string` tensor `(B,)` on the TensorFlow backend (e.g.
        inside a `tf.function`), every step is a TensorFlow op, so a served
        model can take raw strings.

        Args:
            texts: a batch of strings: a list, or a `tf.string` tensor `(B,)`.

        Returns:
            Token ids `(B, sequence_length)`, int32.
        """
        return self.packer(self.tokenizer(texts))

    def get_config(self) -> dict[str, Any]:
        return {
            "vocabulary": None if self.preset is not None else self.get_vocabulary(),
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "preset": self.preset,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TextPreprocessor":
        return cls(**config)
