"""Search at size: `ssehub serve` over a synthetic corpus, its readiness time and memory, /api/search latency per mode
(one client), throughput under concurrent clients, and the recall@10 of the index kind in use."""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import perf_corpus
from bench.load import run_load

MODES = ("hybrid", "semantic", "keyword")


def _tree(pid: int) -> list[int]:
    """The process and its descendants (`serve --workers N` forks N)."""
    out = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += _tree(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _tree_mb(pid: int, file: str, key: str) -> float:
    """The `key` field (kB) of /proc/<pid>/<file>, summed over the process and its children, in MB."""
    total = 0.0
    for each in _tree(pid):
        try:
            for line in Path(f"/proc/{each}/{file}").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (a figure that holds on a busy machine, where
    requests per second depend on what else runs)."""
    ticks = 0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def load(server: Server, clients: int, seconds: float, queries: list[str], mode: str = "hybrid") -> dict[str, Any]:
    """`bench.load` on searches in one mode (hybrid by default), with the server's CPU time per request."""
    cpu = cpu_seconds(server.proc.pid)
    out = run_load(server.url, clients, seconds, mode, queries)
    out["server_cpu_ms"] = round(1000 * (cpu_seconds(server.proc.pid) - cpu) / max(out["requests"], 1), 2)
    return out


def pss_mb(pid: int) -> float:
    """Proportional memory of a process and its children (shared pages split between their users), in MB: with
    `--workers N` mapping one index file, RSS counts its pages N times, PSS once."""
    return _tree_mb(pid, "smaps_rollup", "Pss:")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (VmRSS summed: `serve --workers N` forks N), in MB."""
    return _tree_mb(pid, "status", "VmRSS:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`ssehub serve` in a subprocess over a data folder; times readiness (health 200, then a first hybrid answer)."""

    def __init__(self, data: Path, workers: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SSEHUB_RATE_LIMIT": "0"}
        self.t0 = time.perf_counter()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  # closed in close(), after the server stops
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ssehub", "--data", str(data), "serve", "--port", str(self.port),
             *(["--workers", str(workers)] if workers > 1 else [])],
            # A file, not a pipe: a server logging tracebacks into a pipe nobody reads blocks once it holds 64 kB.
            env=env, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        self.ready_s = self._wait("/health")
        self.first_search_s = self._wait("/api/search?q=cooperatives")
        self.warm_s = self._wait_warm(in_a_row=4 * workers)

    def _wait_warm(self, in_a_row: int = 1, timeout: float = 600) -> float:
        """Seconds until /health reports the catalog and keyword engine loaded (searches at full speed), `in_a_row`
        times on fresh connections: with `--workers N` each answer comes from any one worker, and a worker still
        warming answers searches slowly (through SQLite)."""
        seen = 0
        while time.perf_counter() - self.t0 < timeout:
            warm = httpx.get(self.url + "/health", timeout=60).json().get("warm", {})
            seen = seen + 1 if warm and all(warm.values()) else 0
            if seen >= in_a_row:
                return time.perf_counter() - self.t0
            time.sleep(0.1 if seen == 0 else 0.01)
        raise RuntimeError(f"ssehub serve not warm after {timeout} s")

    def _wait(self, path: str, timeout: float = 300) -> float:
        while time.perf_counter() - self.t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ssehub serve exited: {self.errors()[-2000:]}")
            try:
                if httpx.get(self.url + path, timeout=60).status_code == 200:
                    return time.perf_counter() - self.t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"ssehub serve not ready on {path} after {timeout} s")

    def errors(self) -> str:
        """What the server wrote to stderr so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def error_summary(self) -> dict[str, int]:
        """Last line of each traceback the server logged -> count (why requests failed)."""
        out: dict[str, int] = {}
        lines = self.errors().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), None)
                if end is not None:
                    out[lines[end][:160]] = out.get(lines[end][:160], 0) + 1
        return out

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def queries(variant: int) -> list[str]:
    """~230 distinct queries: each bench query with a word of another one (variant 0 appends it, 1 prepends it).

    The server caches per query (embedding, typo corrections, keyword pool), so latency is measured on queries it has
    not seen, and the load cycles through many.
    """
    base = perf_corpus.QUERIES
    if variant == 0:
        return list(dict.fromkeys(f"{a} {b.split()[-1]}" for a in base for b in base if a != b))
    return list(dict.fromkeys(f"{b.split()[0]} {a}" for a in base for b in base if a != b))


def unique_queries(count: int, seed: int) -> list[str]:
    """`count` distinct three-word queries from the bench queries' words, none of them in `queries()`: a load where
    the server's per-query caches never hit."""
    words = sorted({w for q in perf_corpus.QUERIES for w in q.split() if len(w) > 3})
    possible = len(words) * (len(words) - 1) * (len(words) - 2)
    if count > possible // 2:  # the draw below would slow down, and never end past `possible`
        raise ValueError(f"at most {possible // 2} unique queries from {len(words)} words, not {count}")
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out.setdefault(" ".join(rng.sample(words, 3)), None)
    return list(out)


