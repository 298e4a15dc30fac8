"""Vector index over chunk embeddings: FAISS, exact below a size threshold and HNSW above; a numpy fallback; files replaced atomically.

The index can always be rebuilt from the embeddings kept in the store. Which kind is built follows the number of
vectors (`choose_kind`): an exact flat scan costs ~6 ms a query at 100k vectors and ~60 ms at 1M on one core
(memory-bound), while HNSW answers in well under a millisecond with recall@10 above 0.95 (tests/test_ann.py
checks it on real MiniLM vectors). The manifest records the kind and its parameters; `load_index` reads any kind.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ssehub.errors import IndexNotBuilt
from ssehub.pages import populate, read_ahead, read_only_mapping

log = logging.getLogger(__name__)
INDEX_FILE = "chunks.faiss"
MANIFEST_FILE = "manifest.json"
Kind = Literal["flat", "hnsw"]
FLAT_MAX = 50_000  # exact search up to here: ~3 ms a query on one core, and nothing to tune or lose
HNSW_M = 32  # graph degree: on real MiniLM vectors (50k) HNSW32 kept recall@10 at 0.989 where IVF-PQ capped at 0.72
HNSW_EF_CONSTRUCTION = 40  # faiss's default; higher buys little recall for a slower build on one core
PARALLEL_ADD_MIN = 10_000  # vectors in one HNSW add before it uses every core
HNSW_EF_SEARCH = 128  # candidates kept per query; faiss uses max(efSearch, k), so the search pool of 1000 gets more


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


def choose_kind(count: int) -> Kind:
    """The index kind for `count` vectors: exact up to FLAT_MAX, HNSW above."""
    return "flat" if count <= FLAT_MAX else "hnsw"


class FaissIndex:
    """Inner-product search (cosine on unit vectors) with FAISS, ids are chunk ids, one OpenMP thread.

    `kind="flat"` is exact (IndexFlatIP); `kind="hnsw"` is IndexHNSWFlat with inner product. Both sit in an
    IndexIDMap2, so `add` takes the chunk ids and `search` returns them.
    """

    def __init__(self, dim: int, index: Any | None = None, kind: Kind = "flat", ef_search: int = HNSW_EF_SEARCH) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # two threads were measured several times slower on 2 cores
        self.dim = dim
        self.mapped_from: Path | None = None  # the file whose vectors are mapped (`read(..., mmap=True)`), else None
        if index is None:
            if kind == "hnsw":
                inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            else:
                inner = faiss.IndexFlatIP(dim)
            index = faiss.IndexIDMap2(inner)
        self.index = index
        self._set_threads = faiss.omp_set_num_threads
        self._inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        self.kind: Kind = "hnsw" if isinstance(self._inner, faiss.IndexHNSW) else "flat"
        if self.kind == "hnsw":
            self._inner.hnsw.efSearch = ef_search

    def params(self) -> dict[str, Any]:
        """What the manifest records of this index: its kind and tuning parameters."""
        if self.kind == "hnsw":
            hnsw = self._inner.hnsw
            return {"kind": "hnsw", "M": HNSW_M, "ef_construction": int(hnsw.efConstruction), "ef_search": int(hnsw.efSearch)}
        return {"kind": "flat"}

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors with their ids; a large HNSW batch is inserted on every core, then search goes back to one."""
        import faiss

        vectors, ids = np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        if self.kind != "hnsw" or len(ids) < PARALLEL_ADD_MIN:
            self.index.add_with_ids(vectors, ids)
            return
        # Graph insertion parallelises (unlike a single query, which two threads slow down on 2 cores): 30k vectors
        # took 64 s with both cores against 84 s with one, on a machine loaded by other work. Not for serving processes.
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            self.index.add_with_ids(vectors, ids)
        finally:
            faiss.omp_set_num_threads(1)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best k per query, on one OpenMP thread."""
        # omp_set_num_threads holds only for the thread that calls it, and searches run in request and helper threads:
        # without this, faiss searched there with two threads that spun after each search (10k flat: 17.0 -> 0.89 ms
        # of CPU per search from a helper thread, measured with `ssehub serve`'s OMP_NUM_THREADS=1 fix).
        self._set_threads(1)
        k = max(1, min(k, len(self)))
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _vectors(self) -> tuple[int, int] | None:
        """Address and length in bytes of the stored vectors (the flat codes, inside the HNSW for that kind)."""
        import faiss

        storage = faiss.downcast_index(self._inner.storage) if self.kind == "hnsw" else self._inner
        if not isinstance(storage, faiss.IndexFlat) or storage.ntotal == 0:
            return None
        vectors = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d)  # a view, not a copy
        return int(vectors.ctypes.data), int(vectors.nbytes)

    def page_in(self, stop: threading.Event | None = None, read: bool = True) -> dict[str, float] | None:
        """Bring a mapped index (its vectors, and the HNSW neighbour lists faiss also serves from the mapping) into
        memory ahead of the searches; None when nothing is mapped.

        A search touches thousands of vectors scattered over the file (a pool of 1000 explores ~10k nodes): on a fresh
        1M server its first searches faulted the pages in one by one (ssehub/pages.py has the figures). Reading the file
        in large blocks, then mapping its pages, costs once what those searches paid again and again. Resident memory
        ends where ~60 cold searches took it anyway (faults map whole folios): 1.7 GB at 1M. Meant for a background
        thread (`stop` ends it early); searches meanwhile run as before. `read=False` maps the pages without reading
        the file ahead first, for a file just written (in the page cache already), where reading it again only costs CPU.
        """
        vectors = self._vectors() if self.mapped_from is not None else None
        if vectors is None or self.mapped_from is None:
            return None
        mapping = read_only_mapping(vectors[0], self.mapped_from)  # the whole file: graph, vectors, ids
        region = (mapping[0], mapping[1] - mapping[0]) if mapping is not None else vectors
        t0, cpu0 = time.perf_counter(), time.process_time()
        read = read_ahead(self.mapped_from, stop) if read else 0
        mapped = populate(*region, stop=stop)
        out = {"read_mb": round(read / 2**20), "mapped_mb": round(mapped / 2**20),
               "seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - cpu0, 2)}
        log.info("index vectors paged in: %s", out)
        return out

    def write(self, path: Path) -> None:
        """Write the index to a file."""
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path, ef_search: int = HNSW_EF_SEARCH, mmap: bool = False) -> FaissIndex:
        """Read an index written by `write` (any kind); `mmap` maps its vectors from the file instead of reading them.

        Mapped (faiss's IO_FLAG_MMAP_IFC), a 1M-vector HNSW loads its graph only (~0.1 s at 100k against ~1 s), the
        vectors are paged in by the searches that touch them and shared by every process serving the file. Such an
        index is for searching only: `ssehub index` writes a new file and renames it into place, so a mapped one is
        never changed under its reader.
        """
        import faiss

        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        out = cls(index.d, index, ef_search=ef_search)
        out.mapped_from = path if mmap else None
        return out


class NumpyIndex:
    """Brute-force inner product in numpy; used where faiss is not importable."""

    kind = "numpy"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        """What the manifest records of this index."""
        return {"kind": "numpy"}

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append vectors."""
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def page_in(self, stop: threading.Event | None = None, read: bool = True) -> None:
        """Nothing to page in: the vectors are read into memory."""

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


def new_index(dim: int, count: int = 0, kind: Kind | None = None) -> FaissIndex | NumpyIndex:
    """An index for about `count` vectors (kind chosen by size unless given), or the numpy one when faiss is missing."""
    try:
        return FaissIndex(dim, kind=kind or choose_kind(count))
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
        "model": model, "dim": index.dim, "count": len(index), "kind": type(index).__name__, "index": index.params(),
        "built_at": time.time(),
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


def load_index(folder: Path, mmap: bool = False) -> tuple[FaissIndex | NumpyIndex, dict]:
    """The index and its manifest; the HNSW search depth comes from the manifest (older manifests have none).

    `mmap`: map the vectors from the file (`FaissIndex.read`), for serving."""
    manifest = read_manifest(folder)
    path = folder / INDEX_FILE
    if manifest.get("kind") == "NumpyIndex":
        return NumpyIndex.read(path), manifest
    ef_search = int((manifest.get("index") or {}).get("ef_search", HNSW_EF_SEARCH))
    if mmap:
        _read_all_but_vectors(path, int(manifest.get("count") or 0), int(manifest.get("dim") or 0))
    return FaissIndex.read(path, ef_search=ef_search, mmap=mmap), manifest


def _read_all_but_vectors(path: Path, count: int, dim: int) -> None:
    """Read ahead, in large blocks, the parts of an index file that a mapped read goes through: all but the vectors.

    faiss's mapped reader reads the graph and the id map through the mapping, one page fault at a time: with the
    1M file out of the page cache that took 8.5-9.4 s (most of `ssehub serve`'s readiness), against 0.7-1.0 s after
    reading those 267 MB ahead. An IndexIDMap2 file is [headers, graph][vectors][ids], the vectors count x dim
    float32 and the ids count int64; were the layout other, this would only read the wrong bytes.
    """
    vectors, ids = count * dim * 4, count * 8
    head = path.stat().st_size - vectors - ids
    if head < 0 or vectors == 0:
        return
    read_ahead(path, start=0, length=head)
    read_ahead(path, start=head + vectors)
