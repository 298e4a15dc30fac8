"""Politeness end to end: per-source concurrency and delay, AutoThrottle, Retry-After and backoff, on timed fixture sites."""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ssehub.demo.server import Reply, SiteGroup, SiteRequest
from ssehub.store import Store

pytestmark = pytest.mark.timeout(150)

WORDS = "cooperative members share ownership of the enterprise and decide together how its surplus is used".split()


@dataclass
class Timed:
    """A site handler that answers document pages after `latency` seconds and records when each request ran."""

    latency: float
    name: str = ""  # in each page's title: two sites' identical pages are one document with two locations
    faults: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)  # path -> answers before the page
    hits: list[tuple[str, float, float, int]] = field(default_factory=list)  # (path, start, end, status)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: SiteRequest) -> Reply | None:
        if not request.path.startswith("/docs/"):
            return None  # robots.txt and the index come from the folder
        start = time.monotonic()
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            fault = self.faults.get(request.path, [])
            answer = fault.pop(0) if fault else None
        time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
            status = answer[0] if answer else 200
            self.hits.append((request.path, start, time.monotonic(), status))
        if answer:
            return Reply(answer[0], f"{answer[0]}\n", answer[1])
        n = int(request.path.rsplit("d", 1)[-1].split(".")[0]) if request.path[-6].isdigit() else 99
        words = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(60))
        return Reply(
            200,
            f"<html><head><title>Document {request.path}</title></head><body><article><h1>Document {self.name}</h1>"
            f"<p>Record {request.path}. {words}.</p></article></body></html>",
            {"Content-Type": "text/html"},
        )

    def starts(self, prefix: str = "/docs/") -> list[float]:
        return sorted(start for path, start, _, _ in self.hits if path.startswith(prefix))

    def times_of(self, path: str) -> list[tuple[float, float, int]]:
        return [(s, e, st) for p, s, e, st in self.hits if p == path]


def write_site(root: Path, pages: int, extra: tuple[str, ...] = ()) -> None:
    root.mkdir(parents=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    links = "".join(f'<a href="/docs/d{i}.html">d{i}</a> ' for i in range(pages)) + "".join(
        f'<a href="{p}">x</a> ' for p in extra
    )
    (root / "index.html").write_text(f"<html><body>{links}</body></html>")


def harvest(tmp: Path, sources: str, **env: str) -> dict[str, dict]:
    (tmp / "sources.yaml").write_text(sources, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "ssehub", "--data", str(tmp / "data"), "--sources", str(tmp / "sources.yaml"), "harvest"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    store = Store(tmp / "data" / "ssehub.db")
    try:
        return {r["sources"][0]: store.run(r["id"]) for r in store.runs()}
    finally:
        store.close()


def source(name: str, url: str, delay: float) -> str:
    return f"  - id: {name}\n    kind: crawl\n    url: {url}/\n    documents: ['/docs/']\n    delay: {delay}\n"


def test_concurrency_per_source_retry_after_and_backoff(tmp_path: Path) -> None:
    """Two sources crawled at once, each capped at two requests in flight; a 429 waits its Retry-After; 5xx back off."""
    sites = {name: Timed(latency=0.25, name=name) for name in ("a", "b")}
    sites["a"].faults = {"/docs/busy.html": [(429, {"Retry-After": "1"})], "/docs/flaky.html": [(503, {}), (503, {})]}
    write_site(tmp_path / "a", 8, extra=("/docs/busy.html", "/docs/flaky.html"))
    write_site(tmp_path / "b", 8)
    group = SiteGroup({n: tmp_path / n for n in sites}, handlers=dict(sites))
    try:
        urls = group.start()
        runs = harvest(
            tmp_path,
            "sources:\n" + source("a", urls["a"], 0) + source("b", urls["b"], 0),
            SSEHUB_RETRY_BACKOFF="0.5",
            SSEHUB_EXTRACT_WORKERS="0",
        )
    finally:
        group.close()
    a, b = sites["a"], sites["b"]
    assert a.most_in_flight == b.most_in_flight == 2  # each source uses its two slots, never more
    assert a.starts()[0] < b.starts()[-1] and b.starts()[0] < a.starts()[-1]  # ...while the other source runs too
    busy = a.times_of("/docs/busy.html")
    assert [st for _, _, st in busy] == [429, 200] and busy[1][0] - busy[0][1] >= 0.95  # waited Retry-After: 1
    flaky = a.times_of("/docs/flaky.html")
    assert [st for _, _, st in flaky] == [503, 503, 200]
    first_wait, second_wait = flaky[1][0] - flaky[0][1], flaky[2][0] - flaky[1][1]
    assert first_wait >= 0.45 and second_wait >= 0.95  # backoff 0.5 s, then doubled
    assert runs["a"]["counts"]["new"] == 10 and runs["a"]["counts"]["failed"] == 0 and runs["b"]["counts"]["new"] == 8


def test_delay_is_kept_and_autothrottle_slows_down_for_a_slow_server(tmp_path: Path) -> None:
    slow = Timed(latency=0.6)
    write_site(tmp_path / "slow", 9)
    group = SiteGroup({"slow": tmp_path / "slow"}, handlers={"slow": slow})
    try:
        urls = group.start()
        runs = harvest(tmp_path, "sources:\n" + source("slow", urls["slow"], 0.2), SSEHUB_EXTRACT_WORKERS="0")
    finally:
        group.close()
    starts = slow.starts()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 9 and runs["slow"]["counts"]["new"] == 9
    # The source's 0.2 s delay (randomised by Scrapy between 0.5x and 1.5x) is never undercut...
    assert min(gaps) >= 0.09
    # ...and AutoThrottle stretches it towards the server's 0.6 s latency (0.2 s would give gaps of at most 0.3 s).
    assert statistics.median(gaps[2:]) >= 0.4
