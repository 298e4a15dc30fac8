"""Downloader middleware that waits before Scrapy's RetryMiddleware retries: the server's Retry-After, else a backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

logger = logging.getLogger(__name__)

MAX_WAIT = 120.0  # a longer wait is better spent on the next harvest


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class RetryAfterMiddleware:
    """Sits after RetryMiddleware on the response path, so the retry it schedules comes after the wait."""

    def __init__(self, crawler: Crawler) -> None:
        self.codes = {int(c) for c in crawler.settings.getlist("RETRY_HTTP_CODES")}
        self.max_retries = crawler.settings.getint("RETRY_TIMES")
        self.backoff = crawler.settings.getfloat("RETRY_BACKOFF", 1.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in self.codes or request.meta.get("retry_times", 0) >= self.max_retries:
            return response
        wait = retry_after_seconds(response.headers.get("Retry-After", b"").decode("latin-1"))
        if wait is None:
            # Scrapy retries at once; a struggling server gets exponential backoff instead (1x, 2x, ... the base).
            wait = self.backoff * 2 ** request.meta.get("retry_times", 0)
        if wait:
            logger.debug("%s: HTTP %s, retrying in %.1f s", request.url, response.status, wait)
            await asyncio.sleep(min(wait, MAX_WAIT))
        return response