def mixed_queries(count: int, seed: int, skip: int) -> list[str]:
    """A realistic mix: half the requests one of 50 popular queries (Zipf-like weights), half a query seen once (from
    `unique_queries(..., seed)` after its first `skip`, which an earlier load used)."""
    rng = random.Random(seed)
    popular = unique_queries(50, seed + 1)
    weights = [1 / (rank + 1) for rank in range(len(popular))]
    fresh = iter(unique_queries(skip + count, seed)[skip:])
    return [rng.choices(popular, weights)[0] if rng.random() < 0.5 else next(fresh) for _ in range(count)]


def latencies(url: str, mode: str, requests: int) -> dict[str, float]:
    """p50/p95 of sequential /api/search calls (one client), each with a query the server has not seen yet."""
    out = []
    offset = MODES.index(mode) * (len(queries(0)) // len(MODES))
    fresh = queries(0)[offset : offset + requests]
    with httpx.Client(base_url=url, timeout=60) as http:
        for q in perf_corpus.QUERIES[:3]:
            http.get("/api/search", params={"q": q, "mode": mode})  # warm the process (model, index, catalog)
        for q in fresh:
            t0 = time.perf_counter()
            r = http.get("/api/search", params={"q": q, "mode": mode})
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    first = [round(1000 * t, 1) for t in out[:5]]
    out.sort()
    return {"p50_ms": round(1000 * statistics.median(out), 1), "p95_ms": round(1000 * out[int(0.95 * (len(out) - 1))], 1),
            "max_ms": round(1000 * out[-1], 1), "first_ms": first}


def drop_cached(path: Path) -> None:
    """Drop a file's pages from the page cache (those no process maps), as after a reboot: POSIX_FADV_DONTNEED."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def first_vector_searches(size: int, searches: int = 60, page_in: bool = False, cold: bool = False) -> dict[str, Any]:
    """Run in a fresh process: load the corpus's index as `ssehub serve` does (vectors mapped), page it in first if
    asked, then time its first `searches` searches for a pool of search's size (noisy topic queries); `cold` drops
    the index file from the page cache first.

    The fresh-server cost that one client's p95 rests on, without HTTP, model and keyword stage around it.
    """
    import resource

    import numpy as np

    from searchapi.search import POOL
    from ssehub.ann import INDEX_FILE, load_index

    folder = perf_corpus.build(size)
    if cold:
        drop_cached(folder / "index" / INDEX_FILE)
    t0 = time.perf_counter()
    index, _ = load_index(folder / "index", mmap=True)
    out: dict[str, Any] = {"size": size, "cold": cold, "load_s": round(time.perf_counter() - t0, 2),
                           "load_average": os.getloadavg()[0]}
    if page_in:
        out["page_in"] = index.page_in()
    rng = np.random.default_rng(11)
    bases = perf_corpus.topic_vectors(perf_corpus.topic_passages(np.random.default_rng(0)))
    queries = perf_corpus.noisy(bases[rng.integers(0, len(bases), 2 * searches)], rng, spread=1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF)
    times = []
    for q in queries[:searches]:
        t = time.perf_counter()
        index.search(q[None, :], POOL)
        times.append(1000 * (time.perf_counter() - t))
    after = resource.getrusage(resource.RUSAGE_SELF)
    again = []
    for q in queries[searches:]:
        t = time.perf_counter()
        index.search(q[None, :], POOL)
        again.append(1000 * (time.perf_counter() - t))
    ordered = sorted(times)
    out |= {"median_ms": round(statistics.median(times), 2), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max_ms": round(ordered[-1], 2), "first_ms": [round(t, 1) for t in times[:5]],
            "faults_minor_major": [after.ru_minflt - faults.ru_minflt, after.ru_majflt - faults.ru_majflt],
            "next_median_ms": round(statistics.median(again), 2), "rss_mb": round(rss_mb(os.getpid()))}
    return out


def main() -> None:
    """`python -m bench.perf_search --size 1m [--page-in]`: `first_vector_searches` in this fresh process, as JSON."""
    import argparse

    from bench.__main__ import size_of

    parser = argparse.ArgumentParser(description=first_vector_searches.__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m")
    parser.add_argument("--searches", type=int, default=60)
    parser.add_argument("--page-in", action="store_true", help="page the mapped vectors in before the searches")
    parser.add_argument("--cold", action="store_true", help="drop the index file from the page cache first")
    args = parser.parse_args()
    print(json.dumps(first_vector_searches(size_of(args.size), args.searches, args.page_in, args.cold)))


if __name__ == "__main__":
    main()


def prepare(folder: Path, log: Any = print) -> float:
    """Build and save the keyword engine beside the index as the first `ssehub serve` would (searchapi/saved.py), so
    the figures are those of a normal start; the seconds it took (0 when already saved)."""
    from searchapi.keyword import LiveKeyword
    from searchapi.search import SAVED_DIR
    from ssehub.store import Store

    store = Store(folder / "ssehub.db")
    try:
        saved = folder / "index" / SAVED_DIR / f"keyword-{store.keyword_stamp()}"
        if saved.exists():
            return 0.0
        t0 = time.perf_counter()
        LiveKeyword(store, folder / "index" / SAVED_DIR).get()
        log(f"  keyword engine built and saved in {time.perf_counter() - t0:.1f} s")
        return round(time.perf_counter() - t0, 1)
    finally:
        store.close()


def run(
    size: int, requests: int = 40, load_seconds: float = 30, clients: int = 32, log: Any = print, workers: int = 1,
    load_modes: tuple[str, ...] = ("hybrid",),
) -> dict[str, Any]:
    """Every search figure at one corpus size, with `ssehub serve --workers N`; `load_modes` other than hybrid add a
    unique-query load in that mode (`load_semantic`, `load_keyword`: server CPU per request by mode)."""
    t0 = time.perf_counter()
    folder = perf_corpus.build(size, log=log)
    manifest = json.loads((folder / "index" / "manifest.json").read_text())
    out: dict[str, Any] = {"size": size, "workers": workers, "build_s": round(time.perf_counter() - t0, 1), "index": manifest.get("index"),
                           "keyword_save_s": prepare(folder, log)}
    recall = perf_corpus.recalls(folder)
    out["recall_at_10"], out["recall_at_10_served"] = round(recall[10], 3), round(recall[1000], 3)
    server = Server(folder, workers)
    try:
        out |= {"ready_s": round(server.ready_s, 2), "first_search_s": round(server.first_search_s, 2),
                "warm_s": round(server.warm_s, 2), "rss_ready_mb": round(rss_mb(server.proc.pid))}
        for mode in MODES:
            out[mode] = latencies(server.url, mode, requests)
            log(f"  {size}: {mode} {out[mode]}")
        if load_seconds > 0:
            out["load"] = load(server, clients, load_seconds, unique_queries(20_000, 5))
            log(f"  {size}: load, unique queries {out['load']}")
            out["load_mixed"] = load(server, clients, load_seconds, mixed_queries(20_000, 5, skip=20_000))
            log(f"  {size}: load, mixed queries {out['load_mixed']}")
            for i, mode in enumerate(m for m in load_modes if m != "hybrid"):  # unique queries in the other modes
                out[f"load_{mode}"] = load(server, clients, load_seconds, unique_queries(20_000, 6 + i), mode)
                log(f"  {size}: load, unique {mode} queries {out[f'load_{mode}']}")
        out["rss_mb"] = round(rss_mb(server.proc.pid))
        out["pss_mb"] = round(pss_mb(server.proc.pid))
        out["server_errors"] = server.error_summary()
    finally:
        server.close()
    return out
