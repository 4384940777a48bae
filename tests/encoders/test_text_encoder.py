import os
import re
import threading
import time

import keras
import numpy as np
import pytest

pytest.importorskip("keras_hub")

from keras_mlcl.data import TextPreprocessor  # noqa: E402
from keras_mlcl.data.text_preprocessor import compute_vocabulary  # noqa: E402
from keras_mlcl.encoders import backbone_encoder  # noqa: E402
from keras_mlcl.encoders import text_encoder  # noqa: E402
from keras_mlcl.layers import TokenDropout  # noqa: E402
from tests.testing import to_numpy  # noqa: E402

LENGTH = 24
TOPICS = {
    0: ["the cat sat on the mat", "a cat chased the mouse", "my cat sleeps all day"],
    1: ["stocks fell sharply today", "the market rallied at noon", "bond yields rose again"],
    2: ["the team won the final", "a late goal won the match", "the coach praised the team"],
}


def corpus():
    texts, labels = [], []
    for label, sentences in TOPICS.items():
        for i in range(8):
            for sentence in sentences:
                texts.append(sentence + "!" * (i % 2) + " " + ["again", "today", ""][i % 3])
                labels.append(label)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def built():
    keras.utils.set_random_seed(0)
    texts, labels = corpus()
    preprocessor, encoder = text_encoder(
        texts,
        sequence_length=LENGTH,
        vocabulary_size=200,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
    )
    return texts, labels, preprocessor, encoder


