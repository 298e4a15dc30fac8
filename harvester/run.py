"""Entry point of a harvest: sources -> one Scrapy process with a crawler per source -> counted runs in the store."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from harvester.config import scrapy_settings
from harvester.spiders import SPIDERS, spider_for
from harvester.tracker import RunTracker
from ssehub.errors import ConfigError, SourceError
from ssehub.filelock import try_hold
from ssehub.models import normalize_url
from ssehub.settings import Settings
from ssehub.sources import SourceConfig, load_sources
from ssehub.store import Store

logger = logging.getLogger(__name__)

# Loggers that would repeat, in their own words, a failure the run tracker already logs once.
# trafilatura logs its parser's complaints about a broken page at ERROR; the page is counted as no_text.
REPEATING_LOGGERS = ("scrapy.core.downloader.handlers.http11", "pypdf", "scrapy.spidermiddlewares.httperror",
                     "scrapy.downloadermiddlewares.httpcompression", "trafilatura")


def select_sources(sources: list[SourceConfig], source_ids: Sequence[str] | None) -> list[SourceConfig]:
    """The named sources (any state), or every enabled source a spider can harvest."""
    by_id = {s.id: s for s in sources}
    if source_ids:
        unknown = [i for i in source_ids if i not in by_id]
        if unknown:
            raise ConfigError(f"unknown source {', '.join(unknown)}; known sources: {', '.join(sorted(by_id)) or '(none)'}")
        chosen = [by_id[i] for i in dict.fromkeys(source_ids)]
        unsupported = [s for s in chosen if spider_for(s.kind) is None]
        if unsupported:
            names = ", ".join(f"{s.id} (kind {s.kind})" for s in unsupported)
            raise ConfigError(f"cannot harvest {names}: harvested kinds are {', '.join(SPIDERS)}")
        return chosen
    chosen = []
    for src in sources:
        if not src.enabled or src.kind == "import":
            continue
        if spider_for(src.kind) is None:
            logger.warning("source %s: kind %s is not harvested yet; skipped", src.id, src.kind)
            continue
        chosen.append(src)
    return chosen


def harvest(settings: Settings, source_ids: Sequence[str] | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Harvest the enabled (or named) sources in one Scrapy process; returns one summary per source.

    Each summary is `{"run_id", "source", "counts", "errors"}`. The Twisted reactor cannot restart, so this runs
    once per process: callers that harvest repeatedly (tests, the API) run it in a subprocess.
    """
    sources = load_sources(settings.sources)
    store = Store(settings.store_path)
    for run_id in mark_interrupted_runs(store):
        logger.warning("run %s was killed before it finished: marked interrupted (this harvest picks up its work)", run_id)
    for src in sources:
        store.upsert_source(src)
    chosen = select_sources(sources, source_ids)
    if not chosen:
        logger.warning("no enabled source to harvest in %s", settings.sources)
        return []
    with claimed(store, chosen) as chosen:
        return _harvest(settings, store, chosen, progress, frozenset(s.id for s in sources))


@contextmanager
def claimed(store: Store, chosen: list[SourceConfig]) -> Iterator[list[SourceConfig]]:
    """The sources no other process is harvesting, each held by an exclusive lock file until the harvest ends.

    Two harvests of one source at once (cron and a curator, the CLI and the API) fetched every page twice, at twice
    the source's concurrency. The lock dies with its process, so a killed harvest never leaves a source locked. A busy
    source is left to the harvest that holds it (a warning); SourceError when every chosen source is busy.
    """
    held: list[tuple[SourceConfig, Any]] = []
    busy: list[str] = []
    try:
        for src in chosen:
            handle = try_hold(store.path.with_name(f"{store.path.name}.harvest-{src.id}.lock"))
            if handle is None:
                run = store.last_run(src.id)
                busy.append(f"source {src.id} is already being harvested" + (f" (run {run['id']})" if run else ""))
                continue
            held.append((src, handle))
        if not held:
            raise SourceError(f"{'; '.join(busy)}: try again when that harvest has finished")
        for message in busy:
            logger.warning("%s; not harvested again now", message)
        yield [src for src, _ in held]
    finally:
        for _, handle in held:
            handle.close()  # closing releases the lock


