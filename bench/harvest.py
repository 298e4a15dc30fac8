"""Harvest throughput: a generated 2,000-page loopback site (sitemap), delay 0, pages per second with extraction.

Each configuration runs `ssehub harvest` in a subprocess against a fresh store (the Twisted reactor cannot restart):
extraction inline on the crawler's thread and in one worker process, side by side. "cores busy" is CPU seconds over
wall seconds, split into the crawler process, its extraction workers and the loopback site server (this process).
On a shared machine the wall figures follow the load; the CPU per page shows what each part costs.

    .venv/bin/python -m bench.harvest [--pages 2000] [--workers 0 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssehub.demo.server import SiteGroup
from ssehub.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
VOCAB = ("cooperative members share ownership enterprise decide surplus solidarity economy social mutual association "
         "workers housing finance credit community local market fair trade energy renewable care services women rural "
         "urban network policy public procurement training income democratic governance capital investment").split()


def write_site(root: Path, pages: int) -> None:
    """A sitemap and `pages` article pages with distinct texts (no two are near-duplicates) and some chrome."""
    rng = random.Random(7)
    (root / "p").mkdir(parents=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\nSitemap: __BASE__/sitemap.xml\n")
    urls = "".join(f"<url><loc>__BASE__/p/{i}.html</loc></url>" for i in range(pages))
    (root / "sitemap.xml").write_text(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>')
    for i in range(pages):
        paras = "".join("<p>" + " ".join(rng.choice(VOCAB) for _ in range(70)) + ".</p>" for _ in range(5))
        (root / "p" / f"{i}.html").write_text(
            f"<!DOCTYPE html><html><head><title>Page {i}</title><meta name='author' content='Author {i % 37}'></head><body>"
            "<header><nav><a href='/'>Home</a> <a href='/about'>About</a> <a href='/contact'>Contact</a></nav></header>"
            f"<main><article><h1>Study number {i}</h1><time datetime='2020-01-{1 + i % 28:02d}'></time>{paras}</article></main>"
            "<footer>Copyright. All rights reserved. Privacy policy.</footer></body></html>"
        )


# Runs the CLI and reports, as its last stderr line, the CPU of the harvest process itself and of its workers.
CHILD = """
import json, resource, sys
from ssehub.cli import cli
try:
    cli(sys.argv[1:], prog_name="ssehub", standalone_mode=False)
finally:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"crawler": own.ru_utime + own.ru_stime, "workers": kids.ru_utime + kids.ru_stime}), file=sys.stderr)
"""


def harvest_once(site_url: str, tmp: Path, workers: int) -> dict[str, float]:
    data = tmp / f"data-{workers}"
    sources = tmp / "sources.yaml"
    sources.write_text(f"sources:\n  - id: bench\n    kind: sitemap\n    url: {site_url}/\n    delay: 0\n    max_documents: 100000\n")
    env = {**os.environ, "SSEHUB_EXTRACT_WORKERS": str(workers)}
    t0 = time.perf_counter()
    server0 = time.process_time()  # the site server's threads run in this process
    proc = subprocess.run([sys.executable, "-c", CHILD, "--data", str(data), "--sources", str(sources), "harvest"],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    server = time.process_time() - server0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    cpu = json.loads(proc.stderr.strip().splitlines()[-1])
    store = Store(data / "ssehub.db")
    docs = store.counts()["documents"]
    store.close()
    total = cpu["crawler"] + cpu["workers"] + server
    return {
        "workers": workers, "documents": docs, "seconds": seconds, "pages_per_s": docs / seconds,
        "cores_busy": total / seconds, "crawler_cores": cpu["crawler"] / seconds, "worker_cores": cpu["workers"] / seconds,
        "server_cores": server / seconds, "crawler_ms_per_page": 1000 * cpu["crawler"] / max(docs, 1),
        "worker_ms_per_page": 1000 * cpu["workers"] / max(docs, 1), "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1], help="extraction workers per run (0 = inline)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        write_site(tmp / "site", args.pages)
        group = SiteGroup({"bench": tmp / "site"})
        try:
            url = group.start()["bench"]
            for workers in args.workers:
                rows.append(harvest_once(url, tmp, workers))
        finally:
            group.close()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'extraction':<12} {'docs':>5} {'seconds':>8} {'pages/s':>8} {'cores busy':>10} {'crawler':>8} {'workers':>8} "
          f"{'server':>7} {'crawler ms/p':>12} {'worker ms/p':>11}")
    for r in rows:
        label = "inline" if r["workers"] == 0 else f"{r['workers']} worker(s)"
        print(f"{label:<12} {r['documents']:>5} {r['seconds']:8.1f} {r['pages_per_s']:8.1f} {r['cores_busy']:10.2f} "
              f"{r['crawler_cores']:8.2f} {r['worker_cores']:8.2f} {r['server_cores']:7.2f} {r['crawler_ms_per_page']:12.1f} "
              f"{r['worker_ms_per_page']:11.1f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "harvest.json"
    path.write_text(json.dumps({"pages": args.pages, "cpus": os.cpu_count(), "runs": rows}, indent=2), encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()
