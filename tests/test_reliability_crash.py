"""Crash safety of `ssehub index`: SIGKILL at random points, then a full run leaves store and FAISS index consistent.

The same for `ssehub harvest` is tests/test_harvest_resume.py (killed mid-crawl, resumed, nothing lost or doubled,
the dead run marked `interrupted`). The consistency check here is shared with the serving and load tests.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ssehub.ann import load_index
from ssehub.embed import HashingEmbedder
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.store import Store

pytestmark = pytest.mark.timeout(180)
log = logging.getLogger(__name__)
WORDS = ["cooperative", "members", "share", "ownership", "enterprise", "decide", "together", "surplus", "women", "credit", "housing", "energy", "solidarity", "finance", "market", "training", "network", "village", "income", "climate", "water", "health", "school"]
FIRST = 60  # indexed before the faults
DOCS = 150  # added, then indexed by runs killed at random points
KILLS = 4
OVERSHOOT = 25  # documents a kill may land past its target (10-15 seen)


def write_jsonl(path: Path, count: int, seed: int = 1, prefix: str = "d") -> Path:
    """`count` import lines of ~400 words each (two chunks of the hashing embedder each)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(400))
            f.write(json.dumps({"id": f"{prefix}{i}", "title": f"Document {prefix}{i}", "text": text, "lang": "en"}) + "\n")
    return path


def cli(data: Path, *args: str) -> list[str]:
    """An `ssehub` command line on a data folder."""
    return [sys.executable, "-m", "ssehub", "--data", str(data), *args]


def hashing_env() -> dict[str, str]:
    """The environment of a subprocess that indexes with the hashing embedder."""
    return {**os.environ, "SSEHUB_MODEL_PATH": "hashing", "PYTHONUNBUFFERED": "1"}


def faiss_ids(data: Path) -> np.ndarray:
    """Every chunk id the FAISS file holds (with repeats, if any)."""
    index, _ = load_index(data / "index")
    if hasattr(index, "ids"):
        return np.asarray(index.ids)
    import faiss

    return faiss.vector_to_array(index.index.id_map)


