"""Round 2 of the users' audit, a curator's harvests: sources.yaml edited between two harvests, and what
`ssehub index` does afterwards. Harvests run as `ssehub harvest` subprocesses against the crawl fixture site."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import THREE_SITES_SOURCES
from test_reliability_crash import cli, hashing_env

from ssehub.store import Store

pytestmark = pytest.mark.timeout(180)


def _ssehub(data: Path, sources: Path, *args: str) -> str:
    done = subprocess.run(cli(data, "--sources", str(sources), *args), env=hashing_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _search(data: Path, sources: Path, query: str) -> list[str]:
    found = json.loads(_ssehub(data, sources, "search", query, "--mode", "keyword", "--json", "--limit", "100"))
    return [hit["url"].rsplit("/", 1)[-1] for hit in found["results"]]


def test_an_exclude_pattern_added_later_withdraws_and_removing_it_brings_back(
    tmp_path: Path, fixture_sites: Path, serve_folders: Callable[..., object],
) -> None:
    """A curator added `exclude: ['/papers/wp-7']` after a first harvest: the stored page stayed in search for ever
    (an excluded URL is never fetched again, so no 404 withdrew it). It is now withdrawn by the next harvest. When the
    pattern was removed, the page came back active, but `ssehub index` skipped it (its indexed_hash still matched the
    chunks it had dropped) and no search found it: it is indexed again."""
    group = serve_folders({"crawl": fixture_sites / "crawl"})
    plain = THREE_SITES_SOURCES.format(sitemap="http://127.0.0.1:9", feed="http://127.0.0.1:9", **group.urls)  # type: ignore[attr-defined]
    sources, data = tmp_path / "sources.yaml", tmp_path / "data"
    sources.write_text(plain, encoding="utf-8")
    first = _ssehub(data, sources, "harvest", "centre")
    # the report says what each failure asks of the curator, and what comes next
    assert "    http_404 1: the page is gone" in first and "    redirect_loop 1: the URL redirects in a loop" in first
    assert first.rstrip().endswith("Next: ssehub index") and "The failed URLs: ssehub sources" in first
    _ssehub(data, sources, "index")
    assert "wp-7.html" in _search(data, sources, "platform cooperatives")

    sources.write_text(plain.replace("    max_depth: 2\n", "    max_depth: 2\n    exclude: ['/papers/wp-7']\n"), encoding="utf-8")
    report = _ssehub(data, sources, "harvest", "centre")
    assert "withdrawn 1" in report, report
    indexed = _ssehub(data, sources, "index")
    assert "removed 1" in indexed and "wp-7.html" not in _search(data, sources, "platform cooperatives")

    sources.write_text(plain, encoding="utf-8")
    report = _ssehub(data, sources, "harvest", "centre")
    assert "updated 1" in report and "withdrawn 0" in report, report
    indexed = _ssehub(data, sources, "index")
    assert "documents 1," in indexed, indexed  # just that one
    assert "wp-7.html" in _search(data, sources, "platform cooperatives")
    store = Store(data / "ssehub.db")
    try:
        counts = store.counts()
        assert counts["withdrawn"] == 0 and counts["indexed"] == counts["documents"]
    finally:
        store.close()


def test_a_run_s_errors_say_what_to_do(tmp_path: Path) -> None:
    """/api/harvest/runs/{id} listed each failed URL with a reason code (http_429, no_text, bad_feed) and no word on
    what to do about it; each error now carries `advice` ('' for a reason with nothing to say)."""
    from fastapi.testclient import TestClient

    from searchapi.app import create_app
    from ssehub.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", model_path="hashing", curator_keys="k")
    store = Store(settings.store_path)
    run = store.start_run(["news"])
    for reason in ("http_429", "http_502", "no_text", "something_new"):
        store.add_run_error(run, "news", f"https://example.org/{reason}", reason, "detail")
    store.close()
    with TestClient(create_app(settings)) as client:
        errors = client.get(f"/api/harvest/runs/{run}", headers={"Authorization": "Bearer k"}).json()["errors"]
    advice = {e["reason"]: e["advice"] for e in errors}
    assert "raise the source's `delay`" in advice["http_429"] and "harvest again later" in advice["http_502"]
    assert "`exclude` pattern" in advice["no_text"] and advice["something_new"] == ""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<main><article><h1>{title}</h1>{body}</article></main></body></html>")


def test_a_short_page_reached_by_two_sources_is_one_document(tmp_path: Path, serve_folders: Callable[..., object]) -> None:
    """Texts under 20 word 5-grams are too short for MinHash, so the same short page reached by a second source (or
    a renamed source, or a site moved to another host) was stored as a second document, and both were listed. The
    very same record (title, text, date, authors, type) is now one document; a different page with the same
    one-line text keeps its own."""
    site = tmp_path / "site"
    (site / "notes").mkdir(parents=True)
    short = "<p>The cooperative café opens on Saturdays from nine to noon.</p>"
    (site / "notes" / "cafe.html").write_text(_page("Café hours", short), encoding="utf-8")
    (site / "notes" / "other.html").write_text(_page("Bakery hours", short), encoding="utf-8")  # same text, not the same
    (site / "index.html").write_text(_page("Notes", '<a href="/notes/cafe.html">Café</a> <a href="/notes/other.html">Bakery</a>'),
                                     encoding="utf-8")
    (site / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    group = serve_folders({"site": site})
    base = group.urls["site"]  # type: ignore[attr-defined]
    (site / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}/notes/cafe.html</loc></url></urlset>", encoding="utf-8")
    sources, data = tmp_path / "sources.yaml", tmp_path / "data"
    sources.write_text(f"""sources:
  - id: by_sitemap
    kind: sitemap
    url: {base}/
    delay: 0
  - id: by_links
    kind: crawl
    url: {base}/
    start_urls: ['{base}/index.html']
    documents: ['/notes/[a-z]+\\.html$']
    delay: 0
