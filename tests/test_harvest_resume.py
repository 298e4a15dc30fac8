"""A harvest killed with SIGKILL mid-run and started again: nothing lost, nothing stored twice, the run marked interrupted.

Also what `ssehub sources` and `ssehub status` then show of each source's last run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssehub.demo.server import Reply, SiteGroup, SiteRequest
from ssehub.store import Store

pytestmark = pytest.mark.timeout(120)

PAGES = 40
WORDS = "cooperative members share ownership of the enterprise and decide together how its surplus is used".split()


def slow(request: SiteRequest) -> Reply | None:
    """Every document page takes a while, so the harvest can be killed in its middle; the static file answers."""
    if request.path.startswith("/docs/"):
        time.sleep(0.12)
    return None


def write_site(root: Path) -> None:
    (root / "docs").mkdir(parents=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    links = "".join(f'<li><a href="/docs/d{i}.html">Document {i}</a></li>' for i in range(PAGES))
    (root / "index.html").write_text(f"<html><body><ul>{links}</ul><a href='/docs/missing.html'>x</a></body></html>")
    for i in range(PAGES):
        # Distinct texts (a rotating word order) so that no two pages are near-duplicates of each other.
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(60))
        (root / "docs" / f"d{i}.html").write_text(
            f"<html><head><title>Document {i}</title></head><body><article><h1>Document {i}</h1>"
            f"<p>Record number {i}. {words}.</p><p>Identifier {i * 7919} of the test collection.</p></article></body></html>"
        )


def command(data: Path, sources: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ssehub", "--data", str(data), "--sources", str(sources), *args]


def stored(data: Path) -> int:
    """Documents stored so far, read without opening a Store (which would race the harvest on creating the schema)."""
    if not (data / "ssehub.db").exists():
        return 0
    conn = sqlite3.connect(f"file:{data / 'ssehub.db'}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        conn.close()


@pytest.mark.parametrize("workers", ["0", "1"], ids=["inline", "workers"])
def test_killed_harvest_resumes_without_loss_or_duplicates(tmp_path: Path, workers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSEHUB_EXTRACT_WORKERS", workers)  # extraction on the crawler thread, then in a worker process
    write_site(tmp_path / "site")
    group = SiteGroup({"slow": tmp_path / "site"}, handlers={"slow": slow})
    try:
        url = group.start()["slow"]
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            f"sources:\n  - id: slow\n    kind: crawl\n    url: {url}/\n    documents: ['/docs/']\n    delay: 0\n", encoding="utf-8"
        )
        data = tmp_path / "data"
        proc = subprocess.Popen(command(data, sources, "harvest"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while stored(data) < 8 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = stored(data)
        assert 8 <= before < PAGES, "the harvest should have been killed in its middle"

        done = subprocess.run(command(data, sources, "harvest"), capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        store = Store(data / "ssehub.db")
        try:
            docs = store._rows("SELECT id, url FROM documents")
            runs = {r["id"]: r for r in store.runs()}
            second = max(runs)
            assert len(docs) == len({d["url"] for d in docs}) == PAGES  # everything, once
            assert [runs[i]["status"] for i in sorted(runs)] == ["interrupted", "finished"]
            counts = runs[second]["counts"]
            # What the killed run had stored is found unchanged (304), the rest is new: nothing fetched twice as new.
            assert counts["new"] == PAGES - before and counts["new"] + counts["not_modified"] + counts["unchanged"] == PAGES
            assert counts["failed_by_reason"] == {"http_404": 1}
            assert store._one("SELECT COUNT(*) AS n FROM locations")["n"] == PAGES
        finally:
            store.close()

        # Visible runs: each source's last run with its counts, failures by reason and errors.
        listing = subprocess.run(command(data, sources, "sources"), capture_output=True, text=True, timeout=60)
        status = subprocess.run(command(data, sources, "status"), capture_output=True, text=True, timeout=60)
        for out in (listing, status):
            assert out.returncode == 0, out.stderr
            assert f"run {second} finished" in out.stdout and f"new {PAGES - before}" in out.stdout
            assert "(http_404 1)" in out.stdout and "error http_404: " + url + "/docs/missing.html" in out.stdout
    finally:
        group.close()
