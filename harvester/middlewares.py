"""Downloader middlewares: a wait before Scrapy's RetryMiddleware retries (the server's Retry-After, else a backoff), and
no redirect from a public host into a private network."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
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


class PrivateRedirectMiddleware:
    """Refuses a redirect from a public host to a private, loopback or link-local one (unless
    SSEHUB_ALLOW_PRIVATE_SOURCES): the API checks the URLs a curator gives, but a public page answering
    `302 Location: http://169.254.169.254/...` or `http://127.0.0.1:8000/admin` would otherwise lead the harvester
    there and store what it finds as a searchable document. A source that starts on a private host (the operator's
    own, the demo sites) may redirect within it. Host lookups are cached per crawl."""

    def __init__(self, crawler: Crawler) -> None:
        self.allowed = crawler.settings.getbool("ALLOW_PRIVATE_SOURCES")
        self._problems: dict[str, str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateRedirectMiddleware:
        return cls(crawler)

    def _problem(self, url: str) -> str | None:
        """Why the URL's host is not public (cached per host), or None."""
        from ssehub.netguard import url_problem

        try:
            host = urlsplit(url).netloc
        except ValueError:
            return None  # not ours to judge: the download fails on its own
        if host not in self._problems:
            self._problems[host] = url_problem(url)
        return self._problems[host]

    def process_request(self, request: Request) -> None:
        """IgnoreRequest for a redirect that leaves a public host for a non-public address."""
        origins = request.meta.get("redirect_urls")
        if self.allowed or not origins or self._problem(origins[0]) is not None:
            return
        problem = self._problem(request.url)
        if problem:
            raise IgnoreRequest(f"redirect from {origins[0]} to a private address refused: {problem}")
