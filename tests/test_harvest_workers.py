"""Extraction in worker processes: batches, a crashed worker, and the same documents as inline extraction, end to end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import THREE_SITES_SOURCES

from harvester import work
from harvester.extract import Extracted
from harvester.work import Analyser
from ssehub.demo.server import SiteGroup
from ssehub.store import Store

pytestmark = pytest.mark.timeout(180)

TEXT = (
    "Community land trusts separate the ownership of land from the ownership of the homes built on it. The trust holds "
    "the land for ever and leases it to households at a low ground rent, so each home stays affordable."
)


def fake_extract(body: bytes, fmt: str, encoding: str, content_type: str, url: str) -> tuple[Extracted, bool]:
    """Stands in for the extractors in forked workers: `crash` kills the worker the way a segfaulting parser would."""
    if body == b"crash":
        os._exit(3)
    if body == b"bug":
        raise KeyError("no such node")
    return Extracted(text=f"{body.decode()} {TEXT}"), False


async def analyse_all(analyser: Analyser, bodies: list[bytes]) -> list[Any]:
    jobs = [analyser.run(body, "", "utf-8", "", f"http://x/{i}") for i, body in enumerate(bodies)]
    return await asyncio.gather(*jobs, return_exceptions=True)


def test_batches_keep_order_and_a_crash_costs_one_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(work, "extract_any", fake_extract)  # before the fork: the workers inherit it
    analyser = Analyser(2, batch=4)
    bodies = [f"page{i}".encode() for i in range(30)]
    bodies[7] = b"crash"
    bodies[12] = b"bug"
    try:
        results = asyncio.run(analyse_all(analyser, bodies))
    finally:
        analyser.close()
    assert analyser.batches_sent < 30  # bodies travelled in batches, not one round trip each
    for i, result in enumerate(results):
        if i == 7:
            assert result.found is None and result.reason == "extract_crash"
        elif i == 12:
            assert isinstance(result, RuntimeError) and "KeyError" in str(result)
        else:
            assert result.found.text.startswith(f"page{i} ") and result.lang == "en" and result.signature is not None


SOURCES = THREE_SITES_SOURCES + """\
  - id: wp
    kind: wordpress
    url: {wordpress}/
    delay: 0
"""
FIELDS = "id, source_id, url, hash, title, lang, type, published, authors, parent_id, status"


def harvest(data: Path, sources: Path, workers: int) -> tuple[set[tuple[Any, ...]], dict[str, dict[str, Any]]]:
    env = {**os.environ, "SSEHUB_EXTRACT_WORKERS": str(workers), "SSEHUB_REQUEST_TIMEOUT": "1", "SSEHUB_MAX_PAGE_BYTES": "200000"}
    proc = subprocess.run(
        [sys.executable, "-m", "ssehub", "--data", str(data), "--sources", str(sources), "harvest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    store = Store(data / "ssehub.db")
    try:
        docs = {tuple(row) for row in store.db.execute(f"SELECT {FIELDS} FROM documents").fetchall()}
        counts = {r["sources"][0]: store.run(r["id"])["counts"] for r in store.runs()}
    finally:
        store.close()
    return docs, counts


def test_workers_store_the_same_documents_as_inline(tmp_path: Path, fixture_sites_copier: Callable[[Path], Path]) -> None:
    root = fixture_sites_copier(tmp_path / "sites")
    group = SiteGroup({name: root / name for name in ("sitemap", "feed", "crawl", "wordpress")})
    try:
        sources = tmp_path / "sources.yaml"
        sources.write_text(SOURCES.format(**group.start()), encoding="utf-8")
        inline_docs, inline_counts = harvest(tmp_path / "inline", sources, 0)
        worker_docs, worker_counts = harvest(tmp_path / "workers", sources, 2)
    finally:
        group.close()
    assert len(inline_docs) > 25, inline_counts
    assert worker_docs == inline_docs  # same ids, texts (hash), metadata: nothing lost, nothing stored twice
    for source, counts in inline_counts.items():
        keys = ("fetched", "new", "failed", "failed_by_reason", "attachments", "duplicates")
        assert {k: worker_counts[source][k] for k in keys} == {k: counts[k] for k in keys}, source


def test_workers_of_two_sources_stop_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each source's crawler has its own workers; a later fork must not keep an earlier worker's socket open."""
    monkeypatch.setattr(work, "extract_any", fake_extract)
    first, second = Analyser(1), Analyser(1)

    async def both() -> None:
        await first.run(b"one", "", "utf-8", "", "http://x/1")
        await second.run(b"two", "", "utf-8", "", "http://x/2")

    try:
        asyncio.run(both())
        process = first._pool[0].process
        first.close()
        assert process.exitcode == 0  # read EOF and ended on its own, not killed after the join timeout
    finally:
        first.close()
        second.close()
