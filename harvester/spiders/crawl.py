"""Crawl spider: from `start_urls`, follow listing pages (`follow` regexes) to document pages (`documents` regexes)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request
from scrapy.http import Response, TextResponse

from harvester.spiders.base import BaseSpider


class CrawlSpider(BaseSpider):
    """Listing pages up to `max_depth` links from a start URL; every link matching `documents` is a document."""

    kind = "crawl"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.follow_patterns = [re.compile(p) for p in self.source.follow]
        self.document_patterns = [re.compile(p) for p in self.source.documents]

    async def start(self) -> AsyncIterator[Request]:
        for url in self.source.entry_urls():
            if request := self.follow(url, self.parse_listing, depth=0):
                yield request

    def parse_listing(self, response: Response, depth: int) -> Iterator[Any]:
        yield self.navigation_item(response)
        if not isinstance(response, TextResponse):
            return
        # <link rel="next"> counts as a listing link too: pagination is often only there.
        hrefs = response.css("a[href]::attr(href), link[rel~='next']::attr(href)").getall()
        for href in hrefs:
            url = response.urljoin(href.strip())
            if any(p.search(url) for p in self.document_patterns):
                if request := self.document_request(url):
                    yield request
            elif depth < self.source.max_depth and any(p.search(url) for p in self.follow_patterns):
                if request := self.follow(url, self.parse_listing, depth=depth + 1):
                    yield request
