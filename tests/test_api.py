"""The HTTP API as clients see it: shapes per CONTRACT section 4, validation, errors, the page, live index reloads."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conftest import SearchCorpus, make_search_corpus
from searchapi.app import create_app
from ssehub.settings import Settings

HIT_KEYS = {"id", "title", "url", "source", "lang", "published", "type", "authors", "sdgs", "snippet", "score", "locations"}
FACETS = {"sdg", "lang", "source", "type", "year"}


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    app = create_app(search_corpus.settings, embedder=search_corpus.embedder)
    with TestClient(app) as c:
        yield c


def test_search_response_shape(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "cooperatives", "limit": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"query", "total", "next_cursor", "results", "facets"}
    assert body["query"] == "cooperatives" and isinstance(body["total"], int) and isinstance(body["next_cursor"], str)
    assert len(body["results"]) == 3 and all(set(h) == HIT_KEYS for h in body["results"])
    hit = body["results"][0]
    assert isinstance(hit["authors"], list) and all(set(t) == {"sdg", "score"} for t in hit["sdgs"])
    assert isinstance(hit["score"], float) and "<mark>" in hit["snippet"]
    assert set(body["facets"]) == FACETS and all(isinstance(n, int) for f in body["facets"].values() for n in f.values())


def test_search_pages_through_with_cursor_and_filters(client: TestClient) -> None:
    params: dict = {"q": "cooperatives solidarity", "mode": "keyword", "sdg": [8, 5], "lang": "fr", "limit": 1}
    seen, first = [], None
    while True:
        body = client.get("/api/search", params=params).json()
        first = first or body
        seen += [h["id"] for h in body["results"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == ["coop-2", "filler-21"] and first["total"] == 2  # French, tagged 5 or 8
    assert first["facets"]["lang"] == {"fr": 2} and first["facets"]["sdg"] == {"5": 2, "8": 1}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "abc"}, {"sdg": 18}, {"sdg": 0}, {"sdg": "x"}, {"mode": "fuzzy"},
     {"year_from": "last year"}, {"q": "x" * 1001}],
)
def test_bad_parameters_are_422(client: TestClient, params: dict) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code == 422 and "detail" in r.json()


def test_bad_cursor_is_400(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "cooperatives", "cursor": "garbage"})
    assert r.status_code == 400 and "cursor" in r.json()["detail"]
    other = client.get("/api/search", params={"q": "housing", "limit": 1}).json()["next_cursor"]
    assert client.get("/api/search", params={"q": "cooperatives", "cursor": other}).status_code == 400


def test_year_from_after_year_to_is_empty(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": "cooperatives", "year_from": 2022, "year_to": 2010}).json()
    assert body["total"] == 0 and body["results"] == []


def test_browse_without_query_is_newest_first_and_excludes_hidden(client: TestClient) -> None:
    body = client.get("/api/search", params={"limit": 100}).json()
    ids = [h["id"] for h in body["results"]]
    assert body["total"] == len(ids) and "hidden-1" not in ids and "gone-1" not in ids
    assert ids[0] == "energy-1" and ids[-1] == "nodate-1"
    stats = client.get("/api/stats").json()
    assert stats["documents"] == body["total"] and {k: stats[k] for k in FACETS} == body["facets"]


def test_document_and_unknown_document(client: TestClient) -> None:
    doc = client.get("/api/documents/coop-2").json()
    assert doc["id"] == "coop-2" and "autonomie" in doc["text"] and doc["title"] == "Les coopératives de femmes"
    assert [t["sdg"] for t in doc["sdgs"]] == [8, 5] and doc["sdgs"][0]["evidence"] and doc["sdgs"][0]["targets"] == ["8.1"]
    r = client.get("/api/documents/no-such:doc_1")
    assert r.status_code == 404 and "no-such:doc_1" in r.json()["detail"]
    assert client.get("/api/documents/hidden-1").status_code == 404
    assert client.get("/api/documents/gone-1").status_code == 404
    assert client.get("/api/documents/bad id!").status_code == 422


def test_similar(client: TestClient) -> None:
    body = client.get("/api/documents/filler-03/similar", params={"limit": 4}).json()
    assert set(body) == {"results"} and len(body["results"]) == 4
    assert all(set(h) == HIT_KEYS for h in body["results"]) and "filler-03" not in {h["id"] for h in body["results"]}
    assert client.get("/api/documents/nope/similar").status_code == 404


def test_sdgs(client: TestClient) -> None:
    goals = client.get("/api/sdgs").json()
    assert [g["sdg"] for g in goals] == list(range(1, 18))
    assert goals[0]["colour"] == "#E5243B" and all(set(g) == {"sdg", "short", "title", "colour", "documents"} for g in goals)
    assert goals[7]["documents"] == 3  # coop-1, coop-2, filler-07; hidden-1 and gone-1 do not count
    fr = client.get("/api/sdgs", params={"lang": "fr"}).json()
    assert fr[0]["title"] != goals[0]["title"]
    assert client.get("/api/sdgs", params={"lang": "xx"}).status_code == 422


def test_health(client: TestClient, search_corpus: SearchCorpus) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["documents"] == len(search_corpus.ids) - 1  # withdrawn is not a document
    assert body["chunks"] > body["documents"] and body["index"]["model"] == "hashing-256"


@pytest.mark.skipif(importlib.util.find_spec("ssehub.tagger") is None, reason="ssehub.tagger is not written yet")
def test_tag(client: TestClient) -> None:
    r = client.post("/api/tag", json={"text": "Women cooperatives improve gender equality and decent work."})
    assert r.status_code == 200
    sdgs = r.json()["sdgs"]
    assert all(set(t) == {"sdg", "score", "evidence"} and 1 <= t["sdg"] <= 17 for t in sdgs)
    assert [t["score"] for t in sdgs] == sorted((t["score"] for t in sdgs), reverse=True)
    for bad in ({}, {"text": ""}, {"text": "   "}, {"text": 5}):
        assert client.post("/api/tag", json=bad).status_code == 422
    assert client.post("/api/tag", json={"text": "x" * 1_100_000}).status_code == 413


def test_search_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in r.text and 'aria-live="polite"' in r.text and '<label for="q">' in r.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/search" in js.text and "next_cursor" in js.text
    assert client.get("/static/style.css").status_code == 200


def test_semantic_without_index_is_409_and_keyword_works(tmp_path) -> None:
    corpus = make_search_corpus(tmp_path / "data", index=False)
    with TestClient(create_app(corpus.settings, embedder=corpus.embedder)) as client:
        r = client.get("/api/search", params={"q": "renewable energy", "mode": "semantic"})
        assert r.status_code == 409 and "ssehub index" in r.json()["detail"]
        assert client.get("/api/search", params={"q": "renewable energy"}).json()["results"][0]["id"] == "energy-1"
        assert client.get("/health").json()["index"] is None
        corpus.rebuild_index()  # `ssehub index` runs while the server is up
        r = client.get("/api/search", params={"q": "renewable energy", "mode": "semantic"})
        assert r.status_code == 200 and r.json()["results"][0]["id"] == "energy-1"
    corpus.store.close()


def test_new_index_is_picked_up_without_restart(client: TestClient, search_corpus: SearchCorpus) -> None:
    built = client.get("/health").json()["index"]["built_at"]
    search_corpus.add("tidal-1", "unsse", "en", "report", "2024-01-01", [14], "Tidal lagoon cooperative",
                      ["A tidal lagoon cooperative produces marine energy for fishing villages."])
    time.sleep(0.01)
    search_corpus.rebuild_index()
    assert client.get("/health").json()["index"]["built_at"] > built
    hits = client.get("/api/search", params={"q": "tidal lagoon", "mode": "semantic"}).json()["results"]
    assert hits[0]["id"] == "tidal-1"


def test_cors_on_read_endpoints(search_corpus: SearchCorpus) -> None:
    settings = Settings(data_dir=search_corpus.settings.data_dir, model_path="hashing", cors_origins="https://hub.example")
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
        r = client.get("/api/sdgs", headers={"Origin": "https://hub.example"})
        assert r.headers["access-control-allow-origin"] == "https://hub.example"
        r = client.get("/api/sdgs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_concurrent_requests_share_the_store(client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = client.get("/api/search", params={"q": "cooperatives", "mode": "keyword", "limit": 5}).json()

    def one(i: int) -> dict:
        path = ("/api/search", "/api/stats", "/api/sdgs", "/health")[i % 4]
        r = client.get(path, params={"q": "cooperatives", "mode": "keyword", "limit": 5} if i % 4 == 0 else None)
        assert r.status_code == 200
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(one, range(80)))
    assert all(b == expected for b in bodies[::4])


def test_search_sort_by_date_is_newest_first_and_bad_sort_is_422(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": "cooperative", "sort": "date", "mode": "keyword"}).json()
    dates = [hit["published"] for hit in body["results"] if hit["published"]]
    assert dates == sorted(dates, reverse=True) and len(dates) >= 2
    assert client.get("/api/search", params={"q": "x", "sort": "oldest"}).status_code == 422


def test_tag_endpoint_honours_the_threshold_setting(search_corpus: SearchCorpus) -> None:
    text = {"text": "Women cooperatives improve gender equality and decent work."}
    for offset, expect_tags in ((0.0, True), (5.0, False)):  # scores are at most 1: an offset of 5 keeps nothing
        settings = Settings(data_dir=search_corpus.settings.data_dir, model_path="hashing", sdg_threshold=offset)
        with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
            assert bool(client.post("/api/tag", json=text).json()["sdgs"]) is expect_tags, offset
