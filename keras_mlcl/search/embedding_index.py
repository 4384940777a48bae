"""EmbeddingIndex: stored embeddings, with ids and labels, searched by cosine similarity."""

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_mlcl.search.exact import check_rows
from keras_mlcl.search.exact import exact_top_k
from keras_mlcl.search.exact import unit_rows
from keras_mlcl.search.faiss_engine import faiss_top_k
from keras_mlcl.search.faiss_engine import import_faiss
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

ENGINES = ("exact", "faiss")
FORMAT = "keras-mlcl-embedding-index"
FORMAT_VERSION = 1
ARRAYS_FILE = "index.npz"
METADATA_FILE = "index.json"


def _values(name: str, values: ArrayLike, size: int) -> np.ndarray:
    """`values` as a `(size,)` array of ints or strings, or raises."""
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != size or array.dtype.kind not in "iuUO":
        raise ValueError(
            f"`{name}` should be a 1-D array of {size} ints or strings. Received shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    if array.dtype.kind == "O":
        if not all(isinstance(v, str) for v in array):
            raise ValueError(f"`{name}` should hold ints or strings. Received other objects")
        array = array.astype("str")
    return array.astype("int64") if array.dtype.kind in "iu" else array


def _append(name: str, stored: np.ndarray, new: np.ndarray) -> np.ndarray:
    """`stored` followed by `new`, or raises when one holds ints and the other strings."""
    if stored.size and (stored.dtype.kind == "U") != (new.dtype.kind == "U"):
        raise ValueError(
            f"`{name}` should be of the kind already stored ({stored.dtype}). Received {new.dtype}"
        )
    return np.concatenate([stored, new]) if stored.size else new


class EmbeddingIndex:
    """Embeddings of stored items, searched by cosine similarity.

    `add` embeds inputs (with `model`, or takes embeddings as they are),
    scales them to unit rows and stores them with their ids and optional
    labels; `search` returns, for each query, the ids of the `k` stored rows
    of largest cosine similarity, nearest first (equal scores: the row added
    first). `save` writes the index to a folder and `load` reads it back.

    Args:
        model: a keras_mlcl `ContrastiveModel`, or None (the default): `add`
            and `search` then take embeddings.
        head: a head's name: its output (`model.predict(x)[head]`) is the
            embedding; None (the default): the encoder embedding
            (`model.embed(x)`).
        engine: `"exact"` (the default: `exact_top_k`, `keras.ops` on the
            active backend) or `"faiss"` (faiss' flat index, same results).
        batch_size: positive int, the batch size of the model's predictions.
            Defaults to 256.

    Example:

    >>> index = EmbeddingIndex().add(np.eye(3), ids=["a", "b", "c"])
    >>> ids, scores = index.search(np.array([[0.9, 0.1, 0.0]]), k=2)
    >>> ids.tolist(), [round(float(s), 3) for s in scores[0]]
    ([['a', 'b']], [0.994, 0.11])
    """

    def __init__(
        self,
        model: Any = None,
        head: str | None = None,
        engine: str = "exact",
        batch_size: int = 256,
    ) -> None:
        self.engine = check_choice("engine", engine, ENGINES)
        if engine == "faiss":
            import_faiss()
        self.batch_size = check_positive_int("batch_size", batch_size)
        if model is not None and head is not None and head not in model.head_names:
            raise ValueError(
                f"`head` should be one of the model's heads {model.head_names} or None (the "
                f"encoder embedding). Received: `head`={head!r}"
            )
        self.model = model
        self.head = head
        self._embeddings = np.zeros((0, 0), dtype="float32")
        self._ids = np.zeros((0,), dtype="int64")
        self._labels: dict[str, np.ndarray] = {}

    @property
    def embeddings(self) -> np.ndarray:
        """The stored `(N, D)` float32 unit rows, in the order added."""
        return self._embeddings

    @property
    def ids(self) -> np.ndarray:
        """The stored rows' `(N,)` ids (int64 or strings)."""
        return self._ids

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """The stored rows' labels `{level: (N,) array}`, or `{}`."""
        return dict(self._labels)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def _embed(self, name: str, x: Any) -> np.ndarray:
        """The unit embeddings of `x`: the model's output, or `x` itself without a model."""
        if self.model is None:
            embeddings = x
        elif self.head is None:
            embeddings = self.model.embed(x, batch_size=self.batch_size)
        else:
            embeddings = self.model.predict(x, batch_size=self.batch_size, verbose=0)[self.head]
        embeddings = check_rows(name, embeddings)
        if len(self) and embeddings.shape[1] != self._embeddings.shape[1]:
            raise ValueError(
                f"`{name}` should have embeddings of width {self._embeddings.shape[1]}, the "
                f"index's. Received width {embeddings.shape[1]}"
            )
        return unit_rows(embeddings)

    def add(
        self,
        x: Any,
        ids: ArrayLike | None = None,
        labels: Mapping[str, ArrayLike] | None = None,
    ) -> "EmbeddingIndex":
        """Embeds `x` and stores its unit rows, with their ids and labels.

        Args:
            x: the model's inputs, or `(n, D)` embeddings without a model.
            ids: `(n,)` ints or strings, unique over the index. Defaults to
                None: the rows' numbers in the order added (continuing
                across calls).
            labels: optional `{level: (n,) ints or strings}`, given on every
                call or on none, with the same levels.

        Returns:
            The index itself.
        """
        embeddings = self._embed("x", x)
        size = embeddings.shape[0]
        if ids is None:
            ids = np.arange(len(self), len(self) + size, dtype="int64")
        new_ids = _append("ids", self._ids, _values("ids", ids, size))
        unique, counts = np.unique(new_ids, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(
                f"`ids` should be unique. Received duplicates {unique[counts > 1][:5].tolist()}"
            )
        levels = list(self._labels) if len(self) else None
        given = None if labels is None else list(labels)
        if len(self) and given != levels and not (given is None and not levels):
            raise ValueError(
                f"`labels` should have the levels already stored ({levels or 'none'}). "
                f"Received: {given}"
            )
        new_labels = {
            level: _append(
                f"labels[{level!r}]",
                self._labels.get(level, np.zeros(0)),
                _values(f"labels[{level!r}]", values, size),
            )
            for level, values in (labels or {}).items()
        }
        stored = self._embeddings if len(self) else np.zeros((0, embeddings.shape[1]), "float32")
        self._embeddings = np.concatenate([stored, embeddings])
        self._ids = new_ids
        self._labels = new_labels
        return self

    def search_rows(self, x: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The row numbers and cosine similarities of each query's `k` nearest rows.

        Args:
            x: the model's inputs, or `(M, D)` embeddings without a model.
            k: positive int, at most `len(self)`. Defaults to 10.

        Returns:
            A tuple `(rows, scores)`: `(M, k)` int64 rows and `(M, k)` float32
            cosine similarities, nearest first.
        """
        k = check_positive_int("k", k)
        if k > len(self):
            raise ValueError(
                f"`k` should be at most the index's size {len(self)}. Received: `k`={k}"
            )
        queries = self._embed("x", x)
        search = exact_top_k if self.engine == "exact" else faiss_top_k
        return search(queries, self._embeddings, k)

    def search(self, x: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ids and cosine similarities of each query's `k` nearest rows.

        Args:
            x: the model's inputs, or `(M, D)` embeddings without a model.
            k: positive int, at most `len(self)`. Defaults to 10.

        Returns:
            A tuple `(ids, scores)`: `(M, k)` ids and `(M, k)` float32 cosine
            similarities, nearest first.
        """
        rows, scores = self.search_rows(x, k)
        return self._ids[rows], scores

    def save(self, directory: str | os.PathLike[str], overwrite: bool = False) -> str:
        """Writes the index to a folder: `index.npz` (arrays) and `index.json`.

        The files are written into a temporary sibling folder, then renamed
        into place. An existing folder is refused unless it is empty, or it
        holds an index saved by keras-mlcl and `overwrite` is True.

        Args:
            directory: the folder.
            overwrite: replace an index saved there before. Defaults to False.

        Returns:
            The folder's path.
        """
        directory = os.path.abspath(os.fspath(directory))
        replace = os.path.isdir(directory) and bool(os.listdir(directory))
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise ValueError(f"`directory` should be a folder. Received the file {directory!r}")
        if replace and not (overwrite and _is_saved_index(directory)):
            reason = (
                "pass `overwrite=True` to replace it"
                if _is_saved_index(directory)
                else ("it is not an index saved by keras-mlcl")
            )
            raise ValueError(f"`directory` {directory!r} exists and is not empty: {reason}.")
        parent = os.path.dirname(directory)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.", dir=parent)
        try:
            levels = list(self._labels)
            arrays: dict[str, Any] = {"embeddings": self._embeddings, "ids": self._ids}
            arrays.update({f"labels_{i}": self._labels[level] for i, level in enumerate(levels)})
            np.savez(os.path.join(staging, ARRAYS_FILE), **arrays)
            metadata = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "head": self.head,
                "engine": self.engine,
                "size": len(self),
                "dim": int(self._embeddings.shape[1]),
                "levels": levels,
            }
            with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as f:
                json.dump(metadata, f, indent=2)
            if replace:
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.old.", dir=parent)
                os.replace(directory, old)
                os.replace(staging, directory)
                shutil.rmtree(old)
            else:
                if os.path.isdir(directory):
                    os.rmdir(directory)
                os.replace(staging, directory)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str], model: Any = None) -> "EmbeddingIndex":
        """Reads an index written by `save`.

        Args:
            directory: the folder.
            model: the model that `add` and `search` embed with, or None
                (the default: they take embeddings).

        Returns:
            An `EmbeddingIndex`.
        """
        directory = os.fspath(directory)
        metadata = _metadata(directory)
        if metadata is None or not os.path.isfile(os.path.join(directory, ARRAYS_FILE)):
            raise ValueError(
                f"`directory` should be an index saved by `EmbeddingIndex.save`. Received "
                f"{directory!r}, without a valid {METADATA_FILE} and {ARRAYS_FILE}"
            )
        index = cls(model=model, head=metadata["head"], engine=metadata["engine"])
        with np.load(os.path.join(directory, ARRAYS_FILE), allow_pickle=False) as arrays:
            index._embeddings = arrays["embeddings"]
            index._ids = arrays["ids"]
            index._labels = {
                level: arrays[f"labels_{i}"] for i, level in enumerate(metadata["levels"])
            }
        shape = (metadata["size"], metadata["dim"])
        if index._embeddings.shape != shape or index._ids.shape != shape[:1]:
            raise ValueError(
                f"`directory` {directory!r} holds an index whose {ARRAYS_FILE} does not match "
                f"its {METADATA_FILE} (size {shape[0]}, width {shape[1]})"
            )
        return index


def _metadata(directory: str) -> dict[str, Any] | None:
    """The parsed `index.json` of a folder saved by `EmbeddingIndex.save`, else None."""
    try:
        with open(os.path.join(directory, METADATA_FILE), encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return None
    keys = {"format", "head", "engine", "size", "dim", "levels"}
    if not isinstance(metadata, dict) or not keys <= set(metadata):
        return None
    if metadata["format"] != FORMAT:
        return None
    return metadata


def _is_saved_index(directory: str) -> bool:
    """Whether `directory` holds an index saved by `EmbeddingIndex.save` and nothing else."""
    entries = set(os.listdir(directory))
    return entries <= {ARRAYS_FILE, METADATA_FILE} and _metadata(directory) is not None
