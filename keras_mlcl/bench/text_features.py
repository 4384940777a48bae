"""TF-IDF text features for the quality bench's text datasets."""

import dataclasses
from typing import Any

from keras_mlcl.data import LabeledDataset
from keras_mlcl.utils.validation import check_positive_int

TEXT_FEATURE_DIM = 256


def tfidf_features(
    dataset: LabeledDataset, dim: int = TEXT_FEATURE_DIM, seed: int = 0
) -> LabeledDataset:
    """Text inputs turned into TF-IDF vectors reduced to `dim` dimensions by a truncated SVD.

    The vectoriser (word unigrams and bigrams, sublinear term frequency) and the SVD are fitted
    on the training texts only (no labels); the test and validation texts are transformed.

    Args:
        dataset: a `LabeledDataset` whose inputs are strings.
        dim: the feature size. Defaults to 256.
        seed: seed of the randomized SVD. Defaults to 0.

    Returns:
        A new `LabeledDataset` whose inputs are float32 arrays `(N, dim)` (fewer columns when
        the vocabulary is smaller than `dim`).

    Example:

    >>> from keras_mlcl.data import LabeledDataset
    >>> data = LabeledDataset(x=np.array(["a cat", "a dog", "stocks fell", "bonds fell"]),
    ...                       labels={"label": [0, 0, 1, 1]})
    >>> tfidf_features(data, dim=2).x.shape
    (4, 2)
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    dim = check_positive_int("dim", dim)
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    counts = vectorizer.fit_transform([str(text) for text in dataset.x])
    svd = TruncatedSVD(n_components=max(1, min(dim, counts.shape[1] - 1)), random_state=seed)
    svd.fit(counts)

    def transform(texts: Any) -> Any:
        if texts is None:
            return None
        return svd.transform(vectorizer.transform([str(t) for t in texts])).astype("float32")

    return dataclasses.replace(
        dataset,
        x=transform(dataset.x),
        x_test=transform(dataset.x_test),
        x_val=transform(dataset.x_val),
    )
