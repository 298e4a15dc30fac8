"""Spiders, one per source kind; `SPIDERS` maps a sources.yaml `kind` to its spider class."""

from __future__ import annotations

from harvester.spiders.base import BaseSpider
from harvester.spiders.crawl import CrawlSpider
from harvester.spiders.feed import FeedSpider
from harvester.spiders.oai import OaiPmhSpider
from harvester.spiders.sitemap import SitemapSpider
from harvester.spiders.wordpress import WordPressSpider

# Adding a kind is one module with a BaseSpider subclass and one entry here.
SPIDERS: dict[str, type[BaseSpider]] = {
    cls.kind: cls for cls in (SitemapSpider, FeedSpider, WordPressSpider, OaiPmhSpider, CrawlSpider)
}


def spider_for(kind: str) -> type[BaseSpider] | None:
    """The spider class of a source kind, or None if that kind is not harvested by a spider yet."""
    return SPIDERS.get(kind)
