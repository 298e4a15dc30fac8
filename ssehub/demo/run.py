"""`ssehub demo`: serve the bundled demo sites on 127.0.0.1, harvest them, index, and serve the hub."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import click
import yaml

from ssehub.errors import SourceError
from ssehub.settings import Settings

log = logging.getLogger(__name__)
SITES_DIR = Path(__file__).resolve().parent / "sites"
SITE_BASE_PORT = 8101  # the demo sites keep these ports while the hub serves, so result links open


def demo_sources(urls: dict[str, str]) -> dict:
    """sources.yaml entries for the three demo sites, one per harvest kind built so far."""
    return {"sources": [
        {"id": "observatoire", "name": "Observatoire de l'économie solidaire (demo)", "kind": "sitemap",
         "url": f"{urls['observatoire']}/sitemap.xml", "delay": 0, "languages": ["fr", "en", "es"]},
        {"id": "solidarity_news", "name": "Solidarity Economy News (demo)", "kind": "feed",
         "url": f"{urls['solidarity-news']}/feed/index.xml",
         "start_urls": [f"{urls['solidarity-news']}/feed/index.xml", f"{urls['solidarity-news']}/atom.xml"],
         "delay": 0, "languages": ["en", "es"]},
        {"id": "research_centre", "name": "SSE Research Centre working papers (demo)", "kind": "crawl",
         "url": f"{urls['research-centre']}/", "start_urls": [f"{urls['research-centre']}/papers/index.html"],
         "follow": [r"/papers/(index\.html)?$", r"/papers/page/\d+\.html$"],
         "documents": [r"/papers/wp-\d+\.html$", r"/papers/pdf/wp-\d+\.pdf$"], "delay": 0,
         "languages": ["en", "fr", "es"]},
    ]}


def _free_base_port() -> int:
    """SITE_BASE_PORT when its three ports are free, else 0 (any free ports)."""
    import socket

    for offset in range(3):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", SITE_BASE_PORT + offset))
            except OSError:
                return 0
    return SITE_BASE_PORT


def run_demo(settings: Settings, port: int, serve: bool = True) -> None:
    """Sites up -> harvest (in a subprocess: Twisted's reactor runs once per process) -> index -> serve."""
    from ssehub.demo.server import serve_sites

    sites = {name: SITES_DIR / name for name in ("observatoire", "solidarity-news", "research-centre")}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sources_file = settings.data_dir / "demo-sources.yaml"
    settings = settings.model_copy(update={"sources": sources_file})
    with serve_sites(sites, port=_free_base_port()) as urls:
        sources_file.write_text(yaml.safe_dump(demo_sources(urls), sort_keys=False, allow_unicode=True), encoding="utf-8")
        click.echo(f"demo sites: {', '.join(urls.values())}")
        started = time.monotonic()
        cmd = [sys.executable, "-m", "ssehub", "--data", str(settings.data_dir), "--sources", str(sources_file), "harvest"]
        done = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)
        for line in done.stdout.splitlines():  # its summary, less the advice to run `ssehub index`: the demo does next
            if not line.startswith("Next: "):
                click.echo(line)
        if done.returncode != 0:
            raise SourceError("the demo harvest failed (see the messages above)")
        click.echo(f"harvested in {time.monotonic() - started:.1f} s")
        from indexer.pipeline import index

        started = time.monotonic()
        report = index(settings, progress=sys.stderr.isatty())
        summary = ", ".join(f"{k} {v}" for k, v in report.items())
        click.echo(f"indexed in {time.monotonic() - started:.1f} s: {summary}")
        if not serve:
            click.echo(f"done: `ssehub --data {settings.data_dir} serve` serves the result")
            return
        import uvicorn

        from searchapi.app import create_app

        click.echo(f"serving http://{settings.host}:{port}/ (Ctrl-C stops)")
        uvicorn.run(create_app(settings), host=settings.host, port=port, log_level="warning")