def _harvest(
    settings: Settings, store: Store, chosen: list[SourceConfig], progress: bool, configured: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Crawl the chosen (claimed) sources in one Scrapy process; one summary per source. `configured`: the ids
    sources.yaml lists (a document of another source found again is adopted: harvester/pipelines.py `_follows`)."""
    from scrapy.crawler import Crawler, CrawlerProcess  # heavy; only when a harvest really runs


    base = scrapy_settings(settings)
    quiet = logging.getLevelName(base["LOG_LEVEL"]) > logging.INFO
    if quiet:
        # CrawlerProcess reconfigures Scrapy's loggers (to DEBUG) and logs version banners while it starts.
        logging.disable(logging.INFO)
    try:
        process = CrawlerProcess(base)
    finally:
        if quiet:
            logging.disable(logging.NOTSET)
    # Scrapy's logging setup (run by CrawlerProcess) puts its loggers at DEBUG; bring them back to LOG_LEVEL.
    logging.getLogger("scrapy").setLevel(base["LOG_LEVEL"])
    for name in REPEATING_LOGGERS:  # after that setup, which resets the levels of Scrapy's own loggers
        logging.getLogger(name).setLevel(logging.ERROR)
    # trafilatura's own complaints come at ERROR ("parsed tree length: 0", "empty HTML tree"), in this process and in
    # the extraction workers it forks, for a page the run already counts as no_text with its URL and what to do.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    trackers: list[RunTracker] = []
    for i, src in enumerate(chosen):
        tracker = RunTracker(store, store.start_run([src.id]), src.id)
        store.set_run_process(tracker.run_id, os.getpid(), socket.gethostname())
        trackers.append(tracker)
        withdraw_excluded(store, src, tracker)
        # Crawlers built here (for their per-source settings) must install the reactor themselves, once.
        crawler = Crawler(spider_for(src.kind), scrapy_settings(settings, src), init_reactor=i == 0)  # type: ignore[arg-type]
        _watch(crawler, tracker)
        done = process.crawl(crawler, source=src, store=store, tracker=tracker, configured_sources=configured)
        done.addErrback(_crawl_failed, tracker)
    try:
        with _progress(trackers, progress):
            process.start()
    except BaseException:
        for tracker in trackers:
            tracker.flush("interrupted")
        raise
    summaries = []
    for tracker in trackers:
        status = {None: "finished", "finished": "finished", "error": "failed"}.get(tracker.close_reason, "interrupted")
        tracker.flush(status)
        if status == "finished" and tracker.watermark:
            # Only a finished run with a complete listing moves the incremental watermark: nothing is skipped.
            store.set_harvest_state(tracker.source_id, "since", tracker.watermark)
        summaries.append(tracker.summary())
        logger.info("harvest of %s: %s", tracker.source_id, _brief(tracker.counts))
    store.close()
    return summaries


def withdraw_excluded(store: Store, src: SourceConfig, tracker: RunTracker) -> int:
    """Withdraw the source's documents whose own URL an `exclude` pattern now matches; returns how many.

    A curator adds `exclude: ['/tag/']` to be rid of pages that are not documents, but the stored ones stayed in
    search for ever: an excluded URL is never fetched again, so no 404 ever withdrew it. They are withdrawn (kept
    with their history, counted and logged), and their page's validators are dropped: if the pattern is removed,
    the next harvest fetches them in full, which brings them back.
    """
    patterns = [re.compile(p) for p in src.exclude]
    if not patterns:
        return 0
    pages = [(url, page["document_id"]) for url, page in store.pages_of(src.id).items()
             if page.get("document_id") and any(p.search(url) for p in patterns)]
    brief = store.documents_brief([doc_id for _, doc_id in pages])
    withdrawn = 0
    for url, doc_id in pages:
        row = brief.get(doc_id)
        if row is None or normalize_url(row["url"]) != normalize_url(url):
            continue  # another URL of a document that lives elsewhere too
        store.record_page(url, src.id, etag=None, last_modified=None, error="excluded")
        if store.withdraw_document(doc_id):
            withdrawn += 1
            logger.info("%s: withdrawn %s: its URL matches an `exclude` pattern of sources.yaml", src.id, url)
    if withdrawn:
        tracker.count("withdrawn", withdrawn)
    return withdrawn


def mark_interrupted_runs(store: Store) -> list[int]:
    """Runs left `running` by a harvest process of this host that no longer exists (killed) become `interrupted`."""
    return store.interrupt_stale_runs()


def _crawl_failed(failure: Any, tracker: RunTracker) -> None:
    """A crawler that could not run at all: its run is marked failed, the other sources go on."""
    tracker.close_reason = "error"
    logger.error("harvest of %s failed: %s", tracker.source_id, failure.getErrorMessage())


def _watch(crawler: Any, tracker: RunTracker) -> None:
    """Count a bug in a callback or pipeline as a failure of its URL, and remember why the spider closed."""
    from scrapy import signals

    def spider_error(failure: Any, response: Any, spider: Any) -> None:
        tracker.fail(response.url, "spider_error", f"{type(failure.value).__name__}: {failure.value}")

    def item_error(item: Any, response: Any, spider: Any, failure: Any) -> None:
        tracker.fail(
            getattr(item, "url", "") or getattr(response, "url", ""),
            "pipeline_error",
            f"{type(failure.value).__name__}: {failure.value}",
        )

    def spider_closed(spider: Any, reason: str) -> None:
        tracker.close_reason = reason

    # Signals hold weak references by default; these closures must live as long as the crawl.
    crawler.signals.connect(spider_error, signal=signals.spider_error, weak=False)
    crawler.signals.connect(item_error, signal=signals.item_error, weak=False)
    crawler.signals.connect(spider_closed, signal=signals.spider_closed, weak=False)


def _line(counts: dict[str, Any]) -> str:
    """Short enough for an 80-column terminal."""
    same = counts.get("unchanged", 0) + counts.get("not_modified", 0) + counts.get("skipped_lastmod", 0)
    return (
        f"{counts.get('fetched', 0)} fetched, {counts.get('new', 0)} new, {counts.get('updated', 0)} upd, "
        f"{same} same, {counts.get('failed', 0)} failed"
    )


def _brief(counts: dict[str, Any]) -> str:
    keys = ("fetched", "new", "updated", "unchanged", "not_modified", "withdrawn", "failed")
    return ", ".join(f"{k} {counts.get(k, 0)}" for k in keys)


@contextmanager
def _progress(trackers: list[RunTracker], enabled: bool) -> Iterator[None]:
    """A live line per source on a terminal; nothing when disabled or not a TTY."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stop = threading.Event()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        tasks = {t.source_id: bar.add_task(t.source_id) for t in trackers}

        def refresh() -> None:
            while not stop.wait(0.3):
                for t in trackers:
                    bar.update(tasks[t.source_id], description=f"[bold]{t.source_id}[/]: {_line(dict(t.counts))}")

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            for t in trackers:
                bar.update(tasks[t.source_id], description=f"[bold]{t.source_id}[/]: {_line(dict(t.counts))}")
