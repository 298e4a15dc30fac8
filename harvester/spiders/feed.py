"""Feed spider: RSS 2.0 and Atom; each item's link is fetched as a document, the item's metadata kept as fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import feedparser
from scrapy import Request
from scrapy.http import Response

from harvester.extract import iso_date
from harvester.items import PageItem
from harvester.spiders.base import BaseSpider


def entry_hints(entry: Any) -> dict[str, Any]:
    """Title, date and authors of a feed entry, used where the page itself lacks them."""
    authors = [a.get("name", "").strip() for a in entry.get("authors", []) if a.get("name")]
    if not authors and entry.get("author"):
        authors = [entry["author"].strip()]
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    return {"title": (entry.get("title") or "").strip(), "published": iso_date(published), "authors": authors, "type": "news"}


class FeedSpider(BaseSpider):
    """Harvests the pages an RSS or Atom feed links to; `url` (or `start_urls`) are the feeds."""

    kind = "feed"
    revisit_unlisted = False  # a feed is a window on recent items; an older item's absence means nothing
    default_type = "news"

    async def start(self) -> AsyncIterator[Request]:
        for url in self.source.entry_urls():
            if request := self.follow(url, self.parse_feed):
                yield request

    def parse_feed(self, response: Response) -> Iterator[Any]:
        parsed = feedparser.parse(response.body, response_headers={"content-location": response.url})
        if parsed.bozo and not parsed.entries:
            yield self.item(response, "failed", reason="bad_feed", detail=str(parsed.get("bozo_exception", "unparsable")))
            return
        yield self.navigation_item(response)
        for entry in parsed.entries:
            link = entry.get("link") or next((lk.get("href") for lk in entry.get("links", []) if lk.get("href")), None)
            if not link:
                continue
            url = response.urljoin(link)
            if not self.allowed(url):
                yield PageItem(source_id=self.source.id, url=url, event="skipped", reason="offsite")
                continue
            if request := self.document_request(url, entry_hints(entry)):
                yield request
        # Paged feeds (RFC 5005) link to older items with rel="next".
        for link in parsed.feed.get("links", []):
            if link.get("rel") == "next" and link.get("href"):
                if request := self.follow(response.urljoin(link["href"]), self.parse_feed):
                    yield request
