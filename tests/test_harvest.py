"""End to end: the fixture sites served on 127.0.0.1, harvested three times by `ssehub harvest` in a subprocess.

Run 1 harvests everything; run 2 changes nothing; before run 3 pages are edited and deleted on disk.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ssehub.demo.server import SiteGroup
from ssehub.store import Store

pytestmark = pytest.mark.timeout(240)

SOURCES = """\
sources:
  - id: obs
    kind: sitemap
    url: {sitemap}/
    delay: 0
    languages: [en, fr, es]
  - id: news
    kind: feed
    url: {feed}/rss.xml
    start_urls: ['{feed}/rss.xml', '{feed}/atom.xml']
    delay: 0
  - id: centre
    kind: crawl
    url: {crawl}/
    start_urls: ['{crawl}/publications/']
    follow: ['/publications/page/\\d+\\.html$']
    documents: ['/papers/[^/]+\\.(html|pdf)$']
    max_depth: 2
    delay: 0
  - id: dormant
    kind: crawl
    enabled: false
    url: {crawl}/
    documents: ['/papers/']
"""


@dataclass
class Phase:
    """What one harvest left behind."""

    runs: dict[str, dict[str, Any]]  # source -> run record with counts and errors
    docs: dict[str, dict[str, Any]]  # id -> document row (all statuses)
    hits: dict[str, list[tuple[str, int, dict[str, str]]]]  # site -> (path, status, request headers) of this run
    seconds: float
    output: str


@dataclass
class Harvests:
    urls: dict[str, str]
    first: Phase
    second: Phase
    third: Phase


def ssehub_harvest(data: Path, sources: Path) -> str:
    env = {**os.environ, "SSEHUB_REQUEST_TIMEOUT": "1", "SSEHUB_MAX_PAGE_BYTES": "200000"}
    proc = subprocess.run(
        [sys.executable, "-m", "ssehub", "--data", str(data), "--sources", str(sources), "harvest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def snapshot(data: Path, group: SiteGroup, marks: dict[str, int], seconds: float, output: str) -> Phase:
    store = Store(data / "ssehub.db")
    try:
        runs: dict[str, dict[str, Any]] = {}
        for row in store.runs():
            source = row["sources"][0]
            if source not in runs:
                runs[source] = store.run(row["id"])
        docs = {}
        for row in store.db.execute("SELECT * FROM documents").fetchall():
            cols = [c[0] for c in store.db.execute("SELECT * FROM documents LIMIT 0").description]
            doc = dict(zip(cols, row, strict=True))
            doc["authors"] = json.loads(doc["authors"])
            docs[doc["id"]] = doc
    finally:
        store.close()
    hits = {name: [(h.path, h.status, h.headers) for h in s.hits[marks[name] :]] for name, s in group.servers.items()}
    return Phase(runs, docs, hits, seconds, output)


def edit_sites(root: Path) -> None:
    """Between runs 2 and 3: edit a crawled page, delete another, and change and remove sitemap records."""
    wp2 = root / "crawl/papers/wp-2.html"
    wp2.write_text(wp2.read_text().replace("pays for the time spent travelling", "now also pays for training time and travel"))
    (root / "crawl/papers/wp-6.html").unlink()
    fiche = root / "sitemap/records/fiche-102.html"
    fiche.write_text(fiche.read_text().replace("trois associations", "quatre associations"))
    (root / "sitemap/records/fiche-103.html").unlink()
    gz = root / "sitemap/sitemap-records.xml.gz"
    xml = gzip.decompress(gz.read_bytes()).decode()
    xml = xml.replace("fiche-102.html</loc><lastmod>2023-11-02T10:00:00+00:00", "fiche-102.html</loc><lastmod>2099-01-01")
    xml = "\n".join(line for line in xml.splitlines() if "fiche-103" not in line)
    gz.write_bytes(gzip.compress(xml.encode(), mtime=0))


@pytest.fixture(scope="module")
def harvests(tmp_path_factory: pytest.TempPathFactory, fixture_sites_copier: Callable[[Path], Path]) -> Iterator[Harvests]:
    tmp = tmp_path_factory.mktemp("harvest")
    root = fixture_sites_copier(tmp / "sites")
    group = SiteGroup({name: root / name for name in ("sitemap", "feed", "crawl")})
    try:
        urls = group.start()
        sources = tmp / "sources.yaml"
        sources.write_text(SOURCES.format(**urls), encoding="utf-8")
        data = tmp / "data"
        phases = []
        for i in range(3):
            if i == 2:
                edit_sites(root)
            marks = {name: len(s.hits) for name, s in group.servers.items()}
            t0 = time.monotonic()
            output = ssehub_harvest(data, sources)
            phases.append(snapshot(data, group, marks, time.monotonic() - t0, output))
        yield Harvests(urls, *phases)
    finally:
        group.close()


def by_path(phase: Phase, path: str) -> dict[str, Any]:
    matches = [d for d in phase.docs.values() if d["url"].endswith(path)]
    assert len(matches) == 1, f"{path}: {len(matches)} documents"
    return matches[0]


def test_each_kind_harvests_its_documents(harvests: Harvests) -> None:
    docs = harvests.first.docs.values()
    paths = lambda source: sorted(d["url"].split("/", 3)[3] for d in docs if d["source_id"] == source)
    assert paths("obs") == [
        "files/report-101.pdf",
        "records/fiche-101.html",
        "records/fiche-102.html",
        "records/fiche-103.html",
        "records/fiche-105.html",
    ]
    assert paths("news") == [
        "files/food-aid-brief.pdf",
        "news/bakery-cooperative.html",
        "news/housing-cooperatives.html",
        "news/repair-cafes.html",
        "news/solidarity-grocery.html",
    ]
    # wp-8 sits on listing page 4, beyond max_depth 2; the disabled source is not harvested.
    assert paths("centre") == [
        "files/wp-1.pdf",
        "papers/busy.html",
        "papers/policy-brief-5.pdf",
        "papers/wp-1.html",
        "papers/wp-2.html",
        "papers/wp-3.html",
        "papers/wp-4.html",
        "papers/wp-6.html",
        "papers/wp-7.html",
    ]
    assert "dormant" not in harvests.first.runs
    assert all(d["status"] == "active" for d in docs)


def test_metadata_language_and_type(harvests: Harvests) -> None:
    f = harvests.first
    d = by_path(f, "/records/fiche-101.html")
    assert (d["title"], d["published"], d["authors"], d["lang"], d["type"]) == (
        "Worker buyouts of small firms facing closure",
        "2019-11-21",
        ["Maria Lopes", "Tomas Berg"],
        "en",
        "article",
    )
    # <html lang="en"> around a French text: the language comes from the text.
    d = by_path(f, "/records/fiche-102.html")
    assert (d["lang"], d["published"], d["authors"]) == ("fr", "2020-06-15", ["Claire Dumont"])
    d = by_path(f, "/records/fiche-103.html")
    assert (d["lang"], d["published"], d["year"]) == ("es", "2021-02-08", 2021)
    # Feed metadata fills what the page lacks: the RSS author and the Atom date.
    d = by_path(f, "/news/bakery-cooperative.html")
    assert (d["authors"], d["published"], d["type"]) == (["Jonas Weber"], "2024-03-05", "news")
    assert by_path(f, "/news/repair-cafes.html")["published"] == "2024-01-05"
    assert by_path(f, "/papers/wp-2.html")["type"] == "case-study"
    assert by_path(f, "/papers/wp-1.html")["type"] == "working-paper"
    assert by_path(f, "/papers/policy-brief-5.pdf")["type"] == "policy-brief"


def test_boilerplate_is_not_in_the_text(harvests: Harvests) -> None:
    for d in harvests.first.docs.values():
        if not d["url"].endswith(".pdf"):
            for chrome in ("cookies", "All rights reserved", "Privacy policy", "Newsletter", "Follow us"):
                assert chrome not in d["text"], (d["url"], chrome)
    text = by_path(harvests.first, "/records/fiche-101.html")["text"]
    assert "right of first refusal" in text and "access to bank credit" in text


def test_pdfs_are_documents_linked_to_their_page(harvests: Harvests) -> None:
    f = harvests.first
    pdf, page = by_path(f, "/files/report-101.pdf"), by_path(f, "/records/fiche-101.html")
    assert pdf["parent_id"] == page["id"] and page["parent_id"] is None
    assert (pdf["title"], pdf["authors"], pdf["type"], pdf["lang"]) == (
        "Worker buyouts: full report",
        ["Maria Lopes"],
        "report",
        "en",
    )
    assert "Twelve converted firms" in pdf["text"]
    assert by_path(f, "/files/wp-1.pdf")["parent_id"] == by_path(f, "/papers/wp-1.html")["id"]
    brief = by_path(f, "/files/food-aid-brief.pdf")
    assert brief["parent_id"] == by_path(f, "/news/solidarity-grocery.html")["id"] and brief["type"] == "policy-brief"
    assert brief["title"].startswith("Policy brief. From food parcels")  # no PDF title: the first line stands in
    assert by_path(f, "/papers/policy-brief-5.pdf")["parent_id"] is None  # listed directly, not attached


def test_alternate_language_page_is_one_document(harvests: Harvests) -> None:
    f = harvests.first
    assert len([d for d in f.docs.values() if "fiche-105" in d["url"]]) == 1
    assert by_path(f, "/records/fiche-105.html")["published"] == "2018-09-30"
    assert f.runs["obs"]["counts"]["duplicates"] == 1


def test_robots_offsite_and_depth_are_respected(harvests: Harvests) -> None:
    for phase in (harvests.first, harvests.second, harvests.third):
        requested = {p for site in phase.hits.values() for p, _, _ in site}
        assert "/private/draft-record.html" not in requested
        assert "/papers/wp-8.html" not in requested and "/publications/page/4.html" not in requested
    assert harvests.first.runs["obs"]["counts"]["skipped_robots"] == 1
    assert harvests.first.runs["news"]["counts"]["skipped_offsite"] == 1
    ua = {h["user-agent"] for site in harvests.first.hits.values() for _, _, h in site}
    assert len(ua) == 1 and ua.pop().startswith("ssehub/")
    # The off-site PDF link (port 9) was never fetched: no connection failure anywhere.
    assert not any(e["reason"] == "connection" for r in harvests.first.runs.values() for e in r["errors"])


def test_faults_are_counted_by_reason_and_runs_finish(harvests: Harvests) -> None:
    runs = harvests.first.runs
    assert all(r["status"] == "finished" and r["finished_at"] for r in runs.values())
    assert runs["obs"]["counts"]["failed_by_reason"] == {"http_500": 1, "no_text": 1, "timeout": 1}
    assert runs["centre"]["counts"]["failed_by_reason"] == {"bad_pdf": 1, "http_404": 1, "redirect_loop": 1, "too_big": 1}
    assert runs["news"]["counts"]["failed_by_reason"] == {}
    errors = {(e["url"].split("/", 3)[3], e["reason"]) for r in runs.values() for e in r["errors"]}
    assert {
        ("records/fiche-199.html", "http_500"),
        ("about.html", "no_text"),
        ("files/wp-3-appendix.pdf", "bad_pdf"),
        ("papers/loop.html", "redirect_loop"),
        ("papers/huge.html", "too_big"),
    } <= errors
    # 5xx is retried twice, then given up; the 429 page was retried after its Retry-After and stored.
    assert [s for p, s, _ in harvests.first.hits["sitemap"] if p == "/records/fiche-199.html"] == [500, 500, 500]
    assert [s for p, s, _ in harvests.first.hits["crawl"] if p == "/papers/busy.html"] == [429, 200]
    assert runs["centre"]["counts"]["new"] == 9 and runs["centre"]["counts"]["attachments"] == 1


def test_second_harvest_changes_nothing_and_uses_conditional_requests(harvests: Harvests) -> None:
    first, second = harvests.first, harvests.second
    assert second.docs == first.docs
    for source, run in second.runs.items():
        counts = run["counts"]
        assert counts["new"] == counts["updated"] == counts["withdrawn"] == 0, source
        assert run["id"] != first.runs[source]["id"] and run["status"] == "finished"
    assert second.runs["centre"]["counts"]["not_modified"] == 9
    assert second.runs["news"]["counts"]["not_modified"] == 5
    # The sitemap's <lastmod> says its records did not change: not even requested; the PDF is re-checked (304).
    assert second.runs["obs"]["counts"]["skipped_lastmod"] == 5
    sitemap_paths = [p for p, _, _ in second.hits["sitemap"]]
    assert not any(p.startswith("/records/fiche-10") for p in sitemap_paths)
    assert ("/files/report-101.pdf", 304) in [(p, s) for p, s, _ in second.hits["sitemap"]]
    wp1 = [h for p, s, h in second.hits["crawl"] if p == "/papers/wp-1.html"]
    assert len(wp1) == 1 and "if-none-match" in wp1[0] and "if-modified-since" in wp1[0]


def test_edited_pages_update_and_deleted_pages_withdraw(harvests: Harvests) -> None:
    second, third = harvests.second, harvests.third
    wp2_before, wp2 = by_path(second, "/papers/wp-2.html"), by_path(third, "/papers/wp-2.html")
    assert wp2["id"] == wp2_before["id"] and "training time" in wp2["text"] and wp2["hash"] != wp2_before["hash"]
    fiche = by_path(third, "/records/fiche-102.html")
    assert "quatre associations" in fiche["text"] and fiche["id"] == by_path(second, "/records/fiche-102.html")["id"]
    # Deleted upstream: kept in the store, withdrawn from search.
    assert by_path(third, "/papers/wp-6.html")["status"] == "withdrawn"
    assert by_path(third, "/records/fiche-103.html")["status"] == "withdrawn"  # gone from the sitemap and the site
    assert third.runs["centre"]["counts"]["updated"] == 1 and third.runs["centre"]["counts"]["withdrawn"] == 1
    assert third.runs["obs"]["counts"]["updated"] == 1 and third.runs["obs"]["counts"]["withdrawn"] == 1
    changed = {i for i, d in third.docs.items() if d != second.docs[i]}
    assert changed == {
        wp2["id"],
        fiche["id"],
        by_path(third, "/papers/wp-6.html")["id"],
        by_path(third, "/records/fiche-103.html")["id"],
    }


def test_cli_reports_and_harvest_is_quick(harvests: Harvests) -> None:
    assert "centre: run" in harvests.first.output and "failed 4" in harvests.first.output
    assert "Traceback" not in harvests.first.output + harvests.second.output + harvests.third.output
    assert max(p.seconds for p in (harvests.first, harvests.second, harvests.third)) < 30
