"""Nearest-neighbour search over embeddings.

`EmbeddingIndex` stores unit embeddings (from a `ContrastiveModel`, or given)
with their ids and labels, searches them by cosine similarity and saves them
to a folder. Its engines: `exact_top_k`, exact blocked search in `keras.ops`
on the active backend (the default), and `faiss_top_k`, faiss' flat index
(`pip install 'keras-mlcl[faiss]'`), with the same results. kNN evaluation and
retrieval metrics (`keras_mlcl.evaluation`) search with `exact_top_k`.
"""

from keras_mlcl.search.embedding_index import EmbeddingIndex
from keras_mlcl.search.exact import exact_top_k
from keras_mlcl.search.faiss_engine import faiss_top_k

__all__ = ["EmbeddingIndex", "exact_top_k", "faiss_top_k"]
