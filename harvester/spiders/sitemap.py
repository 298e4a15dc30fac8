"""Sitemap spider: robots.txt Sitemap: lines, sitemap indexes, gzipped sitemaps, and <lastmod> to skip unchanged URLs."""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.http import Response
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots

from harvester.items import PageItem
from harvester.spiders.base import BaseSpider

logger = logging.getLogger(__name__)


def parse_time(value: str | None) -> datetime | None:
    """A W3C datetime (sitemap lastmod) or our own ISO timestamps, as an aware UTC datetime."""
    if not value:
        return None
    value = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SitemapSpider(BaseSpider):
    """Harvests every URL the site's sitemaps list; `url` is a sitemap, a robots.txt, or the site root."""

    kind = "sitemap"

    async def start(self) -> AsyncIterator[Request]:
        for url in self.source.entry_urls():
            path = urlsplit(url).path
            if path.endswith("robots.txt"):
                request = self.follow(url, self.parse_robots)
            elif path in ("", "/"):
                # A site root: robots.txt names the sitemaps, /sitemap.xml is the usual fallback.
                request = self.follow(urljoin(url, "/robots.txt"), self.parse_robots)
            else:
                request = self.follow(url, self.parse_sitemap)
            if request:
                yield request

    def parse_robots(self, response: Response) -> Iterator[Any]:
        yield self.navigation_item(response)
        urls = list(sitemap_urls_from_robots(response.body, base_url=response.url))  # bytes: a str is deprecated (Scrapy 2.13)
        for url in urls or [urljoin(response.url, "/sitemap.xml")]:
            if request := self.follow(url, self.parse_sitemap):
                yield request

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        try:
            body = self._body(response)
        except ValueError as exc:  # Scrapy's decompression cap (a gzip bomb, or a sitemap too big for the setting)
            yield self.item(response, "failed", reason="too_big", detail=f"gzipped sitemap: {exc}")
            return
        sitemap = None
        if body is not None:
            try:
                sitemap = Sitemap(body)
            except Exception:  # lxml rejects some broken files outright
                sitemap = None
        if sitemap is None or sitemap.type not in ("sitemapindex", "urlset"):
            yield self.item(response, "failed", reason="bad_sitemap", detail="not a sitemap or sitemap index")
            return
        yield self.navigation_item(response)
        for entry in sitemap:
            loc = (entry.get("loc") or "").strip()
            if not loc:
                continue
            url = urljoin(response.url, loc)
            if sitemap.type == "sitemapindex":
                if request := self.follow(url, self.parse_sitemap):
                    yield request
            elif self._unchanged_since_fetch(url, entry.get("lastmod")):
                if self.allowed(url):
                    self.mark_listed(url)
                    yield PageItem(source_id=self.source.id, url=url, event="skipped", reason="lastmod")
            elif request := self.document_request(url):
                yield request

    def _body(self, response: Response) -> bytes | None:
        """The sitemap's XML, gunzipped (None when the gzip is broken); ValueError past the size cap."""
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                return gunzip(body, max_size=self.settings.getint("DOWNLOAD_MAXSIZE"))
            except (OSError, EOFError, struct.error, zlib.error):
                return None
        return body

    def _unchanged_since_fetch(self, url: str, lastmod: str | None) -> bool:
        """True when the sitemap says the URL has not changed since we last fetched it successfully."""
        page = self.known.get(url)
        modified = parse_time(lastmod)
        if not page or page.get("status") != 200 or not page.get("document_id") or modified is None:
            return False
        fetched = parse_time(page.get("fetched_at"))
        return fetched is not None and modified < fetched
