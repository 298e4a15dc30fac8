"""The answer cache of GET /api/search (searchapi/cache.py): a repeated search is replayed, never after a write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.cache import ResponseCache
from ssehub.settings import Settings


def counting(client: TestClient) -> list[int]:
    """Count the searches the app really runs (a replayed answer runs none), once the app is warm (until then the
    answers are not kept: loading the catalog changes the stamp)."""
    for _ in range(200):
        if all(client.get("/health").json()["warm"].values()):
            break
        time.sleep(0.02)
    searcher = client.app.state.searcher
    calls = [0]
    search: Callable[..., dict[str, Any]] = searcher.search

    def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls[0] += 1
        return search(*args, **kwargs)

    searcher.search = counted
    return calls


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def test_a_repeated_search_is_replayed_byte_for_byte(client: TestClient) -> None:
    calls = counting(client)
    first = client.get("/api/search", params={"q": "cooperatives", "limit": 3})
    again = client.get("/api/search", params={"q": "cooperatives", "limit": 3})
    assert first.status_code == again.status_code == 200 and first.json()["results"]
    assert again.content == first.content and again.headers["content-type"] == "application/json"
    assert calls[0] == 1
    other = client.get("/api/search", params={"q": "cooperatives", "limit": 2})  # another query string: its own answer
    assert calls[0] == 2 and len(other.json()["results"]) == 2


def test_a_write_or_a_new_index_is_seen_by_the_next_search(client: TestClient, search_corpus: SearchCorpus) -> None:
    calls = counting(client)
    params = {"q": "worker cooperatives decent work", "limit": 20}
    ids = [h["id"] for h in client.get("/api/search", params=params).json()["results"]]
    assert "coop-1" in ids
    search_corpus.store.set_hidden("coop-1", True)  # a curator's edit, committed by another connection
    after = [h["id"] for h in client.get("/api/search", params=params).json()["results"]]
    assert "coop-1" not in after and calls[0] == 2
    search_corpus.store.set_hidden("coop-1", False)
    assert [h["id"] for h in client.get("/api/search", params=params).json()["results"]] == ids
    search_corpus.rebuild_index()  # `ssehub index` writes a new manifest
    client.get("/api/search", params=params)
    assert calls[0] == 4


def test_errors_are_not_kept(client: TestClient) -> None:
    calls = counting(client)
    for _ in range(2):
        bad = client.get("/api/search", params={"q": "cooperatives", "cursor": "not-a-cursor"})
        assert bad.status_code == 400 and "detail" in bad.json()
    assert calls[0] == 2


def test_cached_answers_still_pass_cors_and_the_rate_limit(search_corpus: SearchCorpus) -> None:
    settings = Settings(data_dir=search_corpus.settings.data_dir, model_path="hashing", rate_limit=3,
                        cors_origins="https://hub.example")
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as c:
        calls = counting(c)
        got = [c.get("/api/search", params={"q": "cooperatives"}, headers={"Origin": "https://hub.example"}) for _ in range(4)]
        assert [r.status_code for r in got] == [200, 200, 200, 429] and calls[0] == 1
        assert all(r.headers["access-control-allow-origin"] == "https://hub.example" for r in got)
        assert int(got[3].headers["Retry-After"]) >= 1 and "detail" in got[3].json()
        assert "access-control-allow-origin" not in c.get("/api/search", params={"q": "x"}).headers  # no Origin, none


async def _app(scope: dict, receive: Any, send: Any) -> None:
    """An app answering 200 with a body of the length its query string asks for."""
    body = b"x" * int(scope["query_string"] or b"1")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _get(cache: ResponseCache, query: bytes) -> bytes:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await cache({"type": "http", "method": "GET", "path": "/a", "query_string": query}, None, send)  # type: ignore[arg-type]
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_cache_keeps_within_its_entry_and_byte_bounds() -> None:
    asyncio.run(_bounds())


async def _bounds() -> None:
    stamp = [1]
    cache = ResponseCache(_app, stamp=lambda scope: stamp[0], paths=["/a"], entries=2, entry_bytes=100, total_bytes=150)
    for q in (b"10", b"20", b"30", b"200"):
        assert len(await _get(cache, q)) == int(q)
    assert len(cache._answers) == 2 and cache._bytes == 50  # the oldest dropped; 200 bytes is over the entry limit
    await _get(cache, b"20")
    assert (cache.hits, cache.misses) == (1, 4)
    await _get(cache, b"90")  # 20 + 30 + 90 > 150: the least recently used (30) goes
    assert len(cache._answers) == 2 and cache._bytes == 110
    stamp[0] = 2  # the data changed: nothing kept is replayed
    await _get(cache, b"20")
    assert cache.hits == 1


def test_goal_and_facet_counts_are_replayed_until_a_write(client: TestClient, search_corpus: SearchCorpus) -> None:
    counting(client)
    store = client.app.state.store
    calls = [0]
    counts = store.sdg_counts

    def counted() -> dict[int, int]:
        calls[0] += 1
        return counts()

    store.sdg_counts = counted
    first = client.get("/api/sdgs").json()
    assert client.get("/api/sdgs").json() == first and calls[0] == 1
    assert client.get("/api/sdgs", params={"lang": "fr"}).json()[7]["documents"] == first[7]["documents"] and calls[0] == 2
    stats = client.get("/api/stats").json()
    assert client.get("/api/stats").json() == stats
    search_corpus.store.set_hidden("coop-1", True)  # tagged 8
    assert client.get("/api/sdgs").json()[7]["documents"] == first[7]["documents"] - 1 and calls[0] == 3
    assert client.get("/api/stats").json()["documents"] == stats["documents"] - 1
