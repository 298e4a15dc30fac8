"""Load on the HTTP API: C concurrent asyncio clients (httpx) for S seconds on loopback; requests/s, errors, latency.

    .venv/bin/python -m bench.load --url http://127.0.0.1:8000 [--clients 32] [--seconds 30] [--mode hybrid]

The client runs on the same machine as the server and takes part of its CPU: on 2 cores the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.perf_corpus import QUERIES


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


async def run_load(
    url: str, clients: int = 32, seconds: float = 30, mode: str = "hybrid", queries: Sequence[str] = QUERIES
) -> dict[str, Any]:
    """Requests/s, errors (by status) and latency percentiles of /api/search under `clients` clients, cycling `queries`."""
    paths = itertools.cycle([f"/api/search?{httpx.QueryParams(q=q, mode=mode)}" for q in queries])
    out: dict[str, Any] = {"requests": 0, "errors": 0, "statuses": {}, "latencies": [], "queries": len(queries)}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(_client(http, paths, stop, out) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    lat = sorted(out.pop("latencies")) or [0.0]
    return {
        "mode": mode, "clients": clients, "seconds": round(elapsed, 1), **out,
        "requests_per_s": round(out["requests"] / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(lat), 1), "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--mode", default="hybrid")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run_load(args.url, args.clients, args.seconds, args.mode)), indent=2))


if __name__ == "__main__":
    main()
