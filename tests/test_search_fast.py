"""The in-memory search catalog gives exactly the store's answers (filters, browse order, facets, search results)
and follows every commit; the query-embedding cache returns the model's vectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SearchCorpus

from searchapi.catalog import Catalog, LiveCatalog
from searchapi.search import Searcher
from ssehub.models import Document
from ssehub.store import Filters

FILTERS = [
    Filters(), Filters(lang=["en"]), Filters(lang=["fr", "es"]), Filters(lang=["xx"]), Filters(source=["ripess"]),
    Filters(type=["report", "other"]), Filters(year_from=2015), Filters(year_to=2014), Filters(year_from=2012, year_to=2019),
    Filters(sdg=[5]), Filters(sdg=[1, 8, 13]), Filters(sdg=[5], lang=["en"], source=["unsse"]), Filters(lang=[""]),
]


@pytest.fixture
def odd_corpus(search_corpus: SearchCorpus) -> SearchCorpus:
    """The search corpus plus documents with an empty language, an empty date and curator tags."""
    store = search_corpus.store
    search_corpus.add("blank-1", "unsse", "", "report", None, [5], "Blank language cooperative", ["A cooperative note."])
    store.upsert_document(Document(id="empty-date", source_id="ripess", text="Cooperatives.", title="Empty date",
                                   url="https://example.org/e", lang="en", published="", type="article"))
    store.set_manual_tags("filler-03", [5, 13])
    store.set_manual_tags("filler-04", [])
    return search_corpus


def catalog_of(store) -> Catalog:
    return Catalog(store.catalog_rows(), store.data_version())


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f)[8:60])
def test_catalog_matches_the_store_for_filters_browse_and_facets(odd_corpus: SearchCorpus, filters: Filters) -> None:
    store = odd_corpus.store
    catalog = catalog_of(store)
    every = [r["id"] for r in store._rows("SELECT id FROM documents")]
    assert catalog.filter_ids(filters, every) == store.filter_ids(filters, every)
    for offset, limit in ((0, 5), (3, 100), (40, 10)):
        ids, total, numbers = catalog.browse(filters, offset, limit)
        assert (ids, total) == store.browse(filters, offset, limit)
    facets = catalog.facets(numbers)
    expected = store.facets(filters=filters)
    assert facets == expected and [list(f) for f in facets.values()] == [list(f) for f in expected.values()]  # same order
    subset = sorted(store.filter_ids(filters, every))[::2]
    assert catalog.facets(catalog.numbers(subset)) == store.facets(ids=subset)


def test_catalog_best_chunk_per_document_matches_the_store(odd_corpus: SearchCorpus) -> None:
    store = odd_corpus.store
    catalog = catalog_of(store)
    chunk_ids = [r["id"] for r in store._rows("SELECT id FROM chunks")] + [10**6, -3]  # unknown ids are skipped
    rng = np.random.default_rng(1)
    hits = [(c, float(s)) for c, s in zip(chunk_ids, rng.random(len(chunk_ids)), strict=True)]
    hits += [(chunk_ids[0], 2.0), (chunk_ids[1], 2.0)]  # repeated chunks and ties keep the first best
    from searchapi.fusion import best_per_document

    for filters in FILTERS:
        expected = best_per_document(hits, store.chunk_documents([c for c, _ in hits]))
        allowed = store.filter_ids(filters, list(expected))
        assert catalog.best(hits, filters) == {d: v for d, v in expected.items() if d in allowed}


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_search_answers_are_the_same_with_and_without_the_catalog(odd_corpus: SearchCorpus, mode: str) -> None:
    fast = Searcher(odd_corpus.store, odd_corpus.embedder, odd_corpus.settings.index_dir)
    slow = Searcher(odd_corpus.store, odd_corpus.embedder, odd_corpus.settings.index_dir)
    slow.catalog.get = lambda: None  # type: ignore[method-assign]  # the SQLite path
    for q, filters, sort in itertools.product(["cooperatives", "energy climate", "-region solidarity", None],
                                              FILTERS[:6] + FILTERS[9:11], ["relevance", "date"]):
        a = fast.search(q, filters, mode=mode, limit=5, sort=sort)
        assert a == slow.search(q, filters, mode=mode, limit=5, sort=sort)
        if a["next_cursor"]:
            assert fast.search(q, filters, mode=mode, limit=5, sort=sort, cursor=a["next_cursor"]) == slow.search(
                q, filters, mode=mode, limit=5, sort=sort, cursor=a["next_cursor"])
    assert fast.catalog.get() is not None


def test_catalog_follows_every_commit(odd_corpus: SearchCorpus) -> None:
    store = odd_corpus.store
    searcher = Searcher(store, odd_corpus.embedder, odd_corpus.settings.index_dir)
    assert "filler-01" in {h["id"] for h in searcher.search(None, Filters(), limit=100)["results"]}
    first = searcher.catalog.get()
    assert first is not None and searcher.catalog.get() is first  # no commit, no rebuild
    store.set_hidden("filler-01", True)
    body = searcher.search(None, Filters(), limit=100)
    assert "filler-01" not in {h["id"] for h in body["results"]} and body["facets"] == store.facets(filters=Filters())
    store.set_manual_tags("filler-02", [17])
    assert searcher.search(None, Filters(sdg=[17]), limit=100)["facets"]["sdg"] == store.facets(filters=Filters(sdg=[17]))["sdg"]
    other = type(store)(store.path)  # a commit from another connection (as from `ssehub index` in another process)
    other.set_hidden("filler-05", True)
    other.close()
    assert "filler-05" not in {h["id"] for h in searcher.search("solidarity", Filters(), mode="keyword", limit=100)["results"]}


def test_a_large_catalog_rebuilds_in_the_background_and_sqlite_answers_meanwhile(
    odd_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    import searchapi.catalog as module

    live = LiveCatalog(odd_corpus.store)
    assert live.get() is not None
    monkeypatch.setattr(module, "SYNC_REBUILD_MAX", 0)
    odd_corpus.store.set_hidden("filler-07", True)
    stale = live.get()  # a rebuild starts; this caller is told to ask SQLite
    assert stale is None or stale.version == odd_corpus.store.data_version()
    with live._building:  # wait for the background rebuild
        pass
    fresh = live.get()
    assert fresh is not None and not fresh.filter_ids(Filters(), ["filler-07"])


def test_query_vectors_are_cached_and_equal_to_the_model_s(search_corpus: SearchCorpus) -> None:
    calls: list[list[str]] = []
    embedder = search_corpus.embedder
    encode = embedder.encode

    def counting(texts: list[str], kind: str = "passage") -> np.ndarray:
        calls.append(list(texts))
        return encode(texts, kind=kind)

    embedder.encode = counting  # type: ignore[method-assign]
    searcher = Searcher(search_corpus.store, embedder, search_corpus.settings.index_dir)
    first = searcher.search("energy cooperatives", mode="semantic")
    again = searcher.search("energy cooperatives", mode="semantic")
    assert first == again and calls == [["energy cooperatives"]]
    assert np.array_equal(searcher._query_vector(embedder, "energy cooperatives"), encode(["energy cooperatives"], kind="query")[0])
