"""Curator endpoints: the key, sources written back to sources.yaml with comments kept, harvests, tags and hiding."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.auth import is_curator_route, key_is_valid
from ssehub.settings import Settings

KEY = "s3cret-curator-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SOURCES_YAML = """\
# Curators' sources. This comment must survive every edit.
sources:
  # the first source
  - id: alpha
    name: Alpha
    kind: feed
    url: https://alpha.example/feed/
    # UNVERIFIED: alpha's feed path
    delay: 1.0
    languages: [en, fr]

  # the second source, kept disabled
  - id: beta
    kind: crawl
    url: https://beta.example/
    enabled: false
    documents: ['/doc-\\d+$']
"""


@pytest.fixture
def curated(search_corpus: SearchCorpus, tmp_path: Path) -> Iterator[tuple[TestClient, Path, SearchCorpus]]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML, encoding="utf-8")
    settings = Settings(data_dir=search_corpus.settings.data_dir, sources=sources, model_path="hashing",
                        curator_keys=f"other-key, {KEY}")
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
        yield client, sources, search_corpus


CURATOR_CALLS: list[tuple[str, str, dict | None]] = [
    ("GET", "/api/sources", None),
    ("POST", "/api/sources", {"id": "gamma", "kind": "feed", "url": "https://gamma.example/feed"}),
    ("PUT", "/api/sources/alpha", {"id": "alpha", "kind": "feed", "url": "https://alpha.example/feed/", "enabled": False}),
    ("DELETE", "/api/sources/alpha", None),
    ("POST", "/api/harvest", {"sources": ["alpha"]}),
    ("GET", "/api/harvest/runs", None),
    ("GET", "/api/harvest/runs/1", None),
    ("PATCH", "/api/documents/coop-1", {"hidden": True}),
    ("PATCH", "/api/documents/coop-1", {"sdgs": [1]}),
    ("GET", "/api/admin/documents/hidden-1", None),
    ("GET", "/api/admin/hidden", None),
]
BAD_AUTH = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"},
            {"Authorization": "Bearer "}, {"Authorization": f"Bearer {KEY}x"}]


@pytest.mark.parametrize("method,path,body", CURATOR_CALLS)
def test_every_curator_endpoint_is_401_without_a_valid_key_and_changes_nothing(curated, method, path, body) -> None:
    client, sources, corpus = curated
    before_file = sources.read_text()
    before_doc = corpus.store.document("coop-1")
    runs_before = corpus.store.runs()
    for headers in BAD_AUTH:
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer" and "curator key" in r.json()["detail"]
    r = client.request(method, path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401  # refused before the body is even parsed
    assert sources.read_text() == before_file and corpus.store.document("coop-1") == before_doc
    assert corpus.store.runs() == runs_before


def test_no_configured_key_disables_curator_endpoints(search_corpus: SearchCorpus) -> None:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as client:
        r = client.get("/api/sources", headers={"Authorization": "Bearer "})
        assert r.status_code == 401 and "SSEHUB_CURATOR_KEYS" in r.json()["detail"]
        assert client.get("/api/search").status_code == 200  # read endpoints stay open


def test_key_checks() -> None:
    assert key_is_valid("b", ["a", "b"]) and not key_is_valid("c", ["a", "b"]) and not key_is_valid("", [""])
    assert not key_is_valid("a", []) and not key_is_valid(None, ["a"]) and key_is_valid("clé", ["clé"])
    assert is_curator_route("PATCH", "/api/documents/x") and not is_curator_route("GET", "/api/documents/x")
    assert is_curator_route("GET", "/api/harvest/runs") and not is_curator_route("GET", "/api/search")


def test_list_sources_with_store_info(curated) -> None:
    client, _, _ = curated
    body = client.get("/api/sources", headers=AUTH).json()
    by_id = {s["id"]: s for s in body["sources"]}
    assert by_id["alpha"]["in_file"] and by_id["alpha"]["languages"] == ["en", "fr"] and by_id["beta"]["enabled"] is False
    assert body["problems"] == [] and body["file"].endswith("sources.yaml")
    assert by_id["alpha"]["last_run"] is None and by_id["alpha"]["document_count"] == 0


def test_add_edit_disable_delete_keep_comments(curated) -> None:
    client, sources, corpus = curated
    new = {"id": "gamma", "name": "Gamma & co: #1", "kind": "crawl", "url": "https://gamma.example/",
           "documents": ["/papers/[^/]+\\.pdf$"], "languages": ["es"], "delay": 0.5}
    r = client.post("/api/sources", json=new, headers=AUTH)
    assert r.status_code == 201 and r.json()["id"] == "gamma"
    assert client.post("/api/sources", json=new, headers=AUTH).status_code == 409
    alpha = {"id": "alpha", "name": "Alpha", "kind": "feed", "url": "https://alpha.example/feed/", "delay": 1.0,
             "languages": ["en", "fr"], "enabled": False}
    r = client.put("/api/sources/alpha", json=alpha, headers=AUTH)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.delete("/api/sources/beta", headers=AUTH).json() == {"deleted": "beta", "documents_kept": 0}
    text = sources.read_text()
    for comment in ("# Curators' sources. This comment must survive every edit.", "# the first source",
                    "# UNVERIFIED: alpha's feed path"):
        assert comment in text
    assert "# the second source" not in text and "beta" not in text  # beta's own comment went with it
    data = yaml.safe_load(text)["sources"]
    assert [s["id"] for s in data] == ["alpha", "gamma"]
    assert data[0]["enabled"] is False and data[0]["languages"] == ["en", "fr"]
    assert data[1] == new  # regexes, '&', ':' and '#' survive the round trip
    assert "languages: [en, fr]" in text  # untouched lines keep their style
    assert {s["id"] for s in corpus.store.sources()} >= {"alpha", "gamma"}
    listed = {s["id"]: s for s in client.get("/api/sources", headers=AUTH).json()["sources"]}
    assert set(listed) == {"alpha", "gamma"}
    # what GET lists can be PUT back as it is (the admin page's "Disable" does so)
    view = {k: v for k, v in listed["gamma"].items() if k not in ("in_file", "origin", "document_count", "last_run")}
    assert client.put("/api/sources/gamma", json=view | {"enabled": False}, headers=AUTH).status_code == 200
    assert yaml.safe_load(sources.read_text())["sources"][1] == new | {"enabled": False}
    assert not list(sources.parent.glob(".sources.yaml.*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "body,field",
    [
        ({"id": "Bad-Id", "kind": "feed", "url": "https://x.example/"}, "id"),
        ({"id": "x", "kind": "gopher", "url": "https://x.example/"}, "kind"),
        ({"id": "x", "kind": "feed", "url": "ftp://x.example/"}, "url"),
        ({"id": "x", "kind": "feed"}, "url"),
        ({"id": "x", "kind": "crawl", "url": "https://x.example/"}, "documents"),
        ({"id": "x", "kind": "feed", "url": "https://x.example/", "exclude": ["(unclosed"]}, "exclude"),
        ({"id": "x", "kind": "feed", "url": "https://x.example/", "delay": -1}, "delay"),
        ({"id": "x", "kind": "feed", "url": "https://x.example/", "colour": "red"}, "colour"),
    ],
)
def test_invalid_sources_are_422_naming_the_field(curated, body, field) -> None:
    client, sources, _ = curated
    before = sources.read_text()
    r = client.post("/api/sources", json=body, headers=AUTH)
    assert r.status_code == 422
    detail = r.json()["detail"]
    names = [".".join(str(p) for p in e["loc"]) if isinstance(e, dict) else e for e in detail]
    assert any(field in n for n in names), detail
    assert sources.read_text() == before


def test_put_and_delete_errors(curated) -> None:
    client, sources, _ = curated
    before = sources.read_text()
    r = client.put("/api/sources/alpha", json={"id": "other", "kind": "feed", "url": "https://a.example/"}, headers=AUTH)
    assert r.status_code == 422 and "field id" in r.json()["detail"][0]
    assert client.put("/api/sources/nope", json={"id": "nope", "kind": "feed", "url": "https://a.example/"},
                      headers=AUTH).status_code == 404
    assert client.delete("/api/sources/nope", headers=AUTH).status_code == 404
    assert client.delete("/api/sources/Bad!", headers=AUTH).status_code == 422
    assert sources.read_text() == before


def test_patch_document_tags_and_hiding(curated) -> None:
    client, _, _ = curated
    r = client.patch("/api/documents/coop-1", json={"sdgs": [5, 8, 5]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["manual_sdgs"] == [5, 8]
    assert {t["sdg"] for t in client.get("/api/documents/coop-1").json()["sdgs"]} == {5, 8}
    assert client.get("/api/search", params={"sdg": 5, "limit": 100}).json()["facets"]["sdg"]["5"] >= 2
    r = client.patch("/api/documents/coop-1", json={"sdgs": None}, headers=AUTH)
    assert r.json()["manual_sdgs"] is None and [t["sdg"] for t in r.json()["sdgs"]] == [8]
    assert client.patch("/api/documents/coop-1", json={"sdgs": []}, headers=AUTH).json()["sdgs"] == []
    r = client.patch("/api/documents/coop-1", json={"hidden": True}, headers=AUTH)
    assert r.json()["hidden"] is True and client.get("/api/documents/coop-1").status_code == 404
    assert "coop-1" not in {h["id"] for h in client.get("/api/search", params={"q": "worker cooperatives"}).json()["results"]}
    assert [d["id"] for d in client.get("/api/admin/hidden", headers=AUTH).json()["documents"]] == ["coop-1", "hidden-1"]
    assert client.get("/api/admin/documents/coop-1", headers=AUTH).json()["hidden"] is True
    client.patch("/api/documents/coop-1", json={"hidden": False}, headers=AUTH)
    assert client.get("/api/documents/coop-1").status_code == 200


@pytest.mark.parametrize("body", [{}, {"sdgs": [18]}, {"sdgs": [0]}, {"sdgs": "5"}, {"hidden": None}, {"hidden": "maybe"},
                                  {"tags": [5]}, [5]])
def test_bad_patches_are_422_and_change_nothing(curated, body) -> None:
    client, _, corpus = curated
    before = corpus.store.document("coop-1")
    assert client.patch("/api/documents/coop-1", json=body, headers=AUTH).status_code == 422
    assert corpus.store.document("coop-1") == before


def test_patch_unknown_document_is_404(curated) -> None:
    client, _, _ = curated
    assert client.patch("/api/documents/nope", json={"hidden": True}, headers=AUTH).status_code == 404


def test_harvest_requests_are_validated(curated) -> None:
    client, _, _ = curated
    for body, word in (({"sources": ["nope"]}, "unknown source nope"), ({"sources": ["BAD"]}, "sources"),
                       ({"ids": ["alpha"]}, "ids")):
        r = client.post("/api/harvest", json=body, headers=AUTH)
        assert r.status_code == 422 and word in str(r.json()["detail"])
    assert client.get("/api/harvest/runs/999", headers=AUTH).status_code == 404
    assert client.get("/api/harvest/runs/0", headers=AUTH).status_code == 422


FEED_SOURCES = """\
# harvested by the API test
sources:
  - id: news
    kind: feed
    url: {feed}/rss.xml
    delay: 0
  - id: broken
    kind: feed
    url: http://127.0.0.1:9/nothing.xml
    delay: 0
    enabled: false
