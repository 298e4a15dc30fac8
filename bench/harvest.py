"""Harvest throughput: a generated 2,000-page loopback site (sitemap), delay 0, pages per second with extraction.

Each configuration runs `ssehub harvest` in a subprocess against a fresh store (the Twisted reactor cannot restart),
with extraction in worker processes (the default) and inline on the crawler's thread, for comparison.

    .venv/bin/python -m bench.harvest [--pages 2000]
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


def harvest_once(site_url: str, tmp: Path, workers: int) -> dict[str, float]:
    data = tmp / f"data-{workers}"
    sources = tmp / "sources.yaml"
    sources.write_text(f"sources:\n  - id: bench\n    kind: sitemap\n    url: {site_url}/\n    delay: 0\n    max_documents: 100000\n")
    env = {**os.environ, "SSEHUB_EXTRACT_WORKERS": str(workers)}
    t0 = time.perf_counter()
    cpu0 = os.times()
    proc = subprocess.run([sys.executable, "-m", "ssehub", "--data", str(data), "--sources", str(sources), "harvest"],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    cpu1 = os.times()
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    store = Store(data / "ssehub.db")
    docs = store.counts()["documents"]
    store.close()
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    # workers=0 means inline; the CPU time of the harvest process and its workers over wall time = cores kept busy.
    return {"workers": workers, "documents": docs, "seconds": seconds, "pages_per_s": docs / seconds, "cores_busy": cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 0], help="extraction workers per run (0 = inline)")
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
    print(f"{'extraction':<16} {'docs':>6} {'seconds':>8} {'pages/s':>8} {'cores busy':>11}")
    for r in rows:
        label = "inline" if r["workers"] == 0 else f"{r['workers']} worker(s)"
        print(f"{label:<16} {r['documents']:>6} {r['seconds']:8.1f} {r['pages_per_s']:8.1f} {r['cores_busy']:11.2f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "harvest.json"
    path.write_text(json.dumps({"pages": args.pages, "cpus": os.cpu_count(), "runs": rows}, indent=2), encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()
