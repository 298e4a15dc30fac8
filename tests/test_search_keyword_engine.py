"""The in-memory bm25 engine (searchapi/keyword.py): FTS5's top chunks and scores, freshness, and FTS5 fallback."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from conftest import SearchCorpus

from searchapi.keyword import KeywordEngine, LiveKeyword, plain_forms
from searchapi.query import parse
from searchapi.search import Searcher

LANG_DOCS = [
    ("fr-k1", "observatoire", "fr", "report", "2021-03-01", [11], "Les coopératives d'habitants en France",
     ["Dans ces coopératives, les habitants gèrent ensemble leurs logements et partagent les décisions.",
      "La coopérative d'habitants est une économie solidaire du logement; coopérative, coopérative."]),
    ("es-k1", "observatoire", "es", "report", "2020-05-01", [8], "Economías solidarias en América Latina",
     ["Las economías solidarias reúnen cooperativas de trabajo y asociaciones de viviendas populares."]),
    ("pt-k1", "observatoire", "pt", "report", "2019-07-01", [1], "Organizações de catadores no Brasil",
     ["As organizações de catadores praticam a economia solidária e a reciclagem popular.",
      "Bjørn Łukasz Straße ﬁnance: cooperação, organizações — reciclagem!"]),
]
QUERIES = [
    "cooperative", "coopératives habitants", "economia solidaria", "social enterprise finance", "solidarity economy",
    "region 7 cooperatives", "reciclagem catadores organização", "mutual aid markets training", "logement décisions",
    "withdrawn hidden cooperative", "network", "the of and", "bjørn strasse finance", "zzzunknownword", "viviendas",
]


@pytest.fixture
def corpus(search_corpus: SearchCorpus) -> SearchCorpus:
    for doc in LANG_DOCS:
        search_corpus.add(*doc)
    return search_corpus


def engine_of(corpus: SearchCorpus) -> KeywordEngine:
    return KeywordEngine(*corpus.store.keyword_rows(), corpus.store.data_version())


def same(engine_hits: list[tuple[int, float]], fts_hits: list[tuple[int, float]]) -> None:
    """Equal up to the order of tied scores, and up to which tied chunks a cut at the limit keeps; scores within 1e-4
    (the engine stores contributions as float32: ~1e-6 off)."""
    assert len(engine_hits) == len(fts_hits)
    if not fts_hits:
        return
    cut = fts_hits[-1][1] + 1e-4
    assert {c for c, s in engine_hits if s > cut} == {c for c, s in fts_hits if s > cut}
    fts = dict(fts_hits)
    for c, s in engine_hits:
        if c in fts:
            assert s == pytest.approx(fts[c], abs=1e-4)
    for (_, a), (_, b) in zip(engine_hits, fts_hits, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


@pytest.mark.parametrize("limit", [1, 5, 1000])
def test_engine_equals_fts5_bm25(corpus: SearchCorpus, limit: int) -> None:
    engine = engine_of(corpus)
    assert len(engine) == sum(len(corpus.store.chunks_of(d)) for d in corpus.ids)
    answered = 0
    for q in QUERIES:
        match = parse(q).match()
        hits = engine.top(match, limit)
        assert hits is not None, match
        same(hits, corpus.store.keyword_chunks(match, limit))
        answered += bool(hits)
        # deterministic order: score desc, chunk id asc
        assert hits == sorted(hits, key=lambda h: (-h[1], h[0]))
    assert answered >= len(QUERIES) - 2


def test_engine_scores_repeated_and_title_words_like_fts5(corpus: SearchCorpus) -> None:
    engine = engine_of(corpus)
    for match in ['"fr_cooper"', '"fr_cooper" OR "fr_habit"', '"solidarity" OR "solidarity"', '"bjorn" OR "strasse"',
                  '"finance"', '"lukasz"', '"Solidarity"', '"economía"', '"ﬁnance"']:
        hits = engine.top(match, 50)
        assert hits is not None
        same(hits, corpus.store.keyword_chunks(match, 50))
    assert engine.top('"pt_bjørn"', 5)  # non-ASCII words are indexed and found


def test_rows_fts5_would_split_or_fold_score_as_in_fts5(corpus: SearchCorpus) -> None:
    """Raw text (capitals, accents, hyphens): the engine takes FTS5's own tokens of it, so counts and lengths agree."""
    schema, _ = corpus.store.keyword_rows()
    rows = [(3, "Coop-Habitat", "ÉCONOMIE solidaire, économie"), (5, "x", "economie coop coop"), (9, "", "Straße café")]
    mem = sqlite3.connect(":memory:")
    mem.execute(schema)
    mem.executemany("INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)", rows)
    engine = KeywordEngine(schema, rows, 0)
    for match in ['"economie"', '"coop" OR "habitat"', '"Café"', '"strasse" OR "straße"', '"solidaire" OR "x"']:
        want = mem.execute("SELECT rowid, -bm25(chunks_fts, 2.0, 1.0) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                           "ORDER BY s DESC LIMIT 10", [match]).fetchall()
        got = engine.top(match, 10)
        assert got is not None and want, match
        same(got, [(r, s) for r, s in want])


def test_phrases_and_operators_fall_back_to_fts5(corpus: SearchCorpus) -> None:
    engine = engine_of(corpus)
    for match in ['"solidarity" AND "economy"', 'title : "solidarity"',
                  'solidarity', '"unterminated', '"a""b"']:
        assert plain_forms(match) is None
        assert engine.top(match, 10) is None
    assert engine.top('"solidarity economy"', 10) is None and engine.top('"cooper" OR "social-enterprise"', 10) is None
    live = LiveKeyword(corpus.store)
    assert live.chunks('"solidarity economy"', 10) == corpus.store.keyword_chunks('"solidarity economy"', 10)
    with pytest.raises(ValueError):
        live.chunks('"unterminated', 10)


def test_engine_follows_inserts_and_deletes(corpus: SearchCorpus) -> None:
    live = LiveKeyword(corpus.store)
    first = live.get()
    assert first is not None and live.get() is first  # built once per data version
    assert live.chunks(parse("quinoaharvest").match(), 10) == []
    corpus.add("new-1", "ripess", "en", "article", "2024-01-01", [2], "Quinoaharvest cooperatives",
               ["Quinoaharvest growers share a quinoaharvest mill."])
    chunk = corpus.store.chunks_of("new-1")[0]["id"]
    hits = live.chunks(parse("quinoaharvest").match(), 10)
    assert [c for c, _ in hits] == [chunk] and live.get() is not first
    same(hits, corpus.store.keyword_chunks(parse("quinoaharvest").match(), 10))
    same(live.chunks(parse("cooper").match(), 100), corpus.store.keyword_chunks(parse("cooper").match(), 100))  # idf and avgdl moved too
    corpus.store.delete_chunks("new-1")
    assert live.chunks(parse("quinoaharvest").match(), 10) == []
    same(live.chunks(parse("cooper").match(), 100), corpus.store.keyword_chunks(parse("cooper").match(), 100))


def test_stale_large_engine_answers_through_fts5_until_rebuilt(corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    from searchapi import keyword

    live = LiveKeyword(corpus.store)
    assert live.get() is not None
    monkeypatch.setattr(keyword, "SYNC_REBUILD_MAX", 0)  # "large": rebuilds go to a background thread
    built = threading.Event()
    original = keyword.KeywordEngine.__init__

    def slow_init(self, *args):  # type: ignore[no-untyped-def]
        built.wait(10)  # a slow build: the store changes are not served from the stale engine meanwhile
        original(self, *args)

    monkeypatch.setattr(keyword.KeywordEngine, "__init__", slow_init)
    corpus.add("new-2", "ripess", "en", "article", "2024-01-01", [2], "Mangrovecoop", ["Mangrovecoop restores coasts."])
    assert live.get() is None  # stale: not served
    assert [c for c, _ in live.chunks(parse("mangrovecoop").match(), 5)] == [corpus.store.chunks_of("new-2")[0]["id"]]  # via FTS5
    built.set()
    for _ in range(200):
        if live.get() is not None:
            break
        time.sleep(0.02)
    assert live.get() is not None and live.get().top(parse("mangrovecoop").match(), 5)


def test_keyword_search_results_unchanged_by_the_engine(corpus: SearchCorpus) -> None:
    corpus.rebuild_index()
    fast = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
    slow = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
    slow.keyword.get = lambda: None  # type: ignore[method-assign]  # FTS5 only
    for q in QUERIES:
        for mode in ("keyword", "hybrid"):
            a = fast.search(q, mode=mode, limit=20)["results"]  # type: ignore[arg-type]
            b = slow.search(q, mode=mode, limit=20)["results"]  # type: ignore[arg-type]
            assert {(h["id"], round(h["score"], 3)) for h in a} == {(h["id"], round(h["score"], 3)) for h in b}, q
    assert fast.keyword.get() is not None
