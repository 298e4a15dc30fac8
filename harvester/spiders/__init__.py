"""Spiders, one per source kind; `SPIDERS` maps a sources.yaml `kind` to its spider class."""

from __future__ import annotations

from harvester.spiders.base import BaseSpider
from harvester.spiders.crawl import CrawlSpider
from harvester.spiders.feed import FeedSpider
from harvester.spiders.sitemap import SitemapSpider

# Adding a kind (wordpress, oai-pmh) is one module with a BaseSpider subclass and one line here.
SPIDERS: dict[str, type[BaseSpider]] = {cls.kind: cls for cls in (SitemapSpider, FeedSpider, CrawlSpider)}


def spider_for(kind: str) -> type[BaseSpider] | None:
    """The spider class of a source kind, or None if that kind is not harvested by a spider yet."""
    return SPIDERS.get(kind)