def words(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


def decode(row, vocabulary):
    """WordPiece ids back to words ("##" pieces join the previous word)."""
    result = []
    for token in (vocabulary[i] for i in row):
        if token.startswith("##"):
            result[-1] += token[2:]
        else:
            result.append(token)
    return result


def test_vocabulary_and_token_ids(built):
    texts, _, preprocessor, _ = built
    vocabulary = preprocessor.get_vocabulary()
    assert vocabulary[:5] == ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    assert preprocessor.vocabulary_size == len(vocabulary) <= 200
    assert (preprocessor.padding_id, preprocessor.mask_token_id) == (0, 4)
    ids = preprocessor(texts)
    assert ids.shape == (len(texts), LENGTH) and ids.dtype == np.int32
    complete = 0
    for text, row in zip(texts, ids, strict=True):
        used = int((row != 0).sum())
        np.testing.assert_array_equal(row[used:], 0)
        assert row[0] == 1 and row[used - 1] == 2
        decoded = decode(row[1 : used - 1], vocabulary)
        if used < LENGTH:  # not truncated: every word comes back
            assert decoded == words(text)
            complete += 1
        else:
            assert decoded[:-1] == words(text)[: len(decoded) - 1]
    assert complete > len(texts) // 2
    np.testing.assert_array_equal(preprocessor(texts[0]), ids[:1])


def test_truncation_and_unknown_characters(built):
    _, _, preprocessor, _ = built
    row = preprocessor(["the cat sat " * 20])[0]
    assert row[0] == 1 and row[-1] == 2 and (row != 0).all()
    row = preprocessor(["the \u2603 cat"])[0]  # a snowman: not in the vocabulary
    assert row[0] == 1 and 3 in row


def test_preprocessor_config_round_trip(built):
    texts, _, preprocessor, _ = built
    config = preprocessor.get_config()
    restored = TextPreprocessor.from_config(config)
    assert restored.get_config() == config
    np.testing.assert_array_equal(restored(texts), preprocessor(texts))


def test_encoder_embeddings(built):
    texts, _, preprocessor, encoder = built
    ids = preprocessor(texts[:8])
    ids[1] = ids[0]
    ids[7] = 0  # every token dropped: all padding
    embeddings = encoder.predict(ids, verbose=0)
    assert embeddings.shape == (8, 16)
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(embeddings[1], embeddings[0], atol=1e-6)
    assert not np.allclose(embeddings[2], embeddings[0], atol=1e-3)
    # The pooling formula itself is checked against the backbone below.


def test_backbone_encoder_matches_the_backbone_outputs():
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=LENGTH,
        dropout=0.0,
    )
    ids = np.random.default_rng(0).integers(1, 30, size=(4, LENGTH)).astype("int32")
    ids[:, 9:] = 0
    outputs = backbone.predict(
        {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": ids != 0},
        verbose=0,
    )
    mean = backbone_encoder(backbone, LENGTH, pooling="mean")
    expected = outputs["sequence_output"][:, :9].mean(axis=1)
    np.testing.assert_allclose(mean.predict(ids, verbose=0), expected, atol=1e-5)
    cls = backbone_encoder(backbone, LENGTH, pooling="cls")
    np.testing.assert_allclose(cls.predict(ids, verbose=0), outputs["pooled_output"], atol=1e-5)


def test_fit_of_a_classifier_with_token_dropout_lowers_the_loss(built):
    texts, labels, preprocessor, encoder = built
    ids = preprocessor(texts)
    inputs = keras.Input((LENGTH,), dtype="int32")
    dropped = TokenDropout(0.1, mask_token_id=preprocessor.mask_token_id, protected_ids=[1, 2])(
        inputs
    )
    classifier = keras.Model(inputs, keras.layers.Dense(3)(encoder(dropped)))
    classifier.compile(
        optimizer=keras.optimizers.Adam(5e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile="auto",
    )
    before = classifier.evaluate(ids, labels, verbose=0)
    classifier.fit(ids, labels, batch_size=24, epochs=15, verbose=0)
    after = classifier.evaluate(ids, labels, verbose=0)
    assert after < 0.5 * before


def test_encoder_keras_save_and_load(built, tmp_path):
    texts, _, preprocessor, encoder = built
    path = os.path.join(tmp_path, "encoder.keras")
    encoder.save(path)
    restored = keras.saving.load_model(path)
    ids = preprocessor(texts[:8])
    np.testing.assert_allclose(
        restored.predict(ids, verbose=0), encoder.predict(ids, verbose=0), atol=1e-6
    )


def test_preset_fails_fast_and_clearly_offline():
    outcome = {}

    def load():
        start = time.time()
        try:
            outcome["result"] = text_encoder(preset="bert_tiny_en_uncased", sequence_length=16)
        except Exception as error:  # recorded for the assertions below
            outcome["error"] = error
        outcome["seconds"] = time.time() - start

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive() or outcome.get("seconds", 0) > 10:
        pytest.skip("loading a preset hangs here instead of failing fast")
    if "result" in outcome:  # online, or a cached preset
        preprocessor, encoder = outcome["result"]
        assert to_numpy(encoder(preprocessor(["a test"]))).shape[0] == 1
        return
    assert isinstance(outcome["error"], RuntimeError)
    assert "bert_tiny_en_uncased" in str(outcome["error"])
    assert "text_encoder(texts=...)" in str(outcome["error"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Pass exactly one of `texts`"),
        ({"texts": ["a"], "preset": "bert_tiny_en_uncased"}, "Pass exactly one of `texts`"),
        ({"texts": ["a b"], "sequence_length": 2}, "`sequence_length` should be an integer >= 3"),
        ({"texts": ["a b"], "pooling": "max"}, "`pooling` should be one of"),
        ({"texts": ["a b"], "hidden_dim": 10, "num_heads": 4}, "`hidden_dim` should be divisible"),
        ({"texts": ["a b"], "dropout": 1.0}, "`dropout` should be in \\[0, 1\\)"),
        ({"texts": ["a b"], "vocabulary_size": 5}, "`vocabulary_size` should be larger"),
        ({"texts": [1, 2]}, "`texts` should be a string or a sequence of strings"),
        ({"texts": []}, "`texts` should be a non-empty sequence"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        text_encoder(**kwargs)


def test_vocabulary_must_hold_the_reserved_tokens():
    with pytest.raises(ValueError, match="`vocabulary` should contain the tokens"):
        TextPreprocessor(vocabulary=["[PAD]", "a", "b"])
    assert compute_vocabulary(["b a", "a"], vocabulary_size=50)[:2] == ["[PAD]", "[CLS]"]
