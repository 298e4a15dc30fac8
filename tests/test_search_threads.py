"""Searches under concurrency: one data version per search (Store.pinned_version), its helper thread included, and
concurrent searches answer as sequential ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SearchCorpus

import searchapi.search as search_module
from searchapi.search import Searcher
from ssehub.store import Filters, Store

QUERIES = ["cooperatives women", "housing land trust", "solidarity finance", "energy communities climate"]


def test_pinned_version_holds_one_number_in_its_thread(search_corpus: SearchCorpus) -> None:
    store = search_corpus.store
    writer = Store(store.path)  # another connection: its commits change the data version
    try:
        before = store.data_version()
        with store.pinned_version() as pinned:
            assert pinned == before
            writer.set_hidden("coop-1", True)
            assert store.data_version() == pinned  # pinned in this thread
            seen: list[int] = []
            other = threading.Thread(target=lambda: seen.append(store.data_version()))
            other.start()
            other.join()
            assert seen[0] != pinned  # another thread asks SQLite
            with store.pinned_version() as inner:
                assert inner == pinned  # a nested block keeps the outer number
            assert store.data_version() == pinned
        assert store.data_version() == seen[0]  # unpinned after the block
        with store.pinned_version(7) as given:
            assert given == 7 and store.data_version() == 7
    finally:
        writer.close()


def test_search_sees_a_commit_made_before_it(search_corpus: SearchCorpus) -> None:
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    assert "coop-1" in [h["id"] for h in searcher.search("worker cooperatives", mode="keyword")["results"]]
    search_corpus.store.set_hidden("coop-1", True)
    assert "coop-1" not in [h["id"] for h in searcher.search("worker cooperatives", mode="keyword")["results"]]


class _Recording(ThreadPoolExecutor):
    """The helper pool, counting what is submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_a_search_asks_the_data_version_once(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    searcher.search("warm", mode="hybrid")  # catalog and keyword engine built
    pool = _Recording()
    monkeypatch.setattr(search_module, "_helpers", pool)
    asks: list[str] = []
    asked = Store._asked_version

    def counted(store: Store) -> int:
        asks.append(threading.current_thread().name)
        return asked(store)

    monkeypatch.setattr(Store, "_asked_version", counted)
    try:
        for mode in ("hybrid", "semantic", "keyword"):
            asks.clear()
            searcher.search("cooperatives women", Filters(lang=["en", "fr"]), mode=mode)
            assert asks == [threading.current_thread().name], mode  # once, in the request's thread
        assert pool.submitted >= 1  # the hybrid search's semantic half ran in a helper, on the same version
    finally:
        pool.shutdown()


def test_concurrent_searches_answer_as_sequential_ones(search_corpus: SearchCorpus) -> None:
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    jobs = [(q, mode, f) for q in QUERIES for mode in ("hybrid", "semantic", "keyword")
            for f in (Filters(), Filters(lang=["en"]), Filters(sdg=[8]))]
    sequential = [searcher.search(q, f, mode=mode) for q, mode, f in jobs]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda job: searcher.search(job[0], job[2], mode=job[1]), jobs * 3))
    assert concurrent == sequential * 3


def counting_inside(method):  # type: ignore[no-untyped-def]
    """`method` wrapped to count the calls inside it at once, each held long enough for the others to pile up at the
    door; the wrapper and a list holding the most seen together."""
    inside, most = [0], [0]
    lock = threading.Lock()

    def counted(self: Searcher, *args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            threading.Event().wait(0.02)
            return method(self, *args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    return counted, most


def test_at_most_searches_at_once_run_together(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 threads searching at once: never more than SEARCHES_AT_ONCE inside a search (the rest wait, using no CPU),
    every one answered as alone."""
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    expected = searcher.search("cooperatives women", mode="keyword")
    counted, most = counting_inside(Searcher._search)
    monkeypatch.setattr(Searcher, "_search", counted)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: searcher.search("cooperatives women", mode="keyword"), range(48)))
    assert answers == [expected] * 48
    assert most[0] == search_module.SEARCHES_AT_ONCE


def test_the_api_parks_no_thread_at_the_search_door(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """24 concurrent /api/search requests: at most SEARCHES_AT_ONCE of them ever reach Searcher.search (the rest wait in
    the event loop, not as threads parked on its semaphore), and each gets the answer it gets alone."""
    from fastapi.testclient import TestClient

    from searchapi.app import create_app

    counted, most = counting_inside(Searcher.search)
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as client:
        params = [{"q": QUERIES[i % 4], "mode": "keyword", "limit": 1 + i // 4} for i in range(48)]  # none replayed
        searcher = client.app.state.searcher
        alone = [searcher.search(p["q"], mode="keyword", limit=p["limit"]) for p in params]
        monkeypatch.setattr(Searcher, "search", counted)
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda p: client.get("/api/search", params=p), params))
    assert [a.status_code for a in answers] == [200] * 48
    assert [a.json() for a in answers] == alone
    assert most[0] == search_module.SEARCHES_AT_ONCE


def test_a_hybrid_search_sends_its_keyword_half_to_a_helper(search_corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shorter keyword half runs in a helper while the request's thread computes the semantic half (so that thread
    seldom waits to be woken); with every helper busy both run in the request's thread. The answer is the same."""
    searcher = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    expected = searcher.search("cooperatives women", mode="hybrid")
    threads: dict[str, str] = {}
    for half in ("_keyword_numbers", "_semantic_numbers"):
        method = getattr(Searcher, half)

        def recorded(self: Searcher, *args, _half=half, _method=method, **kwargs):  # type: ignore[no-untyped-def]
            threads[_half] = threading.current_thread().name
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(Searcher, half, recorded)
    assert searcher.search("cooperatives women", mode="hybrid") == expected
    assert threads["_keyword_numbers"].startswith("ssehub-hybrid")
    assert threads["_semantic_numbers"] == threading.current_thread().name
    monkeypatch.setattr(search_module, "_helper_slots", threading.BoundedSemaphore(1))
    search_module._helper_slots.acquire()  # every helper busy
    threads.clear()
    assert searcher.search("cooperatives women", mode="hybrid") == expected
    assert threads["_keyword_numbers"] == threads["_semantic_numbers"] == threading.current_thread().name
