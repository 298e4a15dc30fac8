"""A curator's edits through the API, as they happen on a real server: several at once, on more than one worker."""

from __future__ import annotations

import fcntl
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import copy_fixture_sites, make_search_corpus
from test_reliability_crash import cli, hashing_env
from test_reliability_serving import KEY, live_server

from ssehub.demo.server import SiteGroup

pytestmark = pytest.mark.timeout(120)


def served(data: Path, sources: Path, workers: int) -> AbstractContextManager[str]:
    """`ssehub serve` with N worker processes (SSEHUB_WORKERS) on a free loopback port; yields its base URL."""
    return live_server(data, sources, env={"SSEHUB_WORKERS": str(workers), "SSEHUB_RATE_LIMIT": "0"})


def test_sources_added_at_once_on_two_workers_are_all_kept(tmp_path: Path) -> None:
    """Two worker processes each wrote the sources file from what they had read: 40 POSTs at once all answered 201 and
    the file kept 27 of them. Every source a 201 answered for must be in the file, and a second add of one id is a 409."""
    make_search_corpus(tmp_path / "data", index=False).store.close()
    sources = tmp_path / "sources.yaml"
    sources.write_text("# the curator's comment\nsources: []\n")
    headers = {"Authorization": f"Bearer {KEY}"}

    def add(i: int) -> int:
        body = {"id": f"src_{i % 30}", "name": f"Source {i}", "kind": "feed", "url": f"https://example.org/{i % 30}/feed/"}
        return httpx.post(f"{base}/api/sources", json=body, headers=headers, timeout=30).status_code

    with served(tmp_path / "data", sources, workers=2) as base, ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(add, range(40)))  # ids 0-9 twice
        listed = httpx.get(f"{base}/api/sources", headers=headers, timeout=30).json()

    assert sorted(codes) == [201] * 30 + [409] * 10, codes
    in_file = [s["id"] for s in yaml.safe_load(sources.read_text())["sources"]]
    assert sorted(in_file) == sorted(f"src_{i}" for i in range(30))
    assert "# the curator's comment" in sources.read_text()
    assert {s["id"] for s in listed["sources"] if s["in_file"]} == set(in_file) and not listed["problems"]


def test_one_harvest_at_a_time_across_worker_processes(tmp_path: Path) -> None:
    """Each worker kept its own "is a harvest running" check: with two workers, two requests at once both started a
    harvest (the second then ended "failed", its source being busy) and `running` named whichever the answering
    worker had started. Now one request starts it, the others are 409 naming it, and every worker reports it."""
    make_search_corpus(tmp_path / "data", index=False).store.close()
    group = SiteGroup({"feed": copy_fixture_sites(tmp_path / "sites") / "feed"})
    urls = group.start()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: news\n    kind: feed\n    url: {urls['feed']}/rss.xml\n    delay: 0.1\n")
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        with served(tmp_path / "data", sources, workers=2) as base, ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{base}/api/harvest", json={}, headers=headers, timeout=30), range(6)))
            started = [a.json()["run_id"] for a in answers if a.status_code == 202]
            assert len(started) == 1 and sorted(a.status_code for a in answers) == [202] + [409] * 5
            busy = [a.json()["detail"] for a in answers if a.status_code == 409]
            assert all(f"harvest {started[0]} is still running" in d or "another harvest is starting" in d for d in busy)
            seen = {httpx.get(f"{base}/api/harvest/runs", headers=headers, timeout=30).json()["running"] for _ in range(8)}
            deadline = time.monotonic() + 90
            while (run := httpx.get(f"{base}/api/harvest/runs/{started[0]}", headers=headers, timeout=30).json())["status"] == "running":
                assert time.monotonic() < deadline, "the harvest did not finish"
                time.sleep(0.3)
            after = httpx.post(f"{base}/api/harvest", json={}, headers=headers, timeout=30)
            after_id = after.json().get("run_id")
    finally:
        group.close()
    assert seen == {started[0]}  # every worker names the running request while it runs (it takes seconds)
    assert run["status"] == "finished" and run["counts"]["new"] > 0
    assert after.status_code == 202 and after_id > started[0]  # the lock is free once the harvest has ended


def test_a_second_index_run_waits_for_the_first(tmp_path: Path) -> None:
    """Two `ssehub index` at once each embedded and tagged the same new documents (both exit 0, twice the work). A
    second run now says it waits, and indexes once the first has finished."""
    data = tmp_path / "data"
    make_search_corpus(data, index=False).store.close()
    with open(data / "ssehub.db.index.lock", "a") as first:  # as a running `ssehub index` holds it
        fcntl.flock(first, fcntl.LOCK_EX)
        proc = subprocess.Popen(cli(data, "index"), env=hashing_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said = proc.stderr.readline()
        assert said.startswith(f"waiting for another `ssehub index` on {data} to finish"), said
        time.sleep(0.5)
        assert proc.poll() is None and not (data / "index" / "manifest.json").exists()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.startswith("indexed: "), err
    assert (data / "index" / "manifest.json").exists()
