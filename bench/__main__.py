"""The performance suite (`make bench`): indexing vs a plain encode loop, search latency, throughput and memory at
each size, harvest speed. Prints a table and writes bench/results/perf.json.

    .venv/bin/python -m bench                                  # everything at 10k and 100k passages
    .venv/bin/python -m bench --sizes 10k --load-seconds 10    # a quick run (a few minutes)
    .venv/bin/python -m bench --parts search --sizes 1m        # the large run (builds a cached corpus first)
    .venv/bin/python -m bench --parts search --workers 1,2     # `ssehub serve --workers N`, side by side
    .venv/bin/python -m bench --parts search --load-modes hybrid,semantic,keyword   # unique-query load in each mode
    .venv/bin/python -m bench --parts profile --sizes 100k     # in process: catalog vs SQLite, time per stage
    .venv/bin/python -m bench --parts catalog --sizes 1m       # the in-memory catalog alone at 1M (synthetic rows)

The machine's load average is recorded beside the figures: on a shared machine compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("index", "search", "profile", "catalog", "harvest")


def size_of(text: str) -> int:
    """'10k' -> 10000, '1m' -> 1000000, '2500' -> 2500."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def harvest(pages: int) -> dict[str, Any]:
    """bench/harvest.py (the harvester's own benchmark) with one extraction worker."""
    subprocess.run([sys.executable, "-m", "bench.harvest", "--pages", str(pages), "--workers", "1"], check=True,
                   capture_output=True, cwd=RESULTS.parent.parent)
    return json.loads((RESULTS / "harvest.json").read_text())["runs"][0]


def table(result: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    lines = [f"load average {result['load_before']} -> {result['load_after']} on {result['cpus']} cores"]
    ix = result.get("index")
    if ix:
        from bench.perf_index import lines as index_lines

        lines += index_lines(ix)  # every backend, with and without the e5 pass, beside the plain loops
    if result.get("search"):
        lines.append("\nsearch  passages  workers  index  recall@10 k=10/1000  ready s  warm s  RSS MB  PSS MB   hybrid p50/p95   semantic p50/p95"
                     "   keyword p50/p95   req/s unique/mixed (32 clients)  errors  server CPU ms/req unique/mixed  load tool")
        for s in result["search"]:
            load, mixed = s.get("load", {}), s.get("load_mixed", {})
            modes = "".join(f"  {s[m]['p50_ms']:7.1f}/{s[m]['p95_ms']:<7.1f}" for m in ("hybrid", "semantic", "keyword"))
            lines.append(f"        {s['size']:>8}  {s.get('workers', 1):>7}  {s['index']['kind']:>5}  {s['recall_at_10']:.3f}/{s.get('recall_at_10_served', 0):.3f}  {s['ready_s']:7.2f}  "
                         f"{s.get('warm_s', 0):6.2f}  {s['rss_mb']:6}  {s.get('pss_mb', 0):6}{modes}   "
                         f"{load.get('requests_per_s', '-'):>9}/{mixed.get('requests_per_s', '-'):<9}"
                         f"          {load.get('errors', '-')}/{mixed.get('errors', '-')}"
                         f"  {load.get('server_cpu_ms', '-'):>15}/{mixed.get('server_cpu_ms', '-'):<15}  {load.get('tool', '-')}")
        for s in result["search"]:
            for mode in ("semantic", "keyword"):
                other = s.get(f"load_{mode}")
                if other:
                    lines.append(f"        {s['size']:>8}  unique {mode} queries: {other['requests_per_s']} req/s, "
                                 f"{other['errors']} errors, server CPU {other['server_cpu_ms']} ms/req")
    if result.get("profile"):
        from bench.perf_profile import table as profile_table

        lines.append(profile_table(result["profile"]))
    for c in result.get("catalog", []):
        lines.append(f"\ncatalog alone at {c['size']} passages ({c['documents']} documents): built in {c['build_s']} s, "
                     f"{c['memory_mb']} MB; per search (ms): {c['per_search_ms']}")
    hv = result.get("harvest")
    if hv:
        lines.append(f"\nharvest: {hv['documents']} pages in {hv['seconds']:.1f} s = {hv['pages_per_s']:.1f} pages/s "
                     f"(1 extraction worker, loopback site)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--sizes", default="10k,100k", help="corpus sizes in passages for search, e.g. 10k,100k,1m")
    parser.add_argument("--requests", type=int, default=40, help="sequential requests per mode for p50/p95")
    parser.add_argument("--load-seconds", type=float, default=30, help="duration of the concurrent load (0: skip)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", default="1", help="comma-separated `ssehub serve --workers` counts to compare")
    parser.add_argument("--load-modes", default="hybrid",
                        help="search modes loaded with unique queries, e.g. hybrid,semantic,keyword (hybrid always)")
    parser.add_argument("--docs", type=int, default=300, help="documents for the indexing comparison")
    parser.add_argument("--harvest-pages", type=int, default=500)
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: use {', '.join(PARTS)}")
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                              "python": platform.python_version(), "load_before": round(os.getloadavg()[0], 2),
                              "args": vars(args)}
    if "index" in parts:
        from bench import perf_index

        log("indexing ...")
        result["index"] = perf_index.run(args.docs, log=log)
    if "search" in parts:
        from bench import perf_search

        result["search"] = []
        for size in [size_of(s) for s in args.sizes.split(",") if s.strip()]:
            for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
                log(f"search at {size} passages, {workers} worker(s) ...")
                result["search"].append(
                    perf_search.run(size, args.requests, args.load_seconds, args.clients, log=log, workers=workers,
                                    load_modes=tuple(m.strip() for m in args.load_modes.split(",") if m.strip()))
                )
    if "profile" in parts:
        from bench import perf_profile

        result["profile"] = []
        for size in [size_of(s) for s in args.sizes.split(",") if s.strip()]:
            log(f"profile at {size} passages ...")
            result["profile"].append(perf_profile.run(size, log=log))
    if "catalog" in parts:
        from bench import perf_profile

        result["catalog"] = [perf_profile.catalog_scale(size_of(s)) for s in args.sizes.split(",") if s.strip()]
    if "harvest" in parts:
        log("harvest ...")
        result["harvest"] = harvest(args.harvest_pages)
    result["load_after"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "perf.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(table(result))
    print(f"\nwritten {RESULTS / 'perf.json'}")


if __name__ == "__main__":
    main()
