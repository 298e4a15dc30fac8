"""Bad input found by an outside audit against CONTRACT.md: each case once gave a 5xx, a traceback or lost data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SearchCorpus, make_search_corpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from ssehub.settings import Settings

KEY = "audit-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
SOURCES_YAML = "sources:\n  - id: alpha\n    kind: feed\n    url: https://alpha.example/feed/\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchCorpus]:
    c = make_search_corpus(tmp_path_factory.mktemp("audit") / "data")
    yield c
    c.store.close()


@pytest.fixture(scope="module")
def api(corpus: SearchCorpus) -> Iterator[tuple[TestClient, Path]]:
    sources = corpus.settings.data_dir.parent / "sources.yaml"
    sources.write_text(SOURCES_YAML, encoding="utf-8")
    settings = Settings(data_dir=corpus.settings.data_dir, sources=sources, model_path="hashing", curator_keys=KEY)
    with TestClient(create_app(settings, embedder=corpus.embedder), raise_server_exceptions=False) as client:
        yield client, sources


# -- HTTP: JSON bodies with a lone surrogate escape ------------------------------------------------------------------

# A JSON body may spell a lone UTF-16 surrogate ("\ud800"): valid JSON, but no UTF-8 string. The validation error that
# echoes it back once failed to encode: a 500 on every endpoint with a body.
SURROGATE_BODIES = [
    ("POST", "/api/tag", '{"text": "\\ud800"}'),
    ("POST", "/api/sources", '{"id": "gamma", "kind": "feed", "url": "https://g.example/", "delay": "\\udfff"}'),
    ("PUT", "/api/sources/alpha", '{"id": "alpha", "kind": "feed", "url": "\\ud800"}'),
    ("PATCH", "/api/documents/coop-1", '{"hidden": "\\ud800"}'),
    ("POST", "/api/harvest", '{"sources": ["\\ud800"]}'),
]


@pytest.mark.parametrize(("method", "path", "body"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_a_body_is_a_422_and_changes_nothing(api: tuple[TestClient, Path], corpus: SearchCorpus,
                                                                 method: str, path: str, body: str) -> None:
    client, sources = api
    before, counts = sources.read_text(encoding="utf-8"), corpus.store.counts()
    r = client.request(method, path, content=body.encode("ascii"), headers=AUTH)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail and all("msg" in e for e in detail)
    assert sources.read_text(encoding="utf-8") == before and corpus.store.counts() == counts
