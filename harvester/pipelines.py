"""Item pipelines, one job each: extract text and metadata, detect language, guess type, store and count."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from scrapy.crawler import Crawler

from harvester.doctype import guess_type
from harvester.dedup import NearDuplicates
from harvester.extract import Extracted
from harvester.items import PageItem
from harvester.urls import page_document_id, same_site
from harvester.work import Analyser, default_workers
from ssehub.models import Document, normalize_url

logger = logging.getLogger(__name__)


class _Pipeline:
    """Gives a pipeline its crawler's spider (Scrapy 2.13+ no longer passes it to process_item)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _Pipeline:
        return cls(crawler)

    @property
    def spider(self) -> Any:
        return self.crawler.spider


class ExtractPipeline(_Pipeline):
    """Document bodies to text, metadata, language and MinHash, in worker processes; failures become failed items."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.analyser = Analyser(crawler.settings.getint("EXTRACT_WORKERS", default_workers()))

    def close_spider(self) -> None:
        self.analyser.close()

    async def process_item(self, item: PageItem) -> PageItem:
        if item.event != "document":
            return item
        result = await self.analyser.run(
            item.body, item.format, item.encoding, item.content_type, item.url, item.hints.get("fallback_text", "")
        )
        if result.found is None:
            item.event, item.reason, item.detail = "failed", result.reason, result.detail
            return item
        if result.reason:
            self.spider.tracker.fail(item.url, result.reason, f"{result.detail} (kept the record's description)")
        item.is_pdf, item.lang, item.signature = result.is_pdf, result.lang, result.signature
        self._fill(item, result.found)
        item.doc_id = item.doc_id or page_document_id(item.source_id, item.url, item.canonical)
        return item

    @staticmethod
    def _fill(item: PageItem, found: Extracted) -> None:
        hints = item.hints
        item.text = found.text
        if hints.get("prefer_hints"):
            # Curated metadata (Dublin Core, WordPress fields) beats what a file's own info dictionary says.
            found = Extracted(found.text, hints.get("title") or found.title, hints.get("published") or found.published,
                              list(hints.get("authors") or found.authors))
        # Feed items carry an editor's title; a PDF's info title is often a file name, so the page wins there.
        item.title = found.title or hints.get("title", "")
        if item.is_pdf and hints.get("title") and not found.title:
            item.title = hints["title"]
        item.published = found.published or hints.get("published")
        item.authors = found.authors or list(hints.get("authors", []))
        if not item.title:
            item.title = first_line(found.text)


class LanguagePipeline(_Pipeline):
    """Language from the extracted text (detected by the workers); the source's metadata only when the text cannot tell."""

    def process_item(self, item: PageItem) -> PageItem:
        if item.event == "document" and not item.lang:
            item.lang = item.hints.get("lang", "")
        return item


class TypePipeline(_Pipeline):
    """Document type from title, URL and (for PDFs) the cover text; the spider's kind gives the default."""

    def process_item(self, item: PageItem) -> PageItem:
        if item.event == "document":
            default = item.hints.get("type") or self.spider.default_type
            if not default:
                default = "article" if (item.published or item.authors) else "page"
            item.type = guess_type(item.title, item.url, item.text, is_pdf=item.is_pdf, default=default)
        return item


