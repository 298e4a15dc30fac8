"""Bad input found by an outside audit against CONTRACT.md: each case once gave a 5xx, a traceback or lost data."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import SearchCorpus, make_search_corpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from ssehub import importer
from ssehub.cli import cli
from ssehub.errors import ConfigError
from ssehub.importer import ImportReport, import_jsonl
from ssehub.settings import Settings
from ssehub.sources import MAX_SOURCES_BYTES, load_sources, parse_sources
from ssehub.status import check_sources, source_table
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


# -- sources.yaml ----------------------------------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """PyYAML keeps the last value silently: `enabled: false` above a forgotten `enabled: true` harvested the source."""
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - id: a\n    kind: feed\n    url: https://a.example/feed/\n    enabled: false\n"
                    "    enabled: true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'enabled' appears twice in one mapping \(line 6\)"):
        load_sources(path)
    problems, count = check_sources(path)
    assert count == 0 and len(problems) == 1 and "'enabled' appears twice" in problems[0]


def test_unreadable_sources_files_say_what_to_do(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("sources:\n  - id: a\n    name: Économie\n    kind: feed\n    url: https://a.example/\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text .*save the file as UTF-8"):
        load_sources(latin1)
    huge = tmp_path / "huge.yaml"
    with huge.open("w", encoding="utf-8") as f:  # would take a minute and 900 MB to parse
        f.write("sources:\n" + "  - {id: s, kind: feed, url: 'https://example.org/feed/'}\n" * (MAX_SOURCES_BYTES // 50))
    with pytest.raises(ConfigError, match="more than a sources file can be"):
        load_sources(huge)
    flat = tmp_path / "flat.yaml"
    flat.write_text("sources: {id: a}\n", encoding="utf-8")
    assert check_sources(flat) == ([f"{flat}: the top level must be a mapping with a list under `sources:`"], 0)


@pytest.mark.parametrize(("url", "says"), [
    ("https://exa mple.org/feed/", "space or control character"),
    ("https://example.org/feed/\t", "space or control character"),
    ("https://example.org:99999/", "not a valid URL"),
    ("https://example.org:http/", "not a valid URL"),
    ("https://:80/", "no host name"),
])
def test_urls_that_cannot_be_fetched_are_refused_when_the_file_is_checked(url: str, says: str) -> None:
    """They passed the old prefix check and failed only at harvest time."""
    good, problems = parse_sources({"sources": [{"id": "a", "kind": "feed", "url": url},
                                                {"id": "b", "kind": "crawl", "url": "https://b.example/",
                                                 "start_urls": [url], "documents": ["x"]}]})
    assert good == [] and len(problems) == 2 and all(says in p for p in problems), problems
    assert problems[0].startswith("source a: field url:") and problems[1].startswith("source b: field start_urls:")


# -- the command line ----------------------------------------------------------------------------------------------


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _one_line_error(result: Result, code: int = 1) -> str:
    """The contract's failure: a non-zero exit and one line on stderr, never a traceback."""
    assert result.exit_code == code and isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.stderr and result.stderr.strip(), result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_commands_that_read_the_store_do_not_create_one_in_a_mistyped_folder(tmp_path: Path) -> None:
    """`ssehub --data /srv/ssehb status` created an empty store there and reported 0 documents."""
    data, sources = tmp_path / "typo", tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML, encoding="utf-8")
    for command in ("status", "index"):
        line = _one_line_error(_cli("--data", str(data), "--sources", str(sources), command))
        assert line.startswith(f"error: no store at {data / 'ssehub.db'}: run `ssehub harvest` or `ssehub import`")
    listing = _cli("--data", str(data), "--sources", str(sources), "sources")  # the file's sources, nothing harvested
    assert listing.exit_code == 0 and listing.stdout.startswith("alpha ") and "never harvested" in listing.stdout
    assert not data.exists()


def test_tagging_no_text_is_a_usage_error() -> None:
    """An empty TEXT was tagged (SDG 16 at 0.69); POST /api/tag answers 422 for the same input."""
    for text in ("", "   \n"):
        assert "TEXT is empty" in _one_line_error(_cli("tag", text), code=2)


def test_a_busy_or_unwritable_store_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store locked by another writer gave sqlite3's traceback after the 30-s busy timeout."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "1", "text": "cooperative"}\n', encoding="utf-8")
    for exc, says in ((sqlite3.OperationalError("database is locked"), "another ssehub command is writing"),
                      (sqlite3.OperationalError("attempt to write a readonly database"), "writable and not full"),
                      (PermissionError(13, "Permission denied", str(path)), f"Permission denied: {path}")):
        def refuse(*args: object, exc: Exception = exc) -> None:
            raise exc
        monkeypatch.setattr(importer, "import_jsonl", refuse)
        assert says in _one_line_error(_cli("--data", str(tmp_path / "data"), "import", str(path)))


