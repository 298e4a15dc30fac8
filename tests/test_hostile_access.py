"""Access: the SSRF guard on sources added or edited through the API, and curator keys (401, nothing changed).

Missing, wrong and malformed keys on every curator endpoint are tested in tests/test_api_curator.py
(`test_every_curator_endpoint_is_401_without_a_valid_key_and_changes_nothing`); here a key that was valid and is
revoked (the "expired" case: keys have no lifetime, an operator removes one from SSEHUB_CURATOR_KEYS) is refused too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from ssehub.netguard import address_kind, url_problem
from ssehub.settings import Settings

KEY = "hostile-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SOURCES_YAML = """\
sources:
  - id: local
    kind: feed
    url: http://127.0.0.1:8102/rss.xml
"""


def client_for(corpus: SearchCorpus, sources: Path, keys: str = KEY, allow: bool = False) -> TestClient:
    settings = Settings(data_dir=corpus.settings.data_dir, sources=sources, model_path="hashing", curator_keys=keys,
                        allow_private_sources=allow)
    return TestClient(create_app(settings, embedder=corpus.embedder))


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES_YAML, encoding="utf-8")
    return path


@pytest.fixture
def client(search_corpus: SearchCorpus, sources: Path) -> Iterator[TestClient]:
    with client_for(search_corpus, sources) as c:
        yield c


PRIVATE = [
    ("http://127.0.0.1/feed", "loopback"),
    ("http://127.1:8080/", "loopback"),  # short form, resolved by getaddrinfo
    ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
    ("http://10.0.0.1/", "private"),
    ("https://192.168.1.20/oai", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata service
    ("http://[::1]:8000/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[fe80::1]/", "link-local"),
    ("http://localhost:8000/feed", "loopback"),  # a name that resolves to loopback
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
]


@pytest.mark.parametrize("url,kind", PRIVATE)
def test_post_of_a_source_at_a_private_address_is_422_and_changes_nothing(client: TestClient, sources: Path, url: str,
                                                                           kind: str) -> None:
    before = sources.read_text()
    r = client.post("/api/sources", json={"id": "evil", "kind": "feed", "url": url}, headers=AUTH)
    assert r.status_code == 422, r.text
    detail = " ".join(r.json()["detail"])
    assert f"a {kind} address" in detail and "field url" in detail and "SSEHUB_ALLOW_PRIVATE_SOURCES" in detail
    assert sources.read_text() == before


def test_start_urls_and_edits_are_checked_but_the_operators_own_urls_are_trusted(client: TestClient, sources: Path) -> None:
    crawl = {"id": "c", "kind": "crawl", "url": "https://93.184.215.14/", "documents": ["/doc"],
             "start_urls": ["http://10.1.2.3/list"]}
    r = client.post("/api/sources", json=crawl, headers=AUTH)
    assert r.status_code == 422 and "field start_urls" in r.json()["detail"][0]
    # Disabling the file's own loopback source keeps its URL: allowed. Pointing it elsewhere private: refused.
    local = {"id": "local", "kind": "feed", "url": "http://127.0.0.1:8102/rss.xml", "enabled": False}
    assert client.put("/api/sources/local", json=local, headers=AUTH).status_code == 200
    r = client.put("/api/sources/local", json=local | {"url": "http://169.254.169.254/"}, headers=AUTH)
    assert r.status_code == 422 and "link-local" in r.json()["detail"][0]
    assert "169.254" not in sources.read_text()


def test_public_and_unresolvable_hosts_are_allowed(client: TestClient) -> None:
    for i, url in enumerate(["https://93.184.215.14/feed", "https://unsse.example/feed"]):
        assert client.post("/api/sources", json={"id": f"ok{i}", "kind": "feed", "url": url}, headers=AUTH).status_code == 201


def test_the_setting_allows_private_sources(search_corpus: SearchCorpus, sources: Path) -> None:
    with client_for(search_corpus, sources, allow=True) as c:
        r = c.post("/api/sources", json={"id": "lab", "kind": "feed", "url": "http://10.0.0.1/feed"}, headers=AUTH)
        assert r.status_code == 201 and "10.0.0.1" in sources.read_text()
    assert Settings(_env_file=None).allow_private_sources is False


def test_address_kinds() -> None:
    assert address_kind("8.8.8.8") is None and address_kind("2001:4860:4860::8888") is None
    assert address_kind("100.64.0.1") == "non-global"  # carrier-grade NAT
    assert address_kind("::") == "unspecified"
    assert url_problem("http://x.example/", resolver=lambda h: ["93.184.215.14", "10.0.0.7"]) is not None  # any one is enough
    assert url_problem("http:///nohost") is not None


def test_a_revoked_key_is_refused_and_changes_nothing(search_corpus: SearchCorpus, sources: Path) -> None:
    with client_for(search_corpus, sources, keys=f"{KEY},newer") as c:
        assert c.patch("/api/documents/coop-1", json={"hidden": True}, headers=AUTH).status_code == 200
        assert c.patch("/api/documents/coop-1", json={"hidden": False}, headers=AUTH).status_code == 200
    before = search_corpus.store.document("coop-1")
    with client_for(search_corpus, sources, keys="newer") as c:  # the operator removed the key
        r = c.patch("/api/documents/coop-1", json={"hidden": True}, headers=AUTH)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/api/sources", json={"id": "z", "kind": "feed", "url": "https://z.example/"}, headers=AUTH).status_code == 401
    assert search_corpus.store.document("coop-1") == before and "id: z" not in sources.read_text()
