"""Item pipelines, one job each: extract text and metadata, detect language, guess type, store and count."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from scrapy.crawler import Crawler

from harvester.doctype import guess_type
from harvester.extract import Extracted, ExtractionError, decode_html, extract_html, extract_pdf
from harvester.items import PageItem
from harvester.language import detect_language
from harvester.urls import page_document_id
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
    """Document bodies to text and metadata (HTML with trafilatura, PDF with pypdf); failures become failed items."""

    def process_item(self, item: PageItem) -> PageItem:
        if item.event != "document":
            return item
        try:
            if item.body[:5] == b"%PDF-" or "pdf" in item.content_type.lower():
                item.is_pdf = True
                found = extract_pdf(item.body)
            else:
                found = extract_html(decode_html(item.body, item.encoding), item.url)
        except ExtractionError as exc:
            item.event, item.reason, item.detail = "failed", exc.reason, exc.detail
            return item
        self._fill(item, found)
        item.doc_id = page_document_id(item.source_id, item.url, item.canonical)
        return item

    @staticmethod
    def _fill(item: PageItem, found: Extracted) -> None:
        hints = item.hints
        item.text = found.text
        # Feed items carry an editor's title; a PDF's info title is often a file name, so the page wins there.
        item.title = found.title or hints.get("title", "")
        if item.is_pdf and hints.get("title") and not found.title:
            item.title = hints["title"]
        item.published = found.published or hints.get("published")
        item.authors = found.authors or list(hints.get("authors", []))
        if not item.title:
            item.title = first_line(found.text)


class LanguagePipeline(_Pipeline):
    """Language from the extracted text."""

    def process_item(self, item: PageItem) -> PageItem:
        if item.event == "document":
            item.lang = detect_language(item.text)
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
    """Write documents and page records, withdraw gone documents, count everything on the run."""

    def process_item(self, item: PageItem) -> PageItem:
        spider = self.spider
        store, tracker, source = spider.store, spider.tracker, spider.source
        if item.event == "skipped":
            tracker.count(f"skipped_{item.reason}")
            return item
        if item.status is not None:
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
            store.record_page(
                item.url,
                source.id,
                status=item.status,
                etag=item.etag,
                last_modified=item.last_modified,
                document_id=doc_id,
                error=None,
            )
        elif item.event == "document":
            self._document(item)
        return item

    def _document(self, item: PageItem) -> None:
        spider = self.spider
        assert item.doc_id is not None
        doc = Document(
            id=item.doc_id,
            source_id=item.source_id,
            text=item.text,
            title=item.title,
            url=normalize_url(item.canonical or item.url),
            lang=item.lang,
            published=item.published,
            authors=item.authors,
            type=item.type,
            parent_id=item.parent_id,
            licence=spider.source.licence,
        )
        result = spider.store.upsert_document(doc)
        spider.tracker.count(result)
        if item.parent_id:
            spider.tracker.count("attachments")
        spider.store.record_page(
            item.url,
            item.source_id,
            status=item.status,
            etag=item.etag,
            last_modified=item.last_modified,
            content_hash=_hash(item.body),
            document_id=item.doc_id,
            error=None,
        )
        logger.debug("%s: %s %s (%s, %s)", item.source_id, result, item.url, doc.lang, doc.type)

    def _gone(self, item: PageItem) -> None:
        """404/410: withdraw the stored document this URL is the address of; an unknown URL is a failure."""
        spider = self.spider
        page = spider.store.page(item.url)
        doc_id = page.get("document_id") if page else None
        brief = spider.store.documents_brief([doc_id]).get(doc_id) if doc_id else None
        spider.store.record_page(item.url, item.source_id, status=item.status, error=f"http_{item.status}")
        # An alternate URL of a record going away does not withdraw the record itself.
        if brief and normalize_url(brief["url"]) == normalize_url(item.url):
            if spider.store.withdraw_document(doc_id):
                spider.tracker.count("withdrawn")
                logger.info("%s: withdrawn %s (HTTP %s)", item.source_id, item.url, item.status)
            return
        spider.tracker.fail(item.url, f"http_{item.status}", f"HTTP {item.status}")


def first_line(text: str, limit: int = 150) -> str:
    """A stand-in title: the text's first line, cut at a word boundary."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def _hash(body: bytes) -> str | None:
    return hashlib.sha256(body).hexdigest()[:32] if body else None