def test_a_backup_into_an_unusable_folder_is_one_line(corpus: SearchCorpus, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x", encoding="utf-8")
    line = _one_line_error(_cli("--data", str(corpus.settings.data_dir), "backup", str(not_a_folder / "b.db")))
    assert line.startswith(f"error: cannot copy {corpus.settings.store_path} to {not_a_folder / 'b.db'}")
    assert not_a_folder.read_text(encoding="utf-8") == "x"


def test_tag_jsonl_reports_empty_and_unencodable_lines_by_number(tmp_path: Path) -> None:
    """A lone surrogate reached the tokenizer and ended `ssehub tag --jsonl` with a TypeError traceback; an empty text
    was tagged."""
    from ssehub.tagging import _inputs

    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"id": 1, "text": "women cooperative"}\n{"id": 2, "text": "bad \\ud800"}\n{"id": 3, "text": " "}\n'
                     b'{"id": 4, "text": "fair trade"}\n')
    items = list(_inputs(None, path))
    assert [(i, t) for i, t, _ in items] == [(1, "women cooperative"), ("line 2", None), ("line 3", None), (4, "fair trade")]
    assert "surrogates not allowed" in items[1][2] and "non-empty" in items[2][2]


def test_a_forged_cursor_past_any_offset_is_an_invalid_cursor(api: tuple[TestClient, Path]) -> None:
    """A cursor of the right search with offset 10^22 reached numpy and came back as 400 'Maximum allowed size
    exceeded', which says nothing about what to do."""
    client, _ = api
    for params in ({"q": "cooperative", "limit": 1}, {"limit": 1}):
        cursor = client.get("/api/search", params=params).json()["next_cursor"]
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        for offset in (10**22, 2**63, 2**62):
            forged = base64.urlsafe_b64encode(json.dumps({"o": offset, "h": raw["h"]}).encode()).decode().rstrip("=")
            r = client.get("/api/search", params=params | {"cursor": forged})
            assert r.status_code == 400 and r.json()["detail"].startswith("invalid cursor"), (params, offset, r.text)


# -- harvester ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("allowed", "first", "target", "refused"), [
    (False, "https://93.184.216.34/feed/", "http://127.0.0.1:8000/admin", True),  # public -> loopback
    (False, "https://93.184.216.34/feed/", "http://169.254.169.254/latest/meta-data/", True),  # -> cloud metadata
    (False, "https://93.184.216.34/feed/", "http://[::ffff:10.0.0.1]/", True),  # -> private, spelt as IPv6
    (False, "https://93.184.216.34/feed/", "https://151.101.1.69/doc", False),  # public -> public
    (False, "http://127.0.0.1:8101/old", "http://127.0.0.1:8101/new", False),  # the operator's own local site
    (True, "https://93.184.216.34/feed/", "http://127.0.0.1:8000/admin", False),  # SSEHUB_ALLOW_PRIVATE_SOURCES
])
def test_a_redirect_from_a_public_host_into_a_private_network_is_refused(allowed: bool, first: str, target: str,
                                                                         refused: bool) -> None:
    """The API refuses private source URLs, but a public page's `302 Location: http://127.0.0.1...` led the harvester
    there (and into the search index). Literal addresses: no name is resolved."""
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.utils.test import get_crawler
    from twisted.python.failure import Failure

    from harvester.config import scrapy_settings
    from harvester.middlewares import PrivateRedirectMiddleware
    from harvester.spiders.base import failure_reason

    settings = scrapy_settings(Settings(allow_private_sources=allowed))
    assert settings["DOWNLOADER_MIDDLEWARES"]["harvester.middlewares.PrivateRedirectMiddleware"]
    middleware = PrivateRedirectMiddleware.from_crawler(get_crawler(settings_dict=settings))
    assert middleware.process_request(Request(target)) is None  # a first request is the source's own URL: trusted
    redirected = Request(target, meta={"redirect_urls": [first]})
    if not refused:
        assert middleware.process_request(redirected) is None
        return
    with pytest.raises(IgnoreRequest) as caught:
        middleware.process_request(redirected)
    assert failure_reason(Failure(caught.value))[0] == "private_redirect"


def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    """`ssehub serve --port 80000` reached socket.bind: OverflowError traceback."""
    for args, env in ((["serve", "--port", "80000"], {}), (["serve", "--port", "-5"], {}), (["demo", "--port", "70000"], {}),
                      (["serve"], {"SSEHUB_PORT": "70000"})):
        result = CliRunner(env=env).invoke(cli, ["--data", str(tmp_path / "data"), *args])
        assert "65535" in _one_line_error(result, code=2), args


def test_a_bad_setting_names_its_variable() -> None:
    result = CliRunner(env={"SSEHUB_RATE_LIMIT": "abc"}).invoke(cli, ["status"])
    line = _one_line_error(result, code=2)
    assert "SSEHUB_RATE_LIMIT='abc': Input should be a valid integer" in line and "errors.pydantic.dev" not in line


