"""Incremental indexing with the hashing embedder: reuse by chunk hash, removals, rebuilds, the FAISS file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.pipeline import index
from ssehub.ann import INDEX_FILE, load_index, read_manifest
from ssehub.embed import HashingEmbedder
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.store import Store
from ssehub.tagger import Tagger

SENTENCES = [f"Sentence {i} is about cooperative number {i} and its {i * 3} members in the village." for i in range(40)]


@pytest.fixture(scope="module")
def hashing_tagger() -> Tagger:
    return Tagger(HashingEmbedder())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, model_path="hashing", chunk_tokens=60, chunk_overlap=10)


def add(settings: Settings, doc_id: str, text: str, title: str = "") -> None:
    store = Store(settings.store_path)
    store.upsert_document(Document(id=doc_id, source_id="test", text=text, title=title))
    store.close()


def run(settings: Settings, tagger: Tagger, **kw) -> dict:
    return index(settings, embedder=kw.pop("embedder", HashingEmbedder()), tagger=tagger, **kw)


def test_second_run_embeds_nothing(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]), "Title A")
    first = run(settings, hashing_tagger)
    assert first["documents"] == 1 and first["chunks"] > 2 and first["embedded"] == first["chunks"]
    second = run(settings, hashing_tagger)
    assert second["documents"] == 0 and second["embedded"] == 0


def test_a_changed_document_re_embeds_only_changed_chunks(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:30]))
    first = run(settings, hashing_tagger)
    add(settings, "a", " ".join(SENTENCES[:29] + ["A new last sentence replaces the old one."]))
    second = run(settings, hashing_tagger)
    assert second["documents"] == 1
    assert 1 <= second["embedded"] <= 2 < first["chunks"]
    assert second["reused"] == second["chunks"] - second["embedded"]
    store = Store(settings.store_path)
    assert store.chunks_of("a")[-1]["text"].endswith("A new last sentence replaces the old one.")


def test_identical_chunks_in_two_documents_are_embedded_once(settings: Settings, hashing_tagger: Tagger) -> None:
    text = " ".join(SENTENCES[:20])
    add(settings, "a", text)
    add(settings, "b", text)
    report = run(settings, hashing_tagger)
    assert report["chunks"] == 2 * report["embedded"]
    assert report["reused"] == report["embedded"]


def test_withdrawn_documents_lose_their_chunks(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:10]))
    add(settings, "b", " ".join(SENTENCES[10:20]))
    run(settings, hashing_tagger)
    store = Store(settings.store_path)
    assert store.withdraw_document("b")
    report = run(settings, hashing_tagger)
    assert report["removed"] == 1
    assert store.chunks_of("b") == [] and store.chunks_of("a")
    assert read_manifest(settings.index_dir)["count"] == store.counts()["chunks"] == len(store.chunks_of("a"))


def test_rebuild_re_embeds_everything(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]))
    add(settings, "b", " ".join(SENTENCES[20:]))
    first = run(settings, hashing_tagger)
    again = run(settings, hashing_tagger, rebuild=True)
    assert again["rebuild"] and again["documents"] == 2
    assert again["embedded"] == first["embedded"] == again["chunks"]


def test_a_new_model_means_a_rebuild(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]))
    run(settings, hashing_tagger)
    report = index(settings, embedder=HashingEmbedder(dim=128))  # builds its own tagger on that embedder
    assert report["rebuild"] and report["embedded"] == report["chunks"]
    manifest = read_manifest(settings.index_dir)
    assert manifest["model"] == "hashing-128" and manifest["dim"] == 128


def test_faiss_file_holds_every_chunk_under_its_id(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]), "Cooperatives")
    add(settings, "b", " ".join(SENTENCES[20:]), "Villages")
    run(settings, hashing_tagger)
    store = Store(settings.store_path)
    ann, manifest = load_index(settings.index_dir)
    assert len(ann) == manifest["count"] == store.counts()["chunks"]
    chunk = store.chunks_of("b")[1]
    query = HashingEmbedder().encode([chunk["text"]])
    _, ids = ann.search(query, 1)
    assert int(ids[0][0]) == chunk["id"]


def test_index_file_is_replaced_atomically(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]))
    run(settings, hashing_tagger)
    path = settings.index_dir / INDEX_FILE
    old_bytes = path.read_bytes()
    with path.open("rb") as reader:  # a server that has the old file open
        old_inode = os.fstat(reader.fileno()).st_ino
        add(settings, "b", " ".join(SENTENCES[20:]))
        run(settings, hashing_tagger)
        assert reader.read() == old_bytes  # the reader still sees the whole old file
    assert os.stat(path).st_ino != old_inode  # renamed into place, not rewritten in place
    assert path.read_bytes() != old_bytes
    assert sorted(p.name for p in settings.index_dir.iterdir()) == ["chunks.faiss", "manifest.json"]


def test_chunks_store_embeddings_as_float32(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", "One short document about cooperatives.", "A title")
    run(settings, hashing_tagger)
    store = Store(settings.store_path)
    blobs = store.embeddings_by_hash([c["hash"] for c in store.chunks_of("a")], "hashing-256")
    assert [len(b) for b in blobs.values()] == [256 * 4]
    assert store.chunks_of("a")[0]["text"] == "One short document about cooperatives."  # the title is not chunk text


def test_manual_tags_survive_a_rebuild(settings: Settings, hashing_tagger: Tagger) -> None:
    add(settings, "a", " ".join(SENTENCES[:20]))
    run(settings, hashing_tagger)
    store = Store(settings.store_path)
    store.set_manual_tags("a", [5, 8])
    run(settings, hashing_tagger, rebuild=True)
    tags = store.tags(["a"])["a"]
    assert [t["sdg"] for t in tags] == [5, 8] and {t["origin"] for t in tags} == {"manual"}
    store.set_manual_tags("a", None)  # back to the tagger's, which the rebuild re-wrote
    assert all(t["origin"] == "auto" for t in store.tags(["a"]).get("a", []))
