"""Vector index over chunk embeddings: FAISS (exact inner product), with a numpy fallback; files replaced atomically.

The index can always be rebuilt from the embeddings kept in the store.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from ssehub.errors import IndexNotBuilt

log = logging.getLogger(__name__)
INDEX_FILE = "chunks.faiss"
MANIFEST_FILE = "manifest.json"


class AnnIndex(Protocol):
    """Nearest-neighbour search over unit vectors keyed by chunk id."""

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors with their int64 ids."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k best matches per query row; id -1 pads."""
        ...

    def __len__(self) -> int: ...


class FaissIndex:
    """Exact inner-product search (cosine on unit vectors) with FAISS, one OpenMP thread."""

    def __init__(self, dim: int, index: object | None = None) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # two threads were measured several times slower on 2 cores
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors with their ids."""
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best k per query."""
        k = max(1, min(k, len(self)))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def write(self, path: Path) -> None:
        """Write the index to a file."""
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path) -> FaissIndex:
        """Read an index written by `write`."""
        import faiss

        index = faiss.read_index(str(path))
        return cls(index.d, index)


class NumpyIndex:
    """Brute-force inner product in numpy; used where faiss is not importable."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append vectors."""
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best k per query by a full scan."""
        k = max(1, min(k, len(self)))
        scores = queries @ self.vectors.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, top, axis=1), self.ids[top]

    def __len__(self) -> int:
        return len(self.ids)

    def write(self, path: Path) -> None:
        """Write ids and vectors as .npz (np.savez adds the suffix, so write through a handle)."""
        with open(path, "wb") as f:
            np.savez(f, ids=self.ids, vectors=self.vectors)

    @classmethod
    def read(cls, path: Path) -> NumpyIndex:
        """Read what `write` wrote."""
        data = np.load(path)
        index = cls(data["vectors"].shape[1])
        index.ids, index.vectors = data["ids"], data["vectors"]
        return index


def new_index(dim: int) -> FaissIndex | NumpyIndex:
    """A FAISS index, or the numpy one when faiss is missing."""
    try:
        return FaissIndex(dim)
    except ImportError:
        log.warning("faiss is not importable; using brute-force numpy search")
        return NumpyIndex(dim)


def save_index(index: FaissIndex | NumpyIndex, folder: Path, model: str) -> None:
    """Write index and manifest to temporary files, then rename each into place (readers never see half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{INDEX_FILE}.tmp"
    index.write(tmp)
    os.replace(tmp, folder / INDEX_FILE)
    manifest = {
        "model": model, "dim": index.dim, "count": len(index), "kind": type(index).__name__, "built_at": time.time(),
    }
    tmp_manifest = folder / f".{MANIFEST_FILE}.tmp"
    tmp_manifest.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(tmp_manifest, folder / MANIFEST_FILE)


def read_manifest(folder: Path) -> dict:
    """The manifest of a built index, or IndexNotBuilt."""
    path = folder / MANIFEST_FILE
    if not path.exists() or not (folder / INDEX_FILE).exists():
        raise IndexNotBuilt(f"no index at {folder}: run `ssehub index` first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_index(folder: Path) -> tuple[FaissIndex | NumpyIndex, dict]:
    """The index and its manifest."""
    manifest = read_manifest(folder)
    path = folder / INDEX_FILE
    index = NumpyIndex.read(path) if manifest.get("kind") == "NumpyIndex" else FaissIndex.read(path)
    return index, manifest
