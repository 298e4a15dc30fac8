"""A live server keeps answering while `ssehub index` (and `ssehub harvest`) run in other processes.

Point 2: searches answer with the old index during an index run and see the new one after it, with no restart.
Point 5: 32 concurrent clients search for SSEHUB_LOAD_SECONDS (default 10; `python -m bench.load` runs 60) while a
harvest of the fixture sites, an import and an index run, and a curator writes tags: no errors, no lost writes,
p99 latency printed.
"""

from __future__ import annotations

import os
import random
import re
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import THREE_SITES_SOURCES
from test_reliability_crash import check_consistent, cli, hashing_env, write_jsonl

from ssehub.demo.server import SiteGroup
from ssehub.models import Document
from ssehub.store import Store

pytestmark = pytest.mark.timeout(240)
KEY = "load-test-curator-key"
QUERIES = ["cooperative", "women credit", "housing energy", "solidarity finance", "climate water", "school health",
           "zzyzx unknown words", "\"decide together\"", "-housing cooperative", "title:document"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(data: Path, sources: Path | None = None, env: dict[str, str] | None = None) -> Iterator[str]:
    """`ssehub serve` in a subprocess on a free loopback port; yields its base URL, stops it after."""
    port = free_port()
    args = cli(data, *(["--sources", str(sources)] if sources else []), "serve", "--port", str(port))
    server_env = {**hashing_env(), "SSEHUB_CURATOR_KEYS": KEY, **(env or {})}
    log_file = (data.parent / "server.log").open("w")  # the server's tracebacks, if any, for the failure message
    proc = subprocess.Popen(args, env=server_env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"server died: {(data.parent / 'server.log').read_text()}"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@dataclass
class Tally:
    """What the clients saw: latencies of good answers, and every bad one."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def p(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def search_clients(base: str, clients: int, until: Callable[[], bool], tally: Tally, seed: int = 0) -> list[threading.Thread]:
    """Start `clients` threads, each searching in a loop (random query, mode, filters) until `until()` is true."""

    def loop(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        with httpx.Client(base_url=base, timeout=30) as http:
            while not until():
                params: dict[str, object] = {"q": rng.choice(QUERIES), "mode": rng.choice(["hybrid", "semantic", "keyword"]),
                                             "limit": rng.choice([5, 10, 20])}
                if rng.random() < 0.2:
                    params = {"sdg": rng.randint(1, 17)}  # browsing, newest first
                t0 = time.perf_counter()
                try:
                    r = http.get("/api/search", params=params)
                    ok = r.status_code == 200 and isinstance(r.json().get("results"), list)
                    why = f"{r.status_code} {r.text[:200]} for {params}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{type(exc).__name__}: {exc} for {params}"
                with tally.lock:
                    (tally.latencies.append(time.perf_counter() - t0) if ok else tally.errors.append(why))

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    return threads


def run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env={**hashing_env(), "SSEHUB_EXTRACT_WORKERS": "0"}, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


def indexed_corpus(tmp_path: Path, count: int = 60) -> Path:
    data = tmp_path / "data"
    run(cli(data, "import", str(write_jsonl(tmp_path / "base.jsonl", count)), "--source", "lib"))
    run(cli(data, "index"))
    return data


def test_searches_answer_during_an_index_run_and_see_the_new_index_without_restart(tmp_path: Path) -> None:
    data = indexed_corpus(tmp_path)
    fresh = tmp_path / "fresh.jsonl"
    with fresh.open("w") as f:
        for i in range(80):
            f.write(f'{{"id": "q{i}", "title": "Quokkaville report {i}", "text": "Quokkaville wombat cooperatives {i}. '
                    + "quokkaville wombat numbat bilby " * 30 + '"}\n')
    run(cli(data, "import", str(fresh), "--source", "fresh"))
    with live_server(data) as base:
        before = httpx.get(base + "/api/search", params={"q": "quokkaville wombat", "mode": "semantic"}).json()
        assert not any(h["source"] == "fresh" for h in before["results"])  # the old index knows none of them
        old_manifest = httpx.get(base + "/health").json()["index"]
        tally, stop = Tally(), threading.Event()
        threads = search_clients(base, 4, stop.is_set, tally)
        indexing = subprocess.Popen(cli(data, "index"), env=hashing_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = indexing.communicate(timeout=120)
        assert indexing.returncode == 0, err
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not tally.errors, tally.errors[:5]
        assert len(tally.latencies) > 20, "the clients hardly searched while the index ran"
        health = httpx.get(base + "/health").json()
        assert health["index"]["built_at"] != old_manifest["built_at"] and health["index"]["count"] == health["chunks"]
        after = httpx.get(base + "/api/search", params={"q": "quokkaville wombat", "mode": "semantic", "limit": 20}).json()
        assert sum(h["source"] == "fresh" for h in after["results"]) >= 10, after["results"][:3]
    check_consistent(data, expected_documents=140)




def curator_writes(base: str, ids: list[str], until: Callable[[], bool], last: dict[str, list[int]], errors: list[str]) -> None:
    """Set hand-made SDG tags on documents in a loop, remembering the last value each got (to find lost writes)."""
    rng = random.Random(7)
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {KEY}"}) as http:
        while not until():
            doc_id, sdgs = rng.choice(ids), sorted(rng.sample(range(1, 18), rng.randint(1, 3)))
            try:
                r = http.patch(f"/api/documents/{doc_id}", json={"sdgs": sdgs})
            except httpx.HTTPError as exc:  # the outcome is unknown: this document's last value is no longer checked
                errors.append(f"PATCH {doc_id}: {type(exc).__name__}: {exc}")
                last.pop(doc_id, None)
                continue
            if r.status_code != 200:
                errors.append(f"PATCH {doc_id}: {r.status_code} {r.text[:200]}")
            else:
                last[doc_id] = sdgs
            time.sleep(0.02)


def test_load_32_clients_while_harvest_import_and_index_run(tmp_path: Path, fixture_sites_copier: Callable[[Path], Path]) -> None:
    seconds = float(os.environ.get("SSEHUB_LOAD_SECONDS", "10"))
    data = indexed_corpus(tmp_path)
    root = fixture_sites_copier(tmp_path / "sites")
    group = SiteGroup({name: root / name for name in ("sitemap", "feed", "crawl")})
    urls = group.start()
    sources = tmp_path / "sources.yaml"
    sources.write_text(THREE_SITES_SOURCES.format(**urls), encoding="utf-8")
    background: dict[str, str] = {}
    jobs_done = threading.Event()

    def jobs() -> None:
        """Harvest and import at once (two writers), then index; then once more, until the load window is over."""
        try:
            rounds = 0
            while rounds == 0 or time.monotonic() < start + seconds:
                harvest = subprocess.Popen(cli(data, "--sources", str(sources), "harvest"), env={**hashing_env(), "SSEHUB_EXTRACT_WORKERS": "0"},
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                run(cli(data, "import", str(write_jsonl(tmp_path / f"more{rounds}.jsonl", 40, seed=10 + rounds, prefix=f"r{rounds}_")), "--source", "lib"))
                out, err = harvest.communicate(timeout=180)
                assert harvest.returncode == 0, err
                background[f"harvest {rounds}"] = out.strip()
                background[f"index {rounds}"] = run(cli(data, "index")).stdout.strip()
                rounds += 1
            background["rounds"] = str(rounds)
        except BaseException as exc:  # reported by the main thread
            background["error"] = repr(exc)
        finally:
            jobs_done.set()

    try:
        with live_server(data, sources) as base:
            ids = [h["id"] for h in httpx.get(f"{base}/api/search", params={"source": "lib", "limit": 20}).json()["results"]]
            assert len(ids) == 20
            tally, last, write_errors = Tally(), {}, []
            start = time.monotonic()
            done = lambda: jobs_done.is_set() and time.monotonic() >= start + seconds
            threads = search_clients(base, 32, done, tally, seed=1)
            writer = threading.Thread(target=curator_writes, args=(base, ids, done, last, write_errors), daemon=True)
            writer.start()
            threading.Thread(target=jobs, daemon=True).start()
            jobs_done.wait(timeout=200)
            for t in [*threads, writer]:
                t.join(timeout=60)
            elapsed = time.monotonic() - start
    finally:
        group.close()
    assert "error" not in background, background
    requests_served = len(tally.latencies)
    print(f"\nload: 32 clients, {elapsed:.1f} s, {requests_served} searches ({requests_served / elapsed:.0f}/s), "
          f"errors {len(tally.errors)}, p50 {tally.p(0.5) * 1000:.0f} ms, p95 {tally.p(0.95) * 1000:.0f} ms, "
          f"p99 {tally.p(0.99) * 1000:.0f} ms, max {max(tally.latencies) * 1000:.0f} ms; {background.get('rounds')} rounds of "
          f"harvest + import + index; curator writes failed {len(write_errors)}, {len(last)} documents checked")
    assert not tally.errors, tally.errors[:5]
    assert requests_served > 32, "the clients hardly searched"
    # No lost writes: every harvested and imported document is stored and indexed once, every curator write stuck.
    rounds = int(background["rounds"])
    counts = check_consistent(data, expected_documents=None)
    store = Store(data / "ssehub.db")
    try:
        by_source = {r["id"]: r["documents"] for r in store.sources()}
        assert by_source["lib"] == 60 + 40 * rounds
        harvested: dict[str, int] = {}
        for key, report in background.items():
            for m in re.finditer(r"^(\w+): run \d+: fetched \d+, new (\d+)", report if key.startswith("harvest") else "", re.MULTILINE):
                harvested[m[1]] = harvested.get(m[1], 0) + int(m[2])
        assert set(harvested) == {"obs", "news", "centre"} and all(harvested.values()), background
        assert all(by_source[s] == n for s, n in harvested.items()), (by_source, harvested)  # every new document kept
        for doc_id, sdgs in last.items():
            assert store.document(doc_id)["manual_sdgs"] == sdgs, doc_id
    finally:
        store.close()
    assert counts["documents"] == sum(by_source.values())
    assert not write_errors, write_errors[:5]


def test_a_write_waits_for_a_read_on_the_shared_connection_instead_of_failing(tmp_path: Path) -> None:
    """What makes PATCH /api/documents answer 500 under load: the API shares one connection between its threads."""
    store = Store(tmp_path / "ssehub.db")
    for i in range(20):
        store.upsert_document(Document(id=f"d{i}", source_id="t", text=f"some text {i}"))
    reading = store.db.execute("SELECT id FROM documents")  # a search thread, part way through its rows
    reading.fetchone()
    other = Store(tmp_path / "ssehub.db")  # `ssehub index` in another process
    other.upsert_document(Document(id="b", source_id="t", text="other text"))
    other.close()
    threading.Timer(0.3, reading.close).start()  # the search finishes a moment later
    store.set_hidden("d0", True)  # must wait for it (busy_timeout is 30 s), not fail
    assert store.document("d0")["hidden"] is True
