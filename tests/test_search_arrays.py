"""The catalog's array rankings (searchapi/search.py `_rank_numbers`) give exactly the answers of the reference path
(dicts of document ids, every look-up through SQLite), on a random corpus full of ties, attachments and odd dates."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import SearchCorpus, make_search_corpus

from searchapi.catalog import Catalog
from searchapi.search import Searcher, round4
from ssehub.models import Chunk, Document
from ssehub.store import Filters

WORDS = ["cooperative", "coopératives", "solidarity", "solidaire", "economy", "économie", "housing", "logement", "women",
         "femmes", "energy", "énergie", "finance", "microcredit", "waste", "recycling", "farmers", "agroecology", "water",
         "trade", "fair", "network", "mutual", "insurance", "local", "currency", "training", "youth", "land", "trust"]
FILTERS = [Filters(), Filters(lang=["en"]), Filters(lang=["fr", ""]), Filters(sdg=[3, 5]), Filters(year_from=2015),
           Filters(source=["ripess"], type=["report"]), Filters(year_to=2012, sdg=[1, 2, 3, 4])]


def test_round4_is_python_round() -> None:
    rng = np.random.default_rng(7)
    halves = (np.arange(20_000) + 0.5) / 1e4  # every x.xxxx5: where numpy's multiply-and-rint can differ
    fused = 0.5 * np.round(rng.random(20_000), 4) + 0.5 * np.where(rng.random(20_000) < 0.5, 0.0, rng.random(20_000))
    exact_ties = (2 * np.arange(2000) + 1) / 64  # x * 1e4 is exactly a half-integer: half to even, as Python
    values = np.concatenate([halves, -halves, rng.random(20_000), rng.random(2000) * 40 - 20, fused, exact_ties,
                             [0.0, -0.0, 1.0, 1e-9]])
    expected = [round(v, 4) for v in values.tolist()]
    assert round4(values).tolist() == expected
    assert np.round(values, 4).tolist() != expected  # the case the fix-up exists for


def random_corpus(corpus: SearchCorpus, seed: int) -> None:
    """About 120 more documents: few words (many equal bm25 scores), repeated texts, dates equal, empty or missing,
    attachments of visible, hidden and withdrawn pages, other URLs."""
    rng = random.Random(seed)
    store = corpus.store
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(40)]  # reused: exact ties
    ids = []
    for i in range(100):
        lang = rng.choice(["en", "en", "fr", "es", "", "de"])
        published = rng.choice([None, "", "2011-05-01", "2016-01-01", "2016-01-01", f"20{10 + i % 14}-0{1 + i % 9}-02"])
        doc_id = f"r{rng.randint(0, 10**6):06d}-{i}"
        corpus.add(doc_id, rng.choice(["unsse", "ripess", "emes"]), lang, rng.choice(["report", "article", "thesis"]),
                   published, rng.sample(range(1, 18), rng.randint(0, 3)), rng.choice(texts[:8]),
                   [rng.choice(texts) for _ in range(rng.randint(1, 4))])
        ids.append(doc_id)
    for j, parent in enumerate(rng.sample(ids + ["gone-1", "hidden-1", "coop-1"], 25)):
        child = f"{parent}-att{j}"
        text = rng.choice(texts)
        store.upsert_document(Document(id=child, source_id="unsse", text=text, title=rng.choice(texts[:8]), lang="en",
                                       type="report", url=f"https://example.org/{child}.pdf", parent_id=parent,
                                       published=rng.choice([None, "2016-01-01", "2020-02-02"])))
        vector = corpus.embedder.encode([text])[0]
        store.replace_chunks(child, "Brief", [Chunk(child, 0, text)], [vector.tobytes()], corpus.embedder.name)
        if j % 7 == 0:
            store.set_hidden(child, True)
    for doc_id in rng.sample(ids, 10):
        store.add_location(doc_id, f"https://mirror.example.net/{doc_id}", "ripess")
    for doc_id in rng.sample(ids, 6):
        store.set_hidden(doc_id, True)
    corpus.rebuild_index()


def fake_crosslingual(searcher: Searcher) -> None:
    """A deterministic stand-in for the e5 signal (no model): scores for some admitted documents, served by id."""

    def scores(text: str, admit, passing=None):  # type: ignore[no-untyped-def]  # passing: the pre-check, not faked
        rng = random.Random(text)
        every = [r["id"] for r in searcher.store._rows("SELECT id FROM documents ORDER BY id")]
        allowed = admit(rng.sample(every, min(40, len(every))))
        picked = sorted(allowed)[:12]
        return {d: rng.choice([0.0, 0.25, 0.5, 1.0, rng.random()]) for d in picked}, (lambda d: d in set(picked) or d < "m")

    searcher.crosslingual.scores = scores  # type: ignore[method-assign]


@pytest.mark.parametrize("seed", [1, 2])
def test_array_rankings_equal_the_reference(tmp_path, seed: int) -> None:
    corpus = make_search_corpus(tmp_path / "data", index=False)
    try:
        random_corpus(corpus, seed)
        fast = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
        slow = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
        slow.catalog.get = lambda: None  # type: ignore[method-assign]  # the reference: dicts and SQLite
        assert fast.catalog.get() is not None and fast.catalog.get().children  # attachments to fold
        rng = random.Random(seed)
        queries = [" ".join(rng.sample(WORDS, rng.randint(1, 4))) for _ in range(12)]
        queries += ["cooperative -housing", '"fair trade" energy', "solidarity author:\"A. Author\"", "author:nobody",
                    "zzzz", "title:economy women"]
        calls = 0
        for crosslingual in (False, True):
            if crosslingual:
                fake_crosslingual(fast)
                fake_crosslingual(slow)
            for q in queries:
                for mode in ("hybrid", "keyword", "semantic"):
                    filters, sort = rng.choice(FILTERS), rng.choice(["relevance", "relevance", "date"])
                    limit = rng.choice([3, 10, 100])
                    a = fast.search(q, filters, mode=mode, limit=limit, sort=sort)  # type: ignore[arg-type]
                    b = slow.search(q, filters, mode=mode, limit=limit, sort=sort)  # type: ignore[arg-type]
                    assert a == b, (q, mode, filters, sort)
                    calls += bool(a["results"])
                    if a["next_cursor"]:
                        c = a["next_cursor"]
                        assert fast.search(q, filters, mode=mode, limit=limit, sort=sort, cursor=c) == slow.search(  # type: ignore[arg-type]
                            q, filters, mode=mode, limit=limit, sort=sort, cursor=c)  # type: ignore[arg-type]
        assert calls > 50  # most searches found something: the comparison is not of empty answers
    finally:
        corpus.store.close()


def test_fold_and_date_order_equal_the_reference(search_corpus: SearchCorpus) -> None:
    random_corpus(search_corpus, 3)
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    catalog = searcher.catalog.get()
    assert isinstance(catalog, Catalog) and catalog.parent_number is not None
    rng = np.random.default_rng(3)
    for _ in range(50):
        numbers = rng.permutation(len(catalog))[: rng.integers(1, len(catalog))]
        ids = [catalog.ids[n] for n in numbers.tolist()]
        assert [catalog.ids[n] for n in numbers[catalog.fold(numbers)].tolist()] == searcher._fold_attachments(ids)
        searcher_dates = searcher._newest_first(ids)
        assert [catalog.ids[n] for n in numbers[catalog.newest_first(numbers)].tolist()] == searcher_dates


def test_engine_pool_equals_a_full_sort_of_every_match() -> None:
    """The keyword engine keeps only rows above an estimated floor: the same pool as sorting every match, ties at the
    cut included (few words, so many rows score the same)."""
    from searchapi.keyword import KeywordEngine

    rng = random.Random(4)
    words = [f"w{i}" for i in range(12)]
    table = [(3 * i + 1, " ".join(rng.choices(words[:4], k=2)), " ".join(rng.choices(words, k=rng.randint(1, 8))))
             for i in range(4000)]
    engine = KeywordEngine("", table, 0)
    narrowed = 0
    for forms in (["w1"], ["w1", "w2"], ["w0", "w5", "w11"], ["w3", "w3"], ["w11"], ["w2", "w9", "w10", "w4"]):
        scores = np.zeros(len(engine))
        for f in forms:
            lo, hi = engine.indptr[engine.vocab[f]], engine.indptr[engine.vocab[f] + 1]
            scores[engine.rows[lo:hi]] += engine.values[lo:hi]
        rows = np.flatnonzero(scores)
        every = sorted(zip(engine.rowids[rows].tolist(), scores[rows].tolist(), strict=True), key=lambda h: (-h[1], h[0]))
        for limit in (1, 7, 100, 999, 5000):
            assert engine.top(" OR ".join(f'"{f}"' for f in forms), limit) == every[:limit], (forms, limit)
            narrowed += len(KeywordEngine._best_rows(scores, limit)) < len(rows)
    assert narrowed >= 10  # the estimated floor was used, not only the every-match fallback


def test_engine_floor_keeps_every_row_of_the_best_even_when_the_sample_misleads() -> None:
    from searchapi.keyword import SAMPLE, KeywordEngine

    rng = np.random.default_rng(6)
    for case in range(40):
        scores = np.where(rng.random(3000) < 0.5, 0.0, rng.integers(1, 6, 3000) / 4)  # ties everywhere
        if case % 2:  # the sampled rows score high, the rest low: an estimate from them alone keeps too few rows
            scores[::SAMPLE] += 10
        limit = int(rng.integers(1, 400))
        rows = KeywordEngine._best_rows(scores, limit)
        matches = np.flatnonzero(scores)
        kth = np.sort(scores[matches])[::-1][min(limit, len(matches)) - 1]
        assert set(np.flatnonzero(scores >= kth)) <= set(rows.tolist()) <= set(matches.tolist())
