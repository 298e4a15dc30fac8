"""Downloader middlewares: a wait before Scrapy's RetryMiddleware retries (the server's Retry-After, else a backoff), no
redirect from a public host into a private network, and robots.txt as RFC 9309 reads it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler
from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

MAX_WAIT = 120.0  # a server asking for a longer wait is left alone until the next harvest
HOST_BUSY = (429, 503)  # answers about the whole server (too many requests, overloaded), not about one page


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
    """Sits after RetryMiddleware on the response path, so the retry it schedules comes after the wait.

    A 429/503 speaks for the server, not for one URL: the whole host waits (SlotDownloader.pause). A server asking for
    longer than MAX_WAIT is left alone for the rest of the run: the refused URL fails once, without retries, and every
    later request to the host is skipped (`host_busy`), so the run ends instead of knocking every two minutes for hours.
    Nothing stored is withdrawn for it; the next harvest carries on.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
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
        refuse = getattr(self.crawler.engine.downloader, "refuse", None)
        if wait is not None and wait > MAX_WAIT and response.status in HOST_BUSY and refuse is not None:
            refuse(request, wait, f"the server asked to wait {wait:.0f} s (Retry-After): not fetched this run")
            request.meta["dont_retry"] = True
            return response
        if wait is None:
            # Scrapy retries at once; a struggling server gets exponential backoff instead (1x, 2x, ... the base).
            wait = self.backoff * 2 ** request.meta.get("retry_times", 0)
        if wait:
            wait = min(wait, MAX_WAIT)  # (a 500 or 502 asking for hours is retried after the longest wait a run takes)
            logger.debug("%s: HTTP %s, retrying in %.1f s", request.url, response.status, wait)
            if response.status in HOST_BUSY:
                # The server speaks for itself, not for this URL: the other queued pages wait too.
                pause = getattr(self.crawler.engine.downloader, "pause", None)
                if pause is not None:
                    pause(request, wait)
            await asyncio.sleep(wait)
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


DISALLOW_ALL = b"User-agent: *\nDisallow: /\n"
MAX_CRAWL_DELAY = 60.0  # a robots.txt asking for more would stretch one harvest over days; this is still very polite


class RobotsPolicyMiddleware(RobotsTxtMiddleware):
    """robots.txt read as RFC 9309 reads it, where Scrapy's own middleware (which this replaces) differs:

    - a robots.txt the server cannot serve (5xx or 429 after the retries, a timeout, a refused connection) means
      "fetch nothing from this host" (RFC 9309 2.3.1.4). Scrapy parsed the error page as rules, which allow
      everything, or on a timeout allowed everything after logging a traceback. The run reports it once, with the
      robots.txt URL, and nothing stored changes: the skipped pages are neither refetched nor withdrawn.
    - a 4xx means there are no rules (2.3.1.3); Scrapy parsed the 404 page's HTML as rules.
    - `Crawl-delay` (not in the RFC, but what the site asks for) becomes a floor under the source's delay and
      AutoThrottle's, held by SlotDownloader, up to MAX_CRAWL_DELAY.
    """

    async def robot_parser(self, request: Request) -> RobotParser | None:
        netloc = urlparse_cached(request).netloc
        if netloc not in self._parsers:
            self._parsers[netloc] = Deferred()
            robots_url = f"{urlparse_cached(request).scheme}://{netloc}/robots.txt"
            rules = await self._fetch_rules(robots_url)
            parser = build_from_crawler(self._parserimpl, self.crawler, rules)
            await self.crawler.signals.send_catch_log_async(signal=signals.robots_parsed, robotparser=parser, request=request)
            self._hold_to_crawl_delay(parser, request)
            waiting = self._parsers[netloc]
            self._parsers[netloc] = parser
            if isinstance(waiting, Deferred):
                waiting.callback(parser)
        parser = self._parsers[netloc]
        if isinstance(parser, Deferred):
            return await maybe_deferred_to_future(parser)
        return parser

    async def _fetch_rules(self, robots_url: str) -> bytes:
        """The rules to obey for a host: its robots.txt, none (4xx) or everything disallowed (unreachable)."""
        robots = Request(robots_url, priority=self.DOWNLOAD_PRIORITY, meta={"dont_obey_robotstxt": True}, callback=NO_CALLBACK)
        try:
            response = await self.crawler.engine.download_async(robots)
        # Timeouts, refused connections, DNS, a refused redirect: unreachable. Any error at all must end here, or every
        # request to the host would wait for a parser that never comes.
        except Exception as exc:  # noqa: BLE001
            self._report(robots_url, f"robots.txt could not be fetched ({type(exc).__name__}: {exc})")
            return DISALLOW_ALL
        if response.status >= 500 or response.status == 429:
            self._report(robots_url, f"robots.txt answered HTTP {response.status}")
            return DISALLOW_ALL
        return response.body if response.status < 400 else b""

    def _report(self, robots_url: str, problem: str) -> None:
        """One failure per host on the run, saying what happened and what it means for the curator."""
        tracker = getattr(self.crawler.spider, "tracker", None)
        detail = (f"{problem}; RFC 9309 asks crawlers to fetch nothing from the host then, so nothing was fetched from it "
                  "this run and nothing stored from it was changed; the next harvest tries again")
        if tracker is None:
            logger.warning("%s: %s", robots_url, detail)
        else:
            tracker.fail(robots_url, "robots_unreachable", detail)

    def _hold_to_crawl_delay(self, parser: RobotParser, request: Request) -> None:
        useragent = self._robotstxt_useragent or request.headers.get(b"User-Agent", self._default_useragent)
        delay = parser.crawl_delay(useragent)
        set_floor = getattr(self.crawler.engine.downloader, "set_floor", None)
        if delay and delay > 0 and set_floor is not None:
            set_floor(request, min(float(delay), MAX_CRAWL_DELAY))
