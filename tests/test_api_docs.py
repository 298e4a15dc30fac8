"""The API reference page (/docs) names only this server's files, and only those files are served."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def test_reference_page_loads_its_files_from_this_server(client: TestClient) -> None:
    path = "/docs"
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    linked = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']|spec-url=["']([^"']+)["']""", r.text)
    urls = [u for group in linked for u in group if u]
    assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls)
    assert not [u for u in urls if "//" in u], f"{path} loads files from other hosts: {urls}"
    for url in urls:
        got = client.get(url)
        assert got.status_code == 200 and len(got.content) > 1000, url
    assert client.head(path).status_code == 200


def test_only_the_named_files_are_served(client: TestClient) -> None:
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript") and "max-age" in js.headers["cache-control"]
    assert client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    for name in ("core.py", "LICENSE", "%2E%2E"):
        r = client.get(f"/docs/assets/{name}")
        assert r.status_code == 404 and "/docs" in r.json()["detail"], name
    for name in ("..%2F__init__.py", "%2E%2E%2Fcore.py"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name
    assert client.get("/docs/assets/../../searchapi/app.py").status_code == 404
    assert "/docs" not in client.get("/openapi.json").json()["paths"]  # pages, not API endpoints
    assert client.get("/redoc").status_code == 404  # its script asks redoc.ly for a logo
