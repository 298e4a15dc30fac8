"""Atom feeds, statistics, the OpenAPI document, CORS and the per-client rate limit."""

from __future__ import annotations

from collections.abc import Iterator

import feedparser
import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.ratelimit import TokenBuckets
from ssehub.settings import Settings


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def test_sdg_feed_is_valid_atom(client: TestClient) -> None:
    r = client.get("/api/feeds/sdg/8")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10" and "SDG 8" in feed.feed.title and feed.feed.updated
    ids = [e.link for e in feed.entries]
    assert ids == ["https://example.org/coop-1", "https://example.org/coop-2", "https://example.org/filler-07"]  # newest first
    entry = feed.entries[0]
    assert entry.title == "Worker cooperatives and decent work" and entry.published.startswith("2021-03-01")
    assert entry.id.endswith("/api/documents/coop-1") and entry.updated and entry.author == "A. Author"
    assert {t.term for t in entry.tags} == {"sdg-8"} and "decent work" in entry.summary


def test_feed_escapes_markup_and_control_characters(client: TestClient, search_corpus: SearchCorpus) -> None:
    search_corpus.add("ctrl-1", "unsse", "en", "report", "2030-01-01", [16], "Bell \x07 & <tags> ]]>",
                      ["Text with \x0b vertical tab & <script>alert(1)</script>."])
    feed = feedparser.parse(client.get("/api/feeds/sdg/16").content)
    assert not feed.bozo and feed.entries[0].title == "Bell  & <tags> ]]>"
    assert "<script>" in feed.entries[0].summary  # text, not markup: readers show it as typed


def test_feed_bad_goal(client: TestClient) -> None:
    assert client.get("/api/feeds/sdg/18").status_code == 422 and client.get("/api/feeds/sdg/x").status_code == 422
    assert not feedparser.parse(client.get("/api/feeds/sdg/17").content).bozo  # empty feeds are valid too


def test_stats(client: TestClient) -> None:
    stats = client.get("/api/stats").json()
    assert set(stats) == {"documents", "sdg", "lang", "source", "type", "year"} and stats["documents"] == 31
    assert stats["sdg"]["8"] == 3 and stats["source"] == {"ripess": 15, "unsse": 16} and sum(stats["lang"].values()) == 31


def test_openapi_has_an_example_for_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert len(spec["paths"]) >= 15
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, (method, path)
            content = op["responses"][ok[0]].get("content", {})
            assert content and all("example" in c for c in content.values()), (method, path, content)
    assert spec["paths"]["/api/sources"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "401" in spec["paths"]["/api/documents/{doc_id}"]["patch"]["responses"]
    assert client.get("/docs").status_code == 200


def test_rate_limit_answers_429_with_retry_after(search_corpus: SearchCorpus) -> None:
    settings = Settings(data_dir=search_corpus.settings.data_dir, model_path="hashing", rate_limit=5)
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
        codes = [client.get("/api/sdgs").status_code for _ in range(5)]
        r = client.get("/api/stats")
        assert codes == [200] * 5 and r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 12 and "too many requests" in r.json()["detail"]
        assert client.get("/").status_code == 200 and client.get("/health").status_code == 200  # pages are not limited


def test_token_buckets_refill_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert all(buckets.take("a") == 0 for _ in range(60))
    assert buckets.take("a") == pytest.approx(1.0) and buckets.take("b") == 0  # another client is not affected
    now[0] += 1.0
    assert buckets.take("a") == 0 and buckets.take("a") > 0


def test_cors_for_configured_origins_only(search_corpus: SearchCorpus) -> None:
    settings = Settings(data_dir=search_corpus.settings.data_dir, model_path="hashing",
                        cors_origins="https://hub.example, http://127.0.0.1:9999", rate_limit=1, curator_keys="k")
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
        r = client.options("/api/search", headers={"Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "GET"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://127.0.0.1:9999"
        r = client.options("/api/sources", headers={"Origin": "https://hub.example", "Access-Control-Request-Method": "GET",
                                                    "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 400  # curator calls are not allowed cross-origin
        assert client.get("/api/sdgs", headers={"Origin": "https://hub.example"}).status_code == 200
        r = client.get("/api/sdgs", headers={"Origin": "https://hub.example"})
        assert r.status_code == 429 and r.headers["access-control-allow-origin"] == "https://hub.example"
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-origin" not in client.get("/api/sdgs", headers={"Origin": "https://evil.example"}).headers
