"""Recall@10 of the project's vector index at a large size on vectors with real structure.

The synthetic serving corpus (`bench/perf_corpus.py`) draws its vectors as noise around 192 topic embeddings: within
a topic thousands of points are nearly equidistant, which is the worst case for a graph index (recall@10 0.81 at 1M).
Here each vector is a mix of two real MiniLM passage embeddings (SciFact, from the `bench.retrieval` build) plus a
little noise, and each query is a real passage embedding plus noise, so the nearest neighbours mean something, as
they do in a real library. The index is `ssehub.ann.new_index` (the kind `ssehub index` picks for that size).

    .venv/bin/python -m bench.recall_real --size 1m        # ~3 min of HNSW build on two cores
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from bench.__main__ import RESULTS, size_of
from bench.retrieval import CACHE
from ssehub.ann import new_index

NOISE = 0.02  # per-dimension noise of vectors and queries (cosine to their source ~0.9999 before normalising)


def real_embeddings(db: Path) -> np.ndarray:
    """The stored chunk embeddings of a built data folder."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT embedding FROM chunks WHERE embedding IS NOT NULL").fetchall()
    return np.vstack([np.frombuffer(b, dtype=np.float32) for (b,) in rows])


def mixtures(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors, each a weighted mix (0.5-1.0 of the first) of two real embeddings plus noise."""
    i, j = rng.integers(0, len(real), n), rng.integers(0, len(real), n)
    a = rng.uniform(0.5, 1.0, n).astype(np.float32)[:, None]
    x = a * real[i] + (1 - a) * real[j] + rng.standard_normal((n, real.shape[1])).astype(np.float32) * NOISE
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run(db: Path, size: int, queries: int = 200) -> dict:
    """Build the index over `size` mixed vectors and compare its top 10 with an exact scan."""
    rng = np.random.default_rng(0)
    real = real_embeddings(db)
    x = mixtures(real, size, rng)
    t0 = time.perf_counter()
    index = new_index(x.shape[1], size)
    index.add(np.arange(size), x)
    build = time.perf_counter() - t0
    q = real[rng.integers(0, len(real), queries)]
    q = q + rng.standard_normal(q.shape).astype(np.float32) * NOISE
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    _, truth = exact.search(q, 10)
    _, got = index.search(q, 10)
    recall = float(np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)]))
    return {"size": size, "real_embeddings": len(real), "index": index.params(), "build_s": round(build, 1),
            "queries": queries, "recall_at_10": round(recall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m", help="vectors: 200k, 1m, ...")
    parser.add_argument("--db", type=Path, help="a built data folder's ssehub.db (default: the newest SciFact build)")
    args = parser.parse_args()
    db = args.db or max(CACHE.glob("scifact-*/ssehub.db"), key=lambda p: p.stat().st_mtime, default=None)
    if db is None or not db.is_file():
        sys.exit(f"no SciFact build under {CACHE}: run `.venv/bin/python -m bench.retrieval` first, or pass --db")
    result = run(db, size_of(args.size))
    print(f"{result['size']} vectors mixed from {result['real_embeddings']} real embeddings: {result['index']}, "
          f"built in {result['build_s']} s, recall@10 {result['recall_at_10']} ({result['queries']} queries)")
    (RESULTS / "recall_real.json").write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