""", encoding="utf-8")
    _ssehub(data, sources, "harvest", "by_sitemap")
    _ssehub(data, sources, "harvest", "by_links")
    store = Store(data / "ssehub.db")
    try:
        rows = store.db.execute("SELECT id, title FROM documents WHERE status = 'active' ORDER BY title").fetchall()
        assert [title for _, title in rows] == ["Bakery hours", "Café hours"], rows
        cafe = next(doc_id for doc_id, title in rows if title == "Café hours")
        assert [loc["url"] for loc in store.locations(cafe)] == [f"{base}/notes/cafe.html"]
    finally:
        store.close()


FEED = """sources:
  - id: {id}
    kind: feed
    url: {base}/rss.xml
    delay: 0
"""


def test_documents_follow_a_renamed_source_and_a_site_that_moved(
    tmp_path: Path, fixture_sites: Path, serve_folders: Callable[..., object],
) -> None:
    """A curator renamed `news` to `actu`: the documents stayed under `news` (a source the file no longer lists) and
    `actu` showed 0 documents. Then the site moved to another host and the curator edited `url`: the documents kept
    linking to the old host (never fetched again), with the new URLs only among their other locations. Found again,
    they now move: same ids, the new source, the new URLs; nothing is stored twice."""
    old = serve_folders({"feed": fixture_sites / "feed"}).urls["feed"]  # type: ignore[attr-defined]
    sources, data = tmp_path / "sources.yaml", tmp_path / "data"
    sources.write_text(FEED.format(id="news", base=old), encoding="utf-8")
    _ssehub(data, sources, "harvest")

    def documents() -> dict[str, tuple[str, str]]:
        store = Store(data / "ssehub.db")
        try:
            return {r[0]: (r[1], r[2]) for r in store.db.execute("SELECT id, source_id, url FROM documents WHERE status = 'active'")}
        finally:
            store.close()

    first = documents()
    assert len(first) >= 3 and {s for s, _ in first.values()} == {"news"}
    sources.write_text(FEED.format(id="actu", base=old), encoding="utf-8")
    report = _ssehub(data, sources, "harvest")
    assert f"relocated {len(first)}" in report, report
    renamed = documents()
    assert renamed == {d: ("actu", url) for d, (_, url) in first.items()}

    new = serve_folders({"feed": fixture_sites / "feed"}).urls["feed"]  # type: ignore[attr-defined]
    sources.write_text(FEED.format(id="actu", base=new), encoding="utf-8")
    _ssehub(data, sources, "harvest")
    moved = documents()
    assert set(moved) == set(first)  # the same documents, none added
    assert {url.replace(new, old) for _, url in moved.values()} == {url for _, url in first.values()}
    assert all(url.startswith(new) for _, url in moved.values())
