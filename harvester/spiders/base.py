"""The generic spider every kind builds on: URL policy, conditional requests, documents, attachments, failures."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from harvester.items import PageItem
from harvester.tracker import RunTracker
from harvester.urls import canonical_link, is_pdf_url, page_document_id, same_site, site_of
from ssehub.models import normalize_url
from ssehub.sources import SourceConfig
from ssehub.store import Store, now

logger = logging.getLogger(__name__)

# Statuses a document callback handles itself: 304 (not modified) and 404/410 (gone upstream).
HANDLED = [304, 404, 410]
PDF_TYPES = ("application/pdf", "application/x-pdf")
# Links that often serve a PDF without saying so in the URL; only a PDF Content-Type makes them attachments.
DOWNLOAD_PATH = re.compile(r"/(download|bitstream|attachments?)/|[?&](download|format=pdf)", re.IGNORECASE)


class BaseSpider(scrapy.Spider):
    """Shared logic; subclasses say where document URLs come from (`start`, and their own callbacks)."""

    kind: ClassVar[str] = ""
    # Re-check, at the end, stored pages that no listing led to this time (gone pages get withdrawn).
    # Feeds show a window of recent items, so a page missing from one is not a sign it is gone.
    revisit_unlisted: ClassVar[bool] = True
    default_type: ClassVar[str] = ""

    def __init__(self, source: SourceConfig, store: Store, tracker: RunTracker, **kwargs: Any) -> None:
        super().__init__(name=source.id, **kwargs)
        self.source = source
        self.store = store
        self.tracker = tracker
        self.known: dict[str, dict[str, Any]] = store.pages_of(source.id)
        self.sites = {site_of(u) for u in source.entry_urls()}
        self.entries = {normalize_url(u) for u in source.entry_urls()}
        self.max_url_length = 2083  # Scrapy's URLLENGTH_LIMIT, read from the crawler's settings in from_crawler
        self.exclude = [re.compile(p) for p in source.exclude]
        self.seen: set[str] = set()
        self.document_requests = 0
        self.truncated = False
        self._revisited = False
        self.started = now()  # a finished run's start becomes the next run's `since` (modified_after, OAI from=)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> BaseSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._on_idle, signal=signals.spider_idle)
        crawler.signals.connect(spider._on_response, signal=signals.response_received)
        spider.max_url_length = crawler.settings.getint("URLLENGTH_LIMIT", spider.max_url_length) or 10**9
        return spider

    # -- requests --------------------------------------------------------------------------

    def allowed(self, url: str) -> bool:
        """Same site and not excluded by the source's regexes."""
        return same_site(url, self.sites) and not any(p.search(url) for p in self.exclude)

    def follow(
        self, url: str, callback: Any, *, document: bool = False, priority: int = 0, conditional: bool = True, **cb_kwargs: Any
    ) -> Request | None:
        """A request for a URL not yet requested this run (None if seen, excluded, off-site or over the cap).

        Document requests carry If-None-Match / If-Modified-Since from the last fetch and accept 304/404/410.
        """
        key = normalize_url(url)
        if key in self.seen or not self.allowed(url):
            return None
        if document and self.document_requests >= self.source.max_documents:
            self.truncated = True
            return None
        self.seen.add(key)
        if len(url) > self.max_url_length:
            # Scrapy drops such a request with an INFO line nobody sees; the curator gets the URL and a way out.
            self.tracker.fail(url, "url_too_long", f"{len(url)} characters, over the {self.max_url_length} fetched; if such "
                              "links are not documents (a calendar, a search), an `exclude` pattern in sources.yaml skips them")
            return None
        headers: dict[str, str] = {}
        meta: dict[str, Any] = {}
        if document:
            self.document_requests += 1
            meta["handle_httpstatus_list"] = HANDLED
            page = (self.known.get(url) or self.known.get(key)) if conditional else None
            if page and page.get("status") == 200:
                if page.get("etag"):
                    headers["If-None-Match"] = page["etag"]
                if page.get("last_modified"):
                    headers["If-Modified-Since"] = page["last_modified"]
        # dont_filter: we deduplicate normalised URLs above; Scrapy's filter would also swallow redirect loops silently.
        return Request(
            url,
            callback=callback,
            errback=self.on_error,
            headers=headers,
            meta=meta,
            cb_kwargs=cb_kwargs,
            dont_filter=True,
            priority=priority,
        )

    def mark_listed(self, url: str) -> None:
        """Note a URL as accounted for this run without fetching it (e.g. skipped by sitemap lastmod)."""
        self.seen.add(normalize_url(url))

    def document_request(
        self, url: str, hints: dict[str, Any] | None = None, parent_id: str | None = None, conditional: bool = True
    ) -> Request | None:
        """Request a document page or file (unconditionally when its metadata changed elsewhere, e.g. an OAI record)."""
        return self.follow(
            url, self.parse_document, document=True, priority=1, conditional=conditional, hints=hints or {}, parent_id=parent_id
        )

    # -- responses -------------------------------------------------------------------------

    def item(self, response: Response, event: str, **fields: Any) -> PageItem:
        """A PageItem for a response, with its validators."""
        headers = response.headers
        return PageItem(
            source_id=self.source.id,
            url=response.url,
            event=event,
            status=response.status,  # type: ignore[arg-type]
            etag=(headers.get("ETag") or b"").decode("latin-1") or None,
            last_modified=(headers.get("Last-Modified") or b"").decode("latin-1") or None,
            content_type=(headers.get("Content-Type") or b"").decode("latin-1"),
            **fields,
        )

    def navigation_item(self, response: Response) -> PageItem:
        """Record of a sitemap, feed or listing page."""
        return self.item(response, "navigation")

    def parse_document(self, response: Response, hints: dict[str, Any], parent_id: str | None) -> Iterator[Any]:
        """A document page or file: 304, gone, PDF, or HTML (with its canonical and its attachments)."""
        if response.status == 304:
            yield self.item(response, "not_modified", parent_id=parent_id)
            yield from self._recheck_attachments(response.url)
            return
        if response.status in (404, 410):
            if hints.get("fallback_text"):
                yield self.item(response, "failed", reason=f"http_{response.status}", detail=f"HTTP {response.status}")
                yield self.fallback_document(response.url, hints)
            else:
                yield self.item(response, "gone")
            return
        if origin := self.redirected_to_entry(response):
            # Sites send a removed page to their home page: that page is not the document, and stored under the
            # document's id it would replace it. The stored copy is kept (a failure, not a withdrawal).
            yield PageItem(source_id=self.source.id, url=origin, event="failed", status=response.status, reason="soft_404",
                           detail=f"redirected to {response.url}, the site's home or start page; the stored copy is kept")
            return
        doc_id = hints.get("doc_id")
        ctype = (response.headers.get("Content-Type") or b"").decode("latin-1").split(";")[0].strip().lower()
        if (
            ctype in PDF_TYPES
            or response.body[:5] == b"%PDF-"
            or (is_pdf_url(response.url) and not isinstance(response, TextResponse))
        ):
            yield self.item(response, "document", body=response.body, parent_id=parent_id, hints=hints, doc_id=doc_id)
            return
        if hints.get("attachment"):
            yield self.navigation_item(response)  # a download link that turned out not to be a PDF
            return
        if not isinstance(response, TextResponse):
            yield self.item(response, "failed", reason="unsupported_type", detail=ctype or "unknown content type")
            return
        canonical = canonical_link(response.url, response.css('link[rel~="canonical"]::attr(href)').get(), self.sites)
        if canonical and self.is_entry_page(canonical) and not self.is_entry_page(response.url):
            canonical = None  # a CMS naming its home page the canonical of every page: trusted, it would drop them all
        if canonical and normalize_url(canonical) != normalize_url(response.url):
            # An alternate view (e.g. another interface language) of a record: store the canonical page once.
            yield self.item(response, "duplicate", canonical=canonical)
            if request := self.document_request(canonical, hints):
                yield request
            return
        yield self.item(
            response,
            "document",
            body=response.body,
            encoding=response.encoding,
            canonical=canonical,
            parent_id=parent_id,
            hints=hints,
            doc_id=doc_id,
        )
        doc_id = doc_id or page_document_id(self.source.id, response.url, canonical)
        yield from self.attachments(response, doc_id)

    def _on_response(self, response: Response, request: Request, **_: Any) -> None:
        """An entry page redirected to another origin (http to https, a bare domain to www.) moves the source there:
        otherwise every link, attachment and canonical of the moved site is off-site and nothing is harvested."""
        origins = request.meta.get("redirect_urls")
        if origins and normalize_url(origins[0]) in self.entries and site_of(response.url) not in self.sites:
            logger.info("%s: %s moved to %s; following the site there", self.source.id, origins[0], response.url)
            self.sites.add(site_of(response.url))
            self.entries.add(normalize_url(response.url))

    def is_entry_page(self, url: str) -> bool:
        """Whether a URL is a site's root or one of the source's entry pages (a home page or a listing, no document)."""
        key = normalize_url(url)
        return urlsplit(key).path in ("", "/") or key in self.entries

    def redirected_to_entry(self, response: Response) -> str | None:
        """The URL a document was requested at, when a redirect took it to the site's root or the source's entry page."""
        origins = response.meta.get("redirect_urls")
        if not origins or normalize_url(origins[0]) == normalize_url(response.url) or self.is_entry_page(origins[0]):
            return None
        return origins[0] if self.is_entry_page(response.url) else None

    def attachments(self, response: TextResponse, doc_id: str) -> Iterator[Request]:
        """Requests for the PDFs a document page links to on the same site (by extension, type or download path)."""
        links = [(response.urljoin((a.attrib.get("href") or "").strip()), a.attrib.get("type") or "") for a in response.css("a[href]")]
        yield from self.attachment_requests(links, doc_id)

    def attachment_requests(self, links: list[tuple[str, str]], doc_id: str) -> Iterator[Request]:
        """Requests for linked files that look like PDFs, from (absolute URL, type attribute) pairs, on the same site."""
        for url, link_type in links:
            pdf_type = "pdf" in link_type.lower()
            if (is_pdf_url(url) or pdf_type or DOWNLOAD_PATH.search(url)) and self.allowed(url):
                if request := self.document_request(url, {"attachment": True}, parent_id=doc_id):
                    yield request

    def fallback_document(self, url: str, hints: dict[str, Any]) -> PageItem:
        """A document from metadata alone (an OAI description) when its full text could not be had."""
        return PageItem(
            source_id=self.source.id, url=hints.get("doc_url") or url, event="document", status=200, derived=True,
            body=hints["fallback_text"].encode("utf-8"), format="text", hints=hints, doc_id=hints.get("doc_id"),
        )

    def _recheck_attachments(self, page_url: str) -> Iterator[Request]:
        """A page that did not change still gets its known attachments re-checked (they may change on their own)."""
        page = self.known.get(page_url) or self.known.get(normalize_url(page_url))
        if not page or not page.get("document_id"):
            return
        for child in self.store.child_documents(page["document_id"]):
            if request := self.document_request(child["url"], {"attachment": True}, parent_id=page["document_id"]):
                yield request

    # -- failures and the end of the crawl ------------------------------------------------

    def on_error(self, failure: Failure) -> Iterator[PageItem]:
        """Turn a failed request into one failed (or skipped) item; the crawl goes on."""
        request: Request = failure.request  # type: ignore[attr-defined]
        reason, detail = failure_reason(failure)
        event = "skipped" if reason in ("robots", "host_busy") else "failed"
        status = failure.value.response.status if failure.check(HttpError) else None
        yield PageItem(source_id=self.source.id, url=request.url, event=event, status=status, reason=reason, detail=detail)  # type: ignore[arg-type]
        hints = request.cb_kwargs.get("hints") or {}
        if hints.get("fallback_text"):
            yield self.fallback_document(request.url, hints)

    def _on_idle(self) -> None:
        if self._revisited or not self.revisit_unlisted or self.truncated:
            return
        self._revisited = True
        requests = []
        for url, page in self.known.items():
            if page.get("document_id") and page.get("status") == 200 and normalize_url(url) not in self.seen:
                if request := self.document_request(url, {"revisit": True}):
                    requests.append(request)
        if not requests:
            return
        for request in requests:
            self.crawler.engine.crawl(request)
        raise DontCloseSpider


