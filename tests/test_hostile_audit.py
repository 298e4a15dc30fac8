"""Bad input found by an outside audit against CONTRACT.md: each case once gave a 5xx, a traceback or lost data."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SearchCorpus, make_search_corpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from ssehub import importer
from ssehub.importer import ImportReport, import_jsonl
from ssehub.settings import Settings
from ssehub.store import Store

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


# -- JSON-lines import ---------------------------------------------------------------------------------------------


def _import(tmp_path: Path, lines: list[bytes], traced: bool = False) -> tuple[ImportReport, set[str], int]:
    """Import the lines as source `lib`: the report, the ids kept, and (traced) the import's peak traced memory."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    del lines
    store = Store(tmp_path / "ssehub.db")
    if traced:
        tracemalloc.start()
    try:
        report = import_jsonl(store, path, "lib")
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        kept = {r[0] for r in store.db.execute("SELECT json_extract(extra, '$.import_id') FROM documents").fetchall()}
    finally:
        tracemalloc.stop()
        store.close()
    return report, kept, peak


def test_a_lone_surrogate_costs_its_line_only(tmp_path: Path) -> None:
    """It once passed validation, failed in the store and ended the import with a traceback: later lines were lost."""
    report, kept, _ = _import(tmp_path, [
        b'{"id": "1", "text": "cooperative one"}',
        b'{"id": "2", "text": "bad \\ud800 text"}',
        b'{"id": "3", "text": "fine", "authors": ["\\udfff"]}',
        b'{"id": "4", "text": "an astral pair is fine \\ud83e\\udd98"}',
        b'{"id": "5", "text": "cooperative five"}',
    ])
    assert kept == {"1", "4", "5"} and report.new == 3 and report.skipped == 2
    assert report.errors[0].startswith("line 2: field 'text'") and report.errors[1].startswith("line 3: field 'authors'")
    assert all("surrogate" in e for e in report.errors)


def test_an_impossible_month_is_refused(tmp_path: Path) -> None:
    report, kept, _ = _import(tmp_path, [b'{"id": "1", "text": "a", "published": "2020-13"}',
                                      b'{"id": "2", "text": "b", "published": "2020-02-30"}',
                                      b'{"id": "3", "text": "c", "published": "2020-12"}'])
    assert kept == {"3"} and [e[:8] for e in report.errors] == ["line 1: ", "line 2: "]
    assert "not a real date" in report.errors[0]


def test_a_huge_line_is_skipped_without_being_held_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_LINE_BYTES", 100_000)
    huge = b'{"id": "big", "text": "' + b"x" * 8_000_000 + b'"}'
    lines = [b'{"id": "1", "text": "one"}', huge, b'{"id": "2", "text": "two"}', huge[:-2]]
    del huge
    report, kept, peak = _import(tmp_path, lines, traced=True)
    assert kept == {"1", "2"} and report.read == 4
    assert report.errors == ["line 2: line longer than 100000 bytes", "line 4: line longer than 100000 bytes"]
    assert peak < 4_000_000, peak  # the 8 MB lines were never read whole
