"""Search at scale: the keyword engine saved beside the index and memory-mapped by the next process, kept across
commits that leave the keyword table alone, never used for another table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SearchCorpus

from searchapi import keyword, saved
from searchapi.keyword import LiveKeyword
from searchapi.query import parse
from searchapi.search import SAVED_DIR, Searcher
from ssehub.store import Store

QUERIES = ["cooperative", "solidarity economy", "social enterprise finance", "network", "the of and", "zzzunknownword"]


@pytest.fixture
def folder(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(keyword, "SAVE_MIN", 0)  # the small test corpus is saved as a large one would be
    return search_corpus.settings.index_dir / SAVED_DIR


def answers(live: LiveKeyword) -> list[list[tuple[int, float]]]:
    return [live.chunks(parse(q).match(), 50) for q in QUERIES]


def test_keyword_stamp_follows_the_keyword_table_only(search_corpus: SearchCorpus) -> None:
    store = search_corpus.store
    first = store.keyword_stamp()
    assert first == store.keyword_stamp()
    store.set_hidden(search_corpus.ids[0], True)  # a commit that leaves chunks_fts alone
    store.set_meta("anything", "1")
    assert store.keyword_stamp() == first
    search_corpus.add("new-1", "ripess", "en", "article", "2024-01-01", [2], "Quinoaharvest", ["Quinoaharvest mills."])
    second = store.keyword_stamp()
    assert second != first
    store.delete_chunks("new-1")  # back to the same rows: still another stamp (FTS5's cookie grew), so a rebuild
    assert store.keyword_stamp() not in (first, second)


def test_saved_engine_is_loaded_by_the_next_process_with_the_same_answers(search_corpus: SearchCorpus, folder: Path) -> None:
    built = LiveKeyword(search_corpus.store, folder)
    expected = answers(built)
    assert expected[0] and len(list(folder.glob("keyword-*"))) == 1
    other = Store(search_corpus.settings.store_path)  # as another process would open it
    try:
        live = LiveKeyword(other, folder)
        engine = live.get()
        assert engine is not None and isinstance(engine.values.base, np.memmap)  # loaded (a view of the mapped file)
        mapped = engine.mapped_files()  # what serve's warm-up reads ahead
        assert mapped and all(p.parent.parent == folder and p.is_file() for p in mapped)
        assert built.get().mapped_files() == []  # built in memory: nothing mapped
        assert answers(live) == expected
        for q in QUERIES:  # and FTS5's own answer (scores within float32 rounding)
            mine, fts = live.chunks(parse(q).match(), 20), other.keyword_chunks(parse(q).match(), 20)
            assert [c for c, _ in mine] == [c for c, _ in fts], q
            assert np.allclose([s for _, s in mine], [s for _, s in fts], atol=1e-4), q
    finally:
        other.close()


def test_commit_outside_the_keyword_table_keeps_the_engine(search_corpus: SearchCorpus, folder: Path) -> None:
    live = LiveKeyword(search_corpus.store, folder)
    first = live.get()
    assert first is not None
    search_corpus.store.set_hidden(search_corpus.ids[1], True)
    second = live.get()
    assert second is not None and second is not first and second.rows is first.rows  # same arrays, new version
    assert second.version == search_corpus.store.data_version()


def test_stale_saved_engine_is_never_used(search_corpus: SearchCorpus, folder: Path) -> None:
    LiveKeyword(search_corpus.store, folder).get()
    search_corpus.add("new-2", "ripess", "en", "article", "2024-01-01", [2], "Mangrovecoop", ["Mangrovecoop restores coasts."])
    live = LiveKeyword(search_corpus.store, folder)
    hits = live.chunks(parse("mangrovecoop").match(), 5)
    assert [c for c, _ in hits] == [search_corpus.store.chunks_of("new-2")[0]["id"]]
    assert [p.name for p in folder.glob("keyword-*")] == [f"keyword-{search_corpus.store.keyword_stamp()}"]  # replaced


def test_damaged_saved_engine_is_rebuilt(search_corpus: SearchCorpus, folder: Path) -> None:
    expected = answers(LiveKeyword(search_corpus.store, folder))
    target = folder / f"keyword-{search_corpus.store.keyword_stamp()}"
    (target / "values.npy").write_bytes(b"not an array")
    live = LiveKeyword(search_corpus.store, folder)
    assert answers(live) == expected
    assert not isinstance(live.get().values, np.memmap)  # type: ignore[union-attr]


def test_saved_rejects_other_stamps_and_formats(tmp_path: Path) -> None:
    saved.save(tmp_path, "thing", "ab" * 8, {"a": np.arange(3)}, {"x": 1})
    assert saved.load(tmp_path, "thing", "cd" * 8, ["a"]) is None
    arrays, meta = saved.load(tmp_path, "thing", "ab" * 8, ["a"])  # type: ignore[misc]
    assert arrays["a"].tolist() == [0, 1, 2] and meta["x"] == 1
    with pytest.raises(ValueError):
        saved.save(tmp_path, "thing", "../escape", {}, {})


def test_searcher_saves_under_the_index_folder(search_corpus: SearchCorpus, folder: Path) -> None:
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    result = searcher.search("cooperative", mode="keyword")
    assert result["total"] > 0 and list(folder.glob("keyword-*"))


def test_catalog_links_answer_as_the_store(search_corpus: SearchCorpus) -> None:
    from searchapi.catalog import LiveCatalog
    from ssehub.models import Chunk, Document

    store = search_corpus.store
    for doc_id, parent in (("brief-1", search_corpus.ids[0]), ("brief-2", search_corpus.ids[1]), ("brief-3", "gone-1")):
        store.upsert_document(Document(id=doc_id, source_id="unsse", text="A policy brief.", title="Brief", lang="en",
                                       type="report", url=f"https://example.org/{doc_id}.pdf", parent_id=parent))
        store.replace_chunks(doc_id, "Brief", [Chunk(doc_id, 0, "A policy brief.")], [b"\0" * 4 * search_corpus.embedder.dim],
                             search_corpus.embedder.name)
    store.set_hidden("brief-2", True)
    store.add_location(search_corpus.ids[2], "https://mirror.example.net/a.html", "ripess")
    catalog = LiveCatalog(store).get()
    assert catalog is not None
    every = [*search_corpus.ids, "brief-1", "brief-2", "brief-3", "unknown"]
    assert catalog.attachment_parents(every) == store.attachment_parents(every) and catalog.attachment_parents(every)
    linked = catalog.maybe_linked(every)
    assert store.other_locations(linked) | {d: [] for d in every if d not in linked} == store.other_locations(every)
    assert len(linked) < len(every) and search_corpus.ids[2] in linked


def test_typo_corrections_from_memory_are_the_stores(search_corpus: SearchCorpus) -> None:
    import random

    from rapidfuzz.distance import OSA

    from searchapi.typo import corrections, distance

    rng = random.Random(1)
    for _ in range(2000):  # the C distance is the Python one (optimal string alignment)
        a = "".join(rng.choice("abcde") for _ in range(rng.randint(0, 8)))
        b = "".join(rng.choice("abcde") for _ in range(rng.randint(0, 8)))
        assert OSA.distance(a, b) == distance(a, b), (a, b)
    engine = LiveKeyword(search_corpus.store).get()
    assert engine is not None
    terms = ["cooperativs", "solidarty", "finnance", "enterprize", "housing", "zzzzqqq", "economía", "logment", "netwrok",
             "cooperative", "trusts", "entreprises", "agricultur", "renewabel"]
    expected = corrections(terms, search_corpus.store)
    assert len(expected) >= 5
    assert corrections(terms, search_corpus.store, engine) == expected


def test_catalog_best_keeps_the_loops_choice_and_order_under_ties(search_corpus: SearchCorpus) -> None:
    from searchapi.catalog import LiveCatalog
    from searchapi.fusion import best_per_document
    from ssehub.store import Filters

    store = search_corpus.store
    catalog = LiveCatalog(store).get()
    assert catalog is not None
    chunk_ids = [r["id"] for r in store._rows("SELECT id FROM chunks")] + [10**7, -1]
    rng = np.random.default_rng(5)
    for _ in range(30):  # shuffled hits, repeated chunks, scores from a few values (many ties)
        picks = rng.integers(0, len(chunk_ids), 3 * len(chunk_ids))
        hits = [(chunk_ids[i], float(s)) for i, s in zip(picks, rng.integers(0, 4, len(picks)) / 4, strict=True)]
        for filters in (Filters(), Filters(lang=["en"]), Filters(sdg=[7, 11], year_from=2015)):
            expected = best_per_document(hits, store.chunk_documents([c for c, _ in hits]))
            allowed = store.filter_ids(filters, list(expected))
            assert list(catalog.best(hits, filters).items()) == [(d, v) for d, v in expected.items() if d in allowed]
    assert catalog.best([], Filters()) == {}


def test_background_rebuild_is_joined_before_the_store_closes(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from fastapi.testclient import TestClient

    from searchapi import catalog as catalog_module
    from searchapi.app import create_app

    release, started = threading.Event(), threading.Event()
    original = catalog_module.LiveCatalog.build

    def slow_build(self, version):  # type: ignore[no-untyped-def]
        if self.ready:  # the rebuild after a write, not the start-up build
            started.set()
            release.wait(10)
        return original(self, version)

    monkeypatch.setattr(catalog_module.LiveCatalog, "build", slow_build)
    monkeypatch.setattr(catalog_module, "SYNC_REBUILD_MAX", 0)  # every rebuild in the background
    closed: list[bool] = []
    monkeypatch.setattr(Store, "close", lambda self: closed.append(release.is_set()))
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as client:
        for _ in range(100):
            if client.get("/health").json()["warm"]["catalog"]:
                break
            threading.Event().wait(0.05)
        client.app.state.store.set_hidden(search_corpus.ids[0], True)  # type: ignore[attr-defined]
        client.get("/api/search", params={"q": "cooperative"})  # stale: the rebuild starts in the background
        assert started.wait(5)
        threading.Timer(0.3, release.set).start()
    assert closed == [True]  # closed once, after the rebuild was let go


def test_health_counts_come_from_the_catalog_and_equal_the_stores(search_corpus: SearchCorpus) -> None:
    from fastapi.testclient import TestClient

    from searchapi.app import create_app

    store = search_corpus.store
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as client:
        body = client.get("/health").json()
        counts = store.counts()
        assert (body["documents"], body["chunks"]) == (counts["documents"], counts["chunks"])
        assert body["warm"]["catalog"] is True
        store.withdraw_document(search_corpus.ids[0])  # a commit: the catalog (and its counts) follow it
        body = client.get("/health").json()
        assert body["documents"] == counts["documents"] - 1 == store.counts()["documents"]


def test_ssehub_index_leaves_the_keyword_engine_saved_for_the_next_server(
        search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ssehub index` ends by saving the engine of a large store, so a new server maps it instead of building it."""
    from ssehub.cli import prebuild_keyword

    folder = search_corpus.settings.index_dir / SAVED_DIR
    chunks = search_corpus.store.counts()["chunks"]
    monkeypatch.setattr(keyword, "SAVE_MIN", chunks + 1)
    assert prebuild_keyword(search_corpus.settings) == 0  # a small store: built at the first search, nothing saved
    assert not folder.exists() or not list(folder.glob("keyword-*"))
    monkeypatch.setattr(keyword, "SAVE_MIN", chunks)
    assert prebuild_keyword(search_corpus.settings) == chunks
    stamp = search_corpus.store.keyword_stamp()
    assert [p.name for p in folder.glob("keyword-*")] == [f"keyword-{stamp}"]
    built = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    monkeypatch.setattr(keyword.KeywordEngine, "__init__", lambda *a: pytest.fail("built again instead of loaded"))
    assert built.keyword.build(search_corpus.store.data_version()).stamp == stamp
    assert prebuild_keyword(search_corpus.settings) == chunks  # an unchanged table: the saved engine is reused


def test_bulk_load_analyses_keyword_rows_unless_the_caller_did(tmp_path: Path) -> None:
    """Bulk-loaded chunks get the keyword rows `replace_chunks` would write (per-language stems), or the caller's."""
    from ssehub.analyze import analyse

    doc = {"id": "d1", "source_id": "s", "title": "Coopératives", "text": "Les coopératives d'habitants", "lang": "fr"}
    chunk = (7, "d1", 0, "Coopératives", "Les coopératives d'habitants", np.zeros(4, np.float32).tobytes(), "m")
    first = Store(tmp_path / "a.db")
    first.bulk_load([doc], [chunk])
    _, rows = first.keyword_rows()
    assert rows == [(7, analyse("Coopératives", "fr"), analyse("Les coopératives d'habitants", "fr"))]
    assert "fr_cooper" in rows[0][2]
    second = Store(tmp_path / "b.db")
    second.bulk_load_analysed([doc], [chunk], [], [(7, "given", "as is")])
    assert second.keyword_rows()[1] == [(7, "given", "as is")]
    first.close()
    second.close()
