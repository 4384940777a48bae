"""The `search` endpoints of a TF SavedModel: exact top-k of a stored index, in the graph.

TensorFlow code: it runs in a TensorFlow-backend process (in-process on the TensorFlow
backend, else in the export's TensorFlow child process, `keras_mlcl.models.export`). The
stored rows and ids (ints or strings) are `tf.Variable`s of the SavedModel.
"""

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

# `{output name: (unit rows (N, D) float32, ids (N,) int64 or str)}`, as
# `keras_mlcl.models.export.check_search_indexes` returns them.
SearchIndexes = Mapping[str, tuple[np.ndarray, np.ndarray]]


def search_endpoint_name(output: str) -> str:
    """`search` for the encoder's `embedding`, `search_<head>` for a head.

    Example:

    >>> search_endpoint_name("embedding"), search_endpoint_name("fine")
    ('search', 'search_fine')
    """
    return "search" if output == "embedding" else f"search_{output}"


def add_search_endpoints(
    archive: Any,
    outputs_of: Callable[..., Any],
    input_signature: Sequence[Any],
    indexes: SearchIndexes,
    search_k: int,
) -> None:
    """Adds a search endpoint per index to a `keras.export.ExportArchive`; TensorFlow only.

    Args:
        archive: the `ExportArchive`.
        outputs_of: the served function: the endpoint's inputs to the dict of
            model outputs.
        input_signature: the endpoint's input signature (that of `serve`).
        indexes: checked indexes (`check_search_indexes`).
        search_k: the most results a search returns.
    """
    for output, (embeddings, ids) in indexes.items():
        search = _search_function(outputs_of, output, embeddings, ids, min(search_k, len(ids)))
        archive.add_endpoint(search_endpoint_name(output), search, input_signature=input_signature)


def _search_function(
    outputs_of: Callable[..., Any], output: str, embeddings: np.ndarray, ids: np.ndarray, k: int
) -> Callable[..., dict[str, Any]]:
    """The exact top-`k` search of one index, its rows and ids held in TF variables."""
    import tensorflow as tf

    stored = tf.Variable(embeddings, trainable=False, name=f"{output}_search_embeddings")
    stored_ids = tf.Variable(ids, trainable=False, name=f"{output}_search_ids")

    def search(*inputs: Any) -> dict[str, Any]:
        queries = tf.math.l2_normalize(tf.cast(outputs_of(*inputs)[output], tf.float32), -1)
        scores, rows = tf.math.top_k(tf.matmul(queries, stored, transpose_b=True), k)
        return {
            "ids": tf.gather(stored_ids, rows),
            "scores": scores,
            "rows": tf.cast(rows, "int64"),
        }

    return search