class StorePipeline(_Pipeline):
    """Write documents, their locations and page records, withdraw gone documents, count everything on the run.

    A document is written with its location, MinHash and page record in one transaction, so a harvest killed at
    any point leaves either all of it or none of it.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.aliases: dict[str, str] = {}  # own id of a near-duplicate page -> the document it resolved to

    def process_item(self, item: PageItem) -> PageItem:
        spider = self.spider
        store, tracker, source = spider.store, spider.tracker, spider.source
        if item.event == "skipped":
            tracker.count(f"skipped_{item.reason}")
            return item
        if item.status is not None and not item.derived:
            tracker.count("fetched")
        if item.event == "failed":
            tracker.fail(item.url, item.reason, item.detail)
            # A failed re-fetch keeps what the last good fetch recorded (validators, time), so nothing is skipped by it.
            old = store.page(item.url)
            if old:
                store.record_page(item.url, source.id, error=item.reason, fetched_at=old["fetched_at"])
            else:
                store.record_page(item.url, source.id, status=item.status, error=item.reason)
        elif item.event == "navigation":
            store.record_page(item.url, source.id, status=item.status, content_hash=_hash(item.body))
        elif item.event == "not_modified":
            tracker.count("not_modified")
            store.record_page(item.url, source.id)  # keeps the validators, refreshes fetched_at
        elif item.event == "gone":
            self._gone(item)
        elif item.event == "duplicate":
            tracker.count("duplicates")
            doc_id = page_document_id(source.id, item.url, item.canonical)
            doc_id = self._resolved(doc_id)
            with store.transaction():
                store.record_page(item.url, source.id, status=item.status, etag=item.etag,
                                  last_modified=item.last_modified, document_id=doc_id, error=None)
                store.add_location(doc_id, normalize_url(item.url), source.id)
        elif item.event == "document":
            self._document(item)
        return item

    def _resolved(self, doc_id: str) -> str:
        """The document an id stands for: itself, or the document its page turned out to duplicate."""
        if doc_id in self.aliases:
            return self.aliases[doc_id]
        return doc_id

    def _document(self, item: PageItem) -> None:
        spider = self.spider
        store, tracker = spider.store, spider.tracker
        assert item.doc_id is not None
        url = normalize_url(item.hints.get("doc_url") or item.canonical or item.url)
        sig = None if item.signature is None else np.frombuffer(item.signature, dtype=np.uint64)
        page = dict(status=item.status, etag=item.etag, last_modified=item.last_modified, content_hash=_hash(item.body), error=None)
        near = NearDuplicates(store)
        parent = self._resolved(item.parent_id) if item.parent_id else None
        doc = Document(
            id=item.doc_id, source_id=item.source_id, text=item.text, title=item.title, url=url, lang=item.lang,
            published=item.published, authors=item.authors, type=item.type, parent_id=parent,
            licence=spider.source.licence, extra=item.extra,
        )
        with store.transaction():
            own_stored = bool(store.documents_brief([item.doc_id]))
            match = None if own_stored else near.find(sig, exclude=item.doc_id, record=doc.hash)
            if match is not None:
                # The same text is already stored (another site, another URL): one document, one more location.
                self.aliases[item.doc_id] = match.document_id
                store.add_location(match.document_id, url, item.source_id)
                if self._follows(match.document_id, url):
                    store.set_document_location(match.document_id, url, item.source_id)
                    tracker.count("relocated")
                store.record_page(item.url, item.source_id, document_id=match.document_id, **page)
                self._record_listing(item, match.document_id)
                tracker.count("near_duplicates")
                logger.info("%s: %s is a near-duplicate (%.2f) of %s", item.source_id, item.url, match.similarity, match.document_id)
                return
            result = store.upsert_document(doc)
            store.add_location(item.doc_id, url, item.source_id)
            if result != "unchanged":
                near.remember(item.doc_id, sig, doc.hash)
            store.record_page(item.url, item.source_id, document_id=item.doc_id, **page)
            self._record_listing(item, item.doc_id)
        tracker.count(result)
        if item.parent_id:
            tracker.count("attachments")
        logger.debug("%s: %s %s (%s, %s)", item.source_id, result, item.url, doc.lang, doc.type)

    def _follows(self, doc_id: str, url: str) -> bool:
        """Whether a stored document found again at `url` moves there (its hits then link to `url`, under this source).

        It does when the source moved: the document is this source's, but its URL is on a host the source no longer
        names (a curator edited `url` after the site moved; the old host is never fetched again, so its hits linked to
        a dead host for ever). And when the source was renamed: the document is at this very URL under a source id
        sources.yaml no longer lists (it stayed there, and the renamed source showed 0 documents).
        """
        spider = self.spider
        owner = spider.store.documents_brief([doc_id]).get(doc_id)
        if owner is None or (normalize_url(owner["url"]) == url and owner["source"] == spider.source.id):
            return False
        if owner["source"] == spider.source.id:
            return not same_site(owner["url"], spider.sites)
        configured = getattr(spider, "configured_sources", None)
        return configured is not None and owner["source"] not in configured and normalize_url(owner["url"]) == url

    def _record_listing(self, item: PageItem, doc_id: str) -> None:
        """An API record (OAI header, REST entry) is remembered with its own stamp, so an unchanged one is not refetched."""
        record = item.hints.get("record_url")
        if record and record != item.url:
            self.spider.store.record_page(
                record, item.source_id, status=200, last_modified=item.hints.get("record_stamp"), document_id=doc_id, error=None
            )

    def _gone(self, item: PageItem) -> None:
        """404/410 or a deleted record: withdraw the document, or drop the location if the document lives elsewhere too."""
        spider = self.spider
        store, tracker = spider.store, spider.tracker
        page = store.page(item.url)
        doc_id = item.doc_id or (page.get("document_id") if page else None)
        brief = store.documents_brief([doc_id]).get(doc_id) if doc_id else None
        reason = item.reason or f"http_{item.status}"
        store.record_page(item.url, item.source_id, status=item.status, error=reason)
        url = normalize_url(item.url)
        if item.doc_id:
            # The source says so itself (an OAI deleted record): withdraw, whatever URL the document had.
            if brief and store.withdraw_document(item.doc_id):
                tracker.count("withdrawn")
            return
        if brief and normalize_url(brief["url"]) == url:
            others = [loc for loc in store.locations(doc_id) if loc["url"] != url]
            store.remove_location(url)
            if others:
                # Still posted elsewhere: the document stays, at its next location.
                store.set_document_location(doc_id, others[0]["url"], others[0]["source_id"])
                tracker.count("relocated")
            elif store.withdraw_document(doc_id):
                tracker.count("withdrawn")
                logger.info("%s: withdrawn %s (HTTP %s)", item.source_id, item.url, item.status)
            return
        location = store.location(url)
        if location and location["document_id"] == doc_id and doc_id:
            store.remove_location(url)  # one of several places the document was posted at
            tracker.count("locations_removed")
            return
        # An alternate URL of a record going away does not withdraw the record itself.
        tracker.fail(item.url, reason, f"HTTP {item.status}")


def first_line(text: str, limit: int = 150) -> str:
    """A stand-in title: the text's first line, cut at a word boundary."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def _hash(body: bytes) -> str | None:
    return hashlib.sha256(body).hexdigest()[:32] if body else None
