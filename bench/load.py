"""Load on the HTTP API: C concurrent clients for S seconds on loopback; requests/s, errors, latency, client CPU.

    .venv/bin/python -m bench.load --url http://127.0.0.1:8000 [--clients 32] [--seconds 30] [--mode hybrid] [--tool httpx]

The load runs on the same machine as the server. wrk (Debian package `wrk`; `make bench` installs it) costs ~0.15 ms
of CPU per request; the fallback, an asyncio httpx client, ~3-4 ms, which on 2 cores is CPU the server does not get
(measured against the same server: 63 vs 36-49 req/s). `client_cpu_ms` says what the load tool itself cost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.perf_corpus import QUERIES

log = logging.getLogger(__name__)

# Cycles the paths of the file in WRK_PATHS, one connection after another; counts answers by status.
WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; statuses = {} end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n - 1) % #paths + 1])
end
function response(status, headers, body)
  if status ~= 200 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  local out = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do out[#out + 1] = string.format('"%d": %d', status, count) end
  end
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "p50_us": %d, "p95_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "statuses": {%s}}\n', summary.requests, latency:percentile(50),
    latency:percentile(95), e.connect, e.read, e.write, e.timeout, table.concat(out, ", ")))
end
"""


def search_paths(queries: Sequence[str], mode: str = "hybrid") -> list[str]:
    """The /api/search request path of each query."""
    return [f"/api/search?{httpx.QueryParams(q=q, mode=mode)}" for q in queries]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, paths: Sequence[str], clients: int = 32, seconds: float = 30) -> dict[str, Any]:
    """Requests/s, errors and latency from wrk (one thread, `clients` connections) cycling `paths`."""
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "paths.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
        cpu0, start = _children_cpu(), time.perf_counter()
        done = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "60s", "-s", str(script), url],
            env={**os.environ, "WRK_PATHS": str(listing)}, capture_output=True, text=True, check=True,
        )
        elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    match = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    got = json.loads(match[1])
    statuses = {k: v for k, v in got["statuses"].items()}
    statuses |= {kind: got[kind] for kind in ("connect", "read", "write", "timeout") if got[kind]}  # socket errors
    requests = got["requests"]
    return {
        "tool": "wrk", "clients": clients, "seconds": round(elapsed, 1), "requests": requests,
        "errors": sum(statuses.values()), "statuses": statuses, "queries": len(paths),
        "requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(got["p50_us"] / 1000, 1), "p95_ms": round(got["p95_us"] / 1000, 1),
        "client_cpu_ms": round(1000 * cpu / max(requests, 1), 2),
    }


async def _client(http: httpx.AsyncClient, paths: itertools.cycle, stop: float, out: dict[str, Any]) -> None:
    while time.perf_counter() < stop:
        path = next(paths)
        t0 = time.perf_counter()
        try:
            response = await http.get(path)
            ok, status = response.status_code == 200, str(response.status_code)
        except httpx.HTTPError as exc:
            ok, status = False, type(exc).__name__
        if not ok:  # what went wrong, so an error count can be explained
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
        out["latencies"].append(time.perf_counter() - t0)
        out["requests"] += 1
        out["errors"] += not ok


async def run_httpx(url: str, paths: Sequence[str], clients: int = 32, seconds: float = 30) -> dict[str, Any]:
    """Requests/s, errors (by status) and latency percentiles from `clients` asyncio httpx clients cycling `paths`."""
    cycle = itertools.cycle(paths)
    out: dict[str, Any] = {"requests": 0, "errors": 0, "statuses": {}, "latencies": [], "queries": len(paths)}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    cpu0 = time.process_time()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(_client(http, cycle, stop, out) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    lat = sorted(out.pop("latencies")) or [0.0]
    return {
        "tool": "httpx", "clients": clients, "seconds": round(elapsed, 1), **out,
        "requests_per_s": round(out["requests"] / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(lat), 1), "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
        "client_cpu_ms": round(1000 * cpu / max(out["requests"], 1), 2),
    }


def run_load(
    url: str, clients: int = 32, seconds: float = 30, mode: str = "hybrid", queries: Sequence[str] = QUERIES,
    tool: str = "auto",
) -> dict[str, Any]:
    """Load on /api/search cycling `queries`: wrk when installed (or `tool="wrk"`), else the httpx client."""
    paths = search_paths(queries, mode)
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        return {"mode": mode, **run_wrk(url, paths, clients, seconds)}
    if tool == "auto":
        log.warning("wrk is not installed (`make bench` installs it): the load comes from the Python client, which "
                    "takes ~3-4 ms of CPU per request from the server's cores")
    return {"mode": mode, **asyncio.run(run_httpx(url, paths, clients, seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args()
    print(json.dumps(run_load(args.url, args.clients, args.seconds, args.mode, tool=args.tool), indent=2))


if __name__ == "__main__":
    main()