"""


@pytest.mark.parametrize("index", [True, False])
def test_harvest_runs_in_a_subprocess_and_reports_progress(
    search_corpus: SearchCorpus, tmp_path: Path, fixture_sites: Path, serve_folders: Callable[..., object],
    caplog: pytest.LogCaptureFixture, index: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="searchapi.harvests")
    group = serve_folders({"feed": fixture_sites / "feed"})
    sources = tmp_path / "sources.yaml"
    sources.write_text(FEED_SOURCES.format(feed=group.urls["feed"]), encoding="utf-8")  # type: ignore[attr-defined]
    settings = Settings(data_dir=search_corpus.settings.data_dir, sources=sources, model_path="hashing", curator_keys=KEY)
    with TestClient(create_app(settings, embedder=search_corpus.embedder)) as client:
        r = client.post("/api/harvest", json={"sources": ["news", "broken"], **({} if index else {"index": False})},
                        headers=AUTH)
        assert r.status_code == 202
        run_id = r.json()["run_id"]
        assert client.post("/api/harvest", json={}, headers=AUTH).status_code == 409  # one at a time
        deadline = time.monotonic() + 120
        while (run := client.get(f"/api/harvest/runs/{run_id}", headers=AUTH).json())["status"] == "running":
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert run["status"] == "finished" and run["kind"] == "harvest-request"
        assert sorted(r["sources"][0] for r in run["runs"]) == ["broken", "news"]
        assert run["counts"]["new"] >= 3 and run["counts"]["failed"] >= 1
        assert any(e["source_id"] == "broken" for e in run["errors"])
        listed = client.get("/api/harvest/runs", headers=AUTH).json()
        assert listed["running"] is None and listed["runs"][-1]["id"] == run_id
        news = {s["id"]: s for s in client.get("/api/sources", headers=AUTH).json()["sources"]}["news"]
        assert news["document_count"] >= 3 and news["last_run"]["status"] == "finished"
        assert client.get("/api/search", params={"source": "news"}).json()["total"] == news["document_count"]
        # by default the request indexes what it harvested: searchable at once, with no `ssehub index` in a shell
        found = client.get("/api/search", params={"q": "bakery cooperative shop", "source": "news"}).json()
        if index:
            assert found["total"] >= 1 and found["results"][0]["title"] == "Bakery cooperative opens its third shop"
        else:  # {"index": false}: stored, listed, not yet searchable by words (as every request was before)
            assert found["total"] == 0
        assert ("indexing what it stored" in caplog.text) is index


def test_broken_sources_file_is_reported_not_overwritten(curated) -> None:
    client, sources, _ = curated
    sources.write_text("sources:\n  - id: alpha\n    kind: [feed\n", encoding="utf-8")
    body = client.get("/api/sources", headers=AUTH).json()
    assert body["sources"] == [] and "not valid YAML" in body["problems"][0]
    r = client.post("/api/sources", json={"id": "x", "kind": "feed", "url": "https://x.example/"}, headers=AUTH)
    assert r.status_code == 422 and "fix it by hand" in r.json()["detail"][0]
    assert sources.read_text() == "sources:\n  - id: alpha\n    kind: [feed\n"


def test_first_source_creates_the_file(curated) -> None:
    client, sources, _ = curated
    sources.unlink()
    r = client.post("/api/sources", json={"id": "x", "kind": "feed", "url": "https://x.example/"}, headers=AUTH)
    assert r.status_code == 201
    assert yaml.safe_load(sources.read_text()) == {"sources": [{"id": "x", "kind": "feed", "url": "https://x.example/"}]}