def test_pages_and_health_answer_head(api: tuple[TestClient, Path]) -> None:
    """Uptime monitors and link checkers ask with HEAD: it was 405 on every page and on /health."""
    client, _ = api
    for path in ("/", "/stats", "/admin", "/widget.js", "/health"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == 200 == got.status_code and head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path


def test_an_extraction_worker_survives_ctrl_c_and_leaves_quietly_when_the_crawler_is_gone() -> None:
    """Ctrl-C during a harvest printed two tracebacks per extraction worker (KeyboardInterrupt, then BrokenPipeError
    writing to the stopped crawler) under the command's one line."""
    import multiprocessing
    import pickle
    import signal
    import socket

    from harvester.work import HEADER, _serve

    page = (b"<html><body><article><p>" + b"Cooperatives share their surplus. " * 30 + b"</p></article></body></html>",
            "html", "utf-8", "text/html", "https://a.example/1")

    def send(f: object, jobs: list) -> None:
        data = pickle.dumps(jobs)
        f.write(HEADER.pack(len(data)) + data)  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]

    def answer(f: object) -> list:
        size = HEADER.unpack(f.read(HEADER.size))[0]  # type: ignore[attr-defined]
        return pickle.loads(f.read(size))  # type: ignore[attr-defined]

    ours, theirs = socket.socketpair()
    worker = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs, [ours]))
    worker.start()
    theirs.close()
    f = ours.makefile("rwb")
    send(f, [page])
    assert answer(f)[0].found.text  # in its loop, SIGINT already ignored
    os.kill(worker.pid, signal.SIGINT)
    send(f, [page])
    assert answer(f)[0].found.text  # still serving after Ctrl-C: the crawler decides when to stop
    send(f, [page] * 8)
    f.close()
    ours.close()  # the crawler is gone before the answer: the worker's write fails
    worker.join(30)
    assert worker.exitcode == 0


def test_status_shows_a_run_whose_process_is_gone_as_interrupted(tmp_path: Path) -> None:
    """After Ctrl-C on `ssehub demo` (its harvest child killed), `ssehub sources` and `status` said `running` until the
    next harvest."""
    import socket
    import subprocess
    import sys

    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", sources=sources)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    store = Store(settings.store_path)
    dead, live = store.start_run(["alpha"]), store.start_run(["beta"])
    store.set_run_process(dead, int(gone.stdout), socket.gethostname())
    store.set_run_process(live, os.getpid(), socket.gethostname())
    store.close()
    assert "last run 1 interrupted" in "\n".join(source_table(settings))
    store = Store(settings.store_path)
    assert {r["id"]: r["status"] for r in store.runs(limit=5)} == {dead: "interrupted", live: "running"}
    store.close()


def test_adding_a_source_when_the_sources_path_is_odd_is_never_a_500(corpus: SearchCorpus, tmp_path: Path) -> None:
    """SSEHUB_SOURCES naming a file in a folder not made yet, or a folder: POST /api/sources answered 500
    (FileNotFoundError from the temporary file, IsADirectoryError from the read)."""
    body = {"id": "gamma", "kind": "feed", "url": "https://gamma.example/feed"}
    for path, status in ((tmp_path / "new" / "sources.yaml", 201), (tmp_path, 422)):
        settings = Settings(data_dir=corpus.settings.data_dir, sources=path, model_path="hashing", curator_keys=KEY)
        with TestClient(create_app(settings, embedder=corpus.embedder), raise_server_exceptions=False) as client:
            r = client.post("/api/sources", json=body, headers=AUTH)
        assert r.status_code == status, r.text
        if status == 201:
            assert load_sources(path)[0].id == "gamma"
        else:
            assert "cannot be read" in r.json()["detail"][0] and "SSEHUB_SOURCES" in r.json()["detail"][0]


def test_searching_before_any_index_says_to_run_ssehub_index(tmp_path: Path) -> None:
    """`ssehub import` then `ssehub search` printed '0 documents' and nothing else; then '0 documents' and a note.
    Now it fails as the API does (409 in every mode): one line saying to run `ssehub index`, exit 1."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "1", "text": "Worker cooperatives share their surplus."}\n', encoding="utf-8")
    data = str(tmp_path / "data")
    assert _cli("--data", data, "import", str(path)).exit_code == 0
    result = _cli("--data", data, "search", "cooperatives", "--mode", "keyword")
    assert result.exit_code == 1 and not result.stdout
    assert result.stderr.startswith("error: ") and "run `ssehub index`" in result.stderr and result.stderr.count("\n") == 1
    browse = _cli("--data", data, "search")  # browsing needs no index: the document is listed, no note
    assert browse.exit_code == 0 and browse.stdout.startswith("1 documents") and not browse.stderr


def test_listing_sources_from_a_file_with_problems_fails_as_harvest_will(tmp_path: Path) -> None:
    """`ssehub sources` listed the valid entries of a file with a bad one and exited 0; `ssehub harvest` then refused
    the file. It still lists what it can, then names the first problem and exits 1."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES_YAML + "  - id: Bad Id\n    kind: feed\n    url: https://b.example/\n"
                       "  - id: c\n    kind: ftp\n", encoding="utf-8")
    result = _cli("--data", str(tmp_path / "data"), "--sources", str(sources), "sources")
    line = _one_line_error(result)
    assert result.stdout.startswith("alpha ")
    assert line.startswith(f"error: {sources}: source Bad Id: field id:") and "and 1 more: `ssehub sources check`" in line
