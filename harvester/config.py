"""Scrapy settings, derived in this one function from the project's Settings (no scrapy.cfg, no settings module)."""

from __future__ import annotations

import logging
from typing import Any

from harvester.work import default_workers
from ssehub.settings import Settings
from ssehub.sources import SourceConfig

RETRY_CODES = [500, 502, 503, 504, 522, 524, 408, 429]


def scrapy_settings(settings: Settings, source: SourceConfig | None = None, log_level: str | None = None) -> dict[str, Any]:
    """Scrapy settings for one source's crawler (or the process-wide part when `source` is None)."""
    delay = settings.default_delay if source is None or source.delay is None else source.delay
    if log_level is None:
        # The CLI asks for detail by lowering the root logger; otherwise Scrapy stays quiet.
        log_level = "DEBUG" if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else "WARNING"
    common: dict[str, Any] = {
        "BOT_NAME": "ssehub",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "DOWNLOADER": "harvester.downloader.SlotDownloader",  # enforces the line above (see its docstring)
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        # Scrapy starts this many tasks for every response's output (100 by default): most responses yield one item,
        # and those 100 tasks cost the crawler thread more than a page's own parsing. 16 still lets a listing's
        # records (OAI, REST: up to 100 per page) reach the extraction workers in full batches.
        "CONCURRENT_ITEMS": 16,
        "DOWNLOAD_TIMEOUT": settings.request_timeout,
        "DOWNLOAD_MAXSIZE": settings.max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,  # the size cap is reported as a counted failure instead
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 2,
        "RETRY_HTTP_CODES": RETRY_CODES,
        "RETRY_GIVE_UP_LOG_LEVEL": "DEBUG",  # every failure is logged once, by the run tracker
        "REDIRECT_MAX_TIMES": 10,
        "DOWNLOADER_MIDDLEWARES": {"harvester.middlewares.RetryAfterMiddleware": 560,
                                   "harvester.middlewares.PrivateRedirectMiddleware": 590,
                                   "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
                                   "harvester.middlewares.RobotsPolicyMiddleware": 100},
        "ALLOW_PRIVATE_SOURCES": settings.allow_private_sources,  # read by PrivateRedirectMiddleware
        "RETRY_BACKOFF": settings.retry_backoff,  # read by RetryAfterMiddleware
        "ITEM_PIPELINES": {
            "harvester.pipelines.ExtractPipeline": 100,
            "harvester.pipelines.LanguagePipeline": 200,
            "harvester.pipelines.TypePipeline": 300,
            "harvester.pipelines.StorePipeline": 900,
        },
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": log_level,
        "LOG_INSTALL_ROOT_HANDLER": False,  # logging handlers belong to the CLI
        "LOGSTATS_INTERVAL": 0,
        "DEPTH_LIMIT": 0,
        # Extraction runs in worker processes so that the crawler's thread keeps downloading (0 = inline).
        "EXTRACT_WORKERS": settings.extract_workers if settings.extract_workers >= 0 else default_workers(),
        # Scrapy 2.19 has a single request fingerprinter (REQUEST_FINGERPRINTER_IMPLEMENTATION was removed);
        # spiders deduplicate normalised URLs themselves and mark requests dont_filter.
    }
    if source is None:
        # The process-wide part: CrawlerProcess merges it into every crawler, so it must not carry a source's delay.
        return common
    return common | {
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if delay else 0.0,
        # AutoThrottle only slows down: it starts at the source's delay (not its 5 s default) and never goes below it.
        # A delay of 0 (local demo and test sites) means no politeness is needed, so no throttling either.
        "AUTOTHROTTLE_ENABLED": delay > 0,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(30.0, delay * 4),
    }
