"""Hostile input, property-based: sources files, JSON-lines imports, the query parser, every /api/search parameter,
HTML in harvested text, request bodies past the limit, and YAML that tries to run code."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SearchCorpus, make_search_corpus
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchapi.app import MAX_BODY_BYTES, create_app
from searchapi.query import parse
from ssehub.errors import ConfigError, ImportFormatError
from ssehub.importer import import_jsonl
from ssehub.sources import load_sources, parse_sources
from ssehub.store import Store

pytestmark = pytest.mark.timeout(300)
FAST = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
ROOT = Path(__file__).resolve().parents[1]
# Text that stresses parsers: FTS5 and SQL syntax, quotes, markup, control characters, astral and combining characters.
NASTY = st.sampled_from(['"', "'", '""', "*", "^", ":", "(", ")", "NEAR(", "AND", "OR", "NOT", "-", "--", "title:", "author:",
                         "'; DROP TABLE documents; --", "<script>alert(1)</script>", "\x00", "\u202e", "e\u0301", "🦘", "%",
                         "_", "\\", "{}", "[", "]", "+", "?", "\n", "\t"])
TEXT = st.lists(st.one_of(st.text(max_size=12), NASTY), max_size=12).map("".join)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | TEXT,
                       lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4), max_leaves=20)
SOURCE_ENTRY = st.fixed_dictionaries(
    {"id": st.one_of(TEXT, st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), JSONISH)},
    optional={"kind": st.one_of(st.sampled_from(["feed", "crawl", "sitemap", "oai-pmh", "wordpress", "import"]), JSONISH),
              "url": st.one_of(TEXT, st.just("https://a.example/"), JSONISH), "documents": JSONISH, "delay": JSONISH,
              "exclude": st.lists(TEXT, max_size=3), "bogus": JSONISH},
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchCorpus]:
    c = make_search_corpus(tmp_path_factory.mktemp("hostile") / "data")
    yield c
    c.store.close()


@pytest.fixture(scope="module")
def client(corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(corpus.settings, embedder=corpus.embedder), raise_server_exceptions=False) as c:
        yield c


# -- sources.yaml ---------------------------------------------------------------------------------------------------


@FAST
@given(data=st.one_of(JSONISH, st.fixed_dictionaries({"sources": st.lists(st.one_of(SOURCE_ENTRY, JSONISH), max_size=5)})))
def test_parse_sources_never_raises_and_reports_every_bad_entry(data: object) -> None:
    good, problems = parse_sources(data)
    assert all(isinstance(p, str) and p for p in problems)
    entries = data.get("sources") if isinstance(data, dict) and isinstance(data.get("sources"), list) else None
    if entries is not None:
        assert len(good) <= len(entries) and len({s.id for s in good}) == len(good)
        assert len(good) + len(problems) >= len(entries)  # every entry is either kept or named in a problem


@FAST
@given(text=st.one_of(TEXT, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_load_sources_raises_only_config_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("src") / "sources.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_sources(path)
    except ConfigError as exc:
        assert str(exc)


def test_yaml_tags_that_run_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for tag in ("!!python/object/apply:os.system", "!!python/object/apply:subprocess.check_call"):
        path = tmp_path / "sources.yaml"
        path.write_text(f"sources:\n  - id: x\n    kind: feed\n    url: {tag} [['touch', '{marker}']]\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_sources(path)
    assert not marker.exists()
    # Every YAML reader in the code uses safe loading (or ruamel's round-trip loader, which builds no objects).
    unsafe = [f"{p.relative_to(ROOT)}" for d in ("ssehub", "harvester", "indexer", "searchapi") for p in (ROOT / d).rglob("*.py")
              if re.search(r"yaml\.(load|unsafe_load|full_load)\(|Loader=yaml\.(Unsafe|Full)?Loader|YAML\(typ=.unsafe", p.read_text())]
    assert not unsafe, unsafe


# -- JSON-lines import ----------------------------------------------------------------------------------------------

GOOD_LINE = st.builds(lambda i, t: {"id": f"g{i}", "text": t + " cooperative"}, st.integers(0, 10**6), TEXT)
BAD_LINE = st.one_of(TEXT.filter(lambda s: "\n" not in s and "\r" not in s and s.strip()), JSONISH.map(json.dumps),
                     st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b and b.strip()))


def _json_array(content: bytes) -> bool:
    try:
        return isinstance(json.loads(content.decode("utf-8-sig")), list)
    except ValueError:
        return False


@FAST
@given(lines=st.lists(st.tuples(st.booleans(), GOOD_LINE, BAD_LINE), max_size=12))
def test_import_keeps_every_good_line_and_raises_nothing_else(tmp_path_factory: pytest.TempPathFactory, lines: list) -> None:
    tmp = tmp_path_factory.mktemp("imp")
    path, chunks, good_ids = tmp / "in.jsonl", [], set()
    for is_good, good, bad in lines:
        if is_good and good["id"] not in good_ids:
            good_ids.add(good["id"])
            chunks.append(json.dumps(good).encode())
        elif not is_good:
            chunks.append(bad if isinstance(bad, bytes) else bad.encode("utf-8", "surrogatepass"))
    path.write_bytes(b"\n".join(chunks))
    store = Store(tmp / "ssehub.db")
    try:
        if len(chunks) > 1 and _json_array(path.read_bytes()):  # a whole JSON array is refused as a file, unwritten
            with pytest.raises(ImportFormatError, match="a JSON array, not JSON lines"):
                import_jsonl(store, path, "hostile")
            return
        report = import_jsonl(store, path, "hostile")
        kept = {r[0] for r in store.db.execute("SELECT json_extract(extra, '$.import_id') FROM documents").fetchall()}
    finally:
        store.close()
    assert good_ids <= kept  # a bad line never costs a good one
    assert report.new == len(kept) and report.read == report.new + report.skipped
    assert all(re.match(r"line \d+: ", e) for e in report.errors)


def test_unusable_import_files_raise_import_format_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "ssehub.db")
    for path, source in ((tmp_path / "missing.jsonl", "ok"), (tmp_path, "ok"), (tmp_path / "x.jsonl", "Bad Id")):
        with pytest.raises(ImportFormatError):
            import_jsonl(store, path, source)
    store.close()


# -- query parser -> FTS5 -------------------------------------------------------------------------------------------


@FAST
@given(q=TEXT)
def test_no_query_is_ever_fts5_syntax(corpus: SearchCorpus, q: str) -> None:
    parsed = parse(q)
    if not parsed.empty:
        corpus.store.keyword_chunks(parsed.match(), 5)  # raises ValueError on an FTS5 syntax error
    for expr in parsed.required() + parsed.exclusions():
        corpus.store.keyword_documents(expr)


# -- every /api/search parameter ------------------------------------------------------------------------------------

PARAM = st.one_of(TEXT, st.integers(-10**20, 10**20).map(str), st.sampled_from(["", "0", "1", "17", "18", "hybrid", "keyword",
                                                                                 "semantic", "unsse", "en", "report"]))
NAMES = ["q", "sdg", "lang", "source", "type", "year_from", "year_to", "mode", "limit", "cursor", "sort"]


@FAST
@given(params=st.lists(st.tuples(st.sampled_from(NAMES), PARAM), max_size=8))
def test_search_answers_every_parameter_with_200_or_a_clear_4xx(client: TestClient, params: list[tuple[str, str]]) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code in (200, 400, 409, 422), (params, r.status_code, r.text[:300])
    body = r.json()
    if r.status_code != 200:
        assert body["detail"]
        return
    assert set(body) >= {"query", "total", "results", "facets", "next_cursor"}
    values = {name: [v for n, v in params if n == name and v] for name in NAMES}  # an empty one is not given
    if values["source"] and not set(values["source"]) & {"unsse", "ripess"}:
        assert body["total"] == 0  # a hostile filter value is data, never SQL: it matches nothing
    for hit in body["results"]:
        assert re.fullmatch(r"(?s)(?:[^<]|<mark>|</mark>)*", hit["snippet"]), hit["snippet"]


def test_sql_in_filters_is_matched_as_text_and_changes_nothing(client: TestClient, corpus: SearchCorpus) -> None:
    before = corpus.store.counts()
    for value in ["unsse' OR '1'='1", "x'); DELETE FROM documents; --", "unsse\" OR 1=1 --"]:
        for name in ("source", "lang", "type"):
            r = client.get("/api/search", params={name: value, "q": value})
            assert r.status_code == 200 and r.json()["total"] == 0, (name, value, r.text[:200])
    assert corpus.store.counts() == before


# -- markup in harvested and imported documents ----------------------------------------------------------------------

EVIL_TITLE = "Report <script>alert('t')</script><img src=x onerror=alert(1)>"
EVIL_TEXT = "Cooperatives <img src=x onerror=alert(2)> and <script>alert(3)</script> members <b onmouseover=x>share</b>."


def test_markup_in_documents_never_reaches_a_page_unescaped(tmp_path: Path) -> None:
    corpus = make_search_corpus(tmp_path / "data", index=False)
    corpus.add("evil-1", "unsse", "en", "report", "2024-01-01", [8], EVIL_TITLE, [EVIL_TEXT])
    corpus.rebuild_index()
    seen = 0
    with TestClient(create_app(corpus.settings, embedder=corpus.embedder)) as c:
        for params in ({"q": "cooperatives members"}, {"q": "script img onerror"}, {"source": "unsse"}):
            for hit in c.get("/api/search", params=params | {"limit": 100}).json()["results"]:
                if hit["id"] == "evil-1":
                    assert "<img" not in hit["snippet"] and "<script" not in hit["snippet"] and "<b " not in hit["snippet"]
                    assert "&lt;" in hit["snippet"] and "&gt;" in hit["snippet"]
                    seen += 1
                    assert hit["title"] == EVIL_TITLE  # JSON carries the raw title; the pages insert it as text
        assert seen == 3
        feed = c.get("/api/feeds/sdg/8").text
        assert "<script" not in feed and "<img" not in feed
    corpus.store.close()
    # The pages: innerHTML only ever takes the API's escaped snippet (or the widget's own constant stylesheet).
    for name in ("app.js", "widget.js", "admin.js", "stats.js"):
        source = (ROOT / "searchapi" / "static" / name).read_text(encoding="utf-8")
        for line in re.findall(r"^.*(?:innerHTML|outerHTML|insertAdjacentHTML|document\.write).*$", source, re.MULTILINE):
            assert re.search(r"\b(hit|h)\.snippet;", line) or "root.innerHTML = `<style>" in line, (name, line)


def test_imported_javascript_urls_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "1", "text": "cooperative text", "url": "javascript:alert(document.cookie)"}) + "\n")
    store = Store(tmp_path / "ssehub.db")
    report = import_jsonl(store, path, "lib")
    store.close()
    assert report.skipped == 1 and "url" in report.errors[0]


# -- request size ---------------------------------------------------------------------------------------------------


def test_bodies_past_the_limit_are_413_and_never_parsed(client: TestClient) -> None:
    big = json.dumps({"text": "cooperative " * (MAX_BODY_BYTES // 12 + 10)})
    assert client.post("/api/tag", content=big, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds for a streamed body too
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    assert client.post("/api/tag", content=chunks(), headers={"Content-Type": "application/json"}).status_code == 413
    assert client.post("/api/tag", json={"text": "cooperatives"}).status_code == 200
    long_q = client.get("/api/search", params={"q": "x" * 5000})
    assert long_q.status_code == 422