def check_consistent(data: Path, expected_documents: int | None = None) -> dict[str, int]:
    """Assert store and index agree; returns the counts. What `ssehub index` must leave after any crash and a re-run."""
    conn = sqlite3.connect(data / "ssehub.db")
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]
        active_chunks = {r[0] for r in conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.status = 'active' AND c.embedding IS NOT NULL")}
        all_chunks = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        fts = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
        doubled_seq = conn.execute("SELECT document_id, seq FROM chunks GROUP BY document_id, seq HAVING COUNT(*) > 1").fetchall()
        doubled_docs = conn.execute(
            "SELECT source_id, json_extract(extra, '$.import_id') k FROM documents WHERE k IS NOT NULL "
            "GROUP BY source_id, k HAVING COUNT(*) > 1").fetchall()
        documents, indexed = one("SELECT COUNT(*) FROM documents WHERE status = 'active'"), one(
            "SELECT COUNT(*) FROM documents WHERE status = 'active' AND indexed_hash = hash")
        unchunked = one("SELECT COUNT(*) FROM documents d WHERE status = 'active' AND NOT EXISTS "
                        "(SELECT 1 FROM chunks c WHERE c.document_id = d.id)")
    finally:
        conn.close()
    ids = faiss_ids(data)
    in_index = set(ids.tolist())
    assert len(ids) == len(in_index), "a chunk is in the FAISS index more than once"
    assert in_index <= all_chunks, f"{len(in_index - all_chunks)} FAISS vectors point at chunks the store does not have"
    assert fts == all_chunks, "the keyword index and the chunks disagree"
    assert not doubled_seq and not doubled_docs, (doubled_seq, doubled_docs)
    assert indexed == documents and unchunked == 0, (indexed, documents, unchunked)
    if expected_documents is not None:
        assert documents == expected_documents
    assert active_chunks <= in_index, f"{len(active_chunks - in_index)} stored chunks of active documents are not in FAISS"
    return {"documents": documents, "chunks": len(all_chunks), "vectors": len(ids)}


def indexed_so_far(data: Path) -> int:
    conn = sqlite3.connect(f"file:{data / 'ssehub.db'}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM documents WHERE indexed_hash = hash").fetchone()[0]
    finally:
        conn.close()


def kill_at_random_point(data: Path, env: dict[str, str], rng: random.Random, target: int) -> tuple[int, int]:
    """Start `ssehub index`, SIGKILL it once `target` documents are indexed (plus a random few ms, so the kill lands
    anywhere in the work, inside transactions too); returns (exit code, documents indexed when it died)."""
    proc = subprocess.Popen(cli(data, "index"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while proc.poll() is None and indexed_so_far(data) < target and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.05))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode, indexed_so_far(data)


def test_index_killed_at_random_points_then_completed_is_consistent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = hashing_env()
    subprocess.run(cli(data, "import", str(write_jsonl(tmp_path / "docs.jsonl", FIRST)), "--source", "lib"),
                   env=env, check=True, capture_output=True)
    # A first complete index, so the kills also interrupt runs that would replace a live FAISS file.
    subprocess.run(cli(data, "index"), env=env, check=True, capture_output=True)
    subprocess.run(cli(data, "import", str(write_jsonl(tmp_path / "more.jsonl", DOCS, seed=2, prefix="m")), "--source", "lib"),
                   env=env, check=True, capture_output=True)
    seed = int(os.environ.get("SSEHUB_TEST_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    progress = []
    for k in range(KILLS):
        done = indexed_so_far(data)
        # Each kill aims within its share of the work left, so that the later ones still land mid-run: a kill lands
        # some documents past its target (polling, the random delay), and a first target drawn from the whole run
        # once left the last kills nothing to interrupt (kills at 193, 204, 210 of 210 documents, then a whole run).
        share = max(1, (FIRST + DOCS - OVERSHOOT - done) // (KILLS - k))
        progress.append(kill_at_random_point(data, env, rng, done + rng.randint(1, share)))
    killed_mid_run = [n for rc, n in progress if rc == -signal.SIGKILL and FIRST < n < FIRST + DOCS]
    assert len(killed_mid_run) >= KILLS - 1, f"kills did not land inside the run (seed {seed}): {progress}"
    done = subprocess.run(cli(data, "index"), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts = check_consistent(data, expected_documents=FIRST + DOCS)
    print(f"seed {seed}: kills (exit code, documents indexed) {progress}; final {counts}")
    # Running again changes nothing: the work was complete.
    again = subprocess.run(cli(data, "index"), env=env, capture_output=True, text=True, timeout=60)
    assert "documents 0" in again.stdout and "embedded 0" in again.stdout
    assert check_consistent(data) == counts


def test_index_killed_between_last_commit_and_faiss_write_is_repaired_by_the_next_run(tmp_path: Path, monkeypatch) -> None:
    """The narrowest window of the random test, made certain: the store is complete, the FAISS file is stale."""
    from indexer import pipeline

    settings = Settings(data_dir=tmp_path, model_path="hashing")
    store = Store(settings.store_path)
    for i in range(5):
        store.upsert_document(Document(id=f"x{i}", source_id="t", text=f"cooperative text number {i} " * 20, title=f"t{i}"))
    pipeline.index(settings, embedder=HashingEmbedder())
    store.upsert_document(Document(id="late", source_id="t", text="a brand new document about housing " * 20, title="late"))
    store.close()

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt("SIGKILL stand-in: every document is committed, the FAISS file is not written")

    monkeypatch.setattr(pipeline, "build_ann", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.index(settings, embedder=HashingEmbedder())
    monkeypatch.undo()
    pipeline.index(settings, embedder=HashingEmbedder())
    check_consistent(tmp_path, expected_documents=6)