def failure_reason(failure: Failure) -> tuple[str, str]:
    """A short reason (counted) and a detail (logged) for a failed request."""
    exc = failure.value
    if failure.check(HttpError):
        retry_after = (exc.response.headers.get("Retry-After") or b"").decode("latin-1").strip()
        return f"http_{exc.response.status}", f"HTTP {exc.response.status}" + (f" (Retry-After: {retry_after})" if retry_after else "")
    if failure.check(IgnoreRequest):
        message = str(exc)
        if "robots.txt" in message:
            return "robots", "disallowed by robots.txt"
        if "redirections" in message:
            return "redirect_loop", message
        if "to a private address refused" in message:
            return "private_redirect", message
        if message.endswith("(Retry-After): not fetched this run"):
            return "host_busy", message
        if "exceeded DOWNLOAD_MAXSIZE" in message:  # a compressed body that grows past the cap while decompressed
            return "too_big", message
        return "ignored", message
    if failure.check(DownloadTimeoutError, TimeoutError):
        return "timeout", str(exc)
    if failure.check(CannotResolveHostError):
        return "dns", str(exc)
    if failure.check(DownloadCancelledError):
        return "too_big", str(exc)
    if failure.check(DownloadConnectionRefusedError, DownloadFailedError, ResponseDataLossError):
        return "connection", str(exc) or type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower(), str(exc)
