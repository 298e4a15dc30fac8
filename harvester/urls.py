"""URL helpers shared by spiders and pipelines: same-site checks, canonical links and document ids."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from ssehub.models import document_id, normalize_url


def site_of(url: str) -> str:
    """scheme://host:port of a URL, normalised (fixture sites differ only by port, so the port counts)."""
    parts = urlsplit(normalize_url(url))
    return f"{parts.scheme}://{parts.netloc}"


def same_site(url: str, sites: set[str]) -> bool:
    """Whether a URL is on one of the given sites (as returned by `site_of`)."""
    return urlsplit(url).scheme in ("http", "https") and site_of(url) in sites


def canonical_link(base_url: str, href: str | None, sites: set[str]) -> str | None:
    """The absolute canonical URL of a page, kept only when it is on the same site."""
    if not href or not href.strip():
        return None
    url = urljoin(base_url, href.strip())
    return url if same_site(url, sites) else None


def page_document_id(source_id: str, url: str, canonical: str | None = None) -> str:
    """Stable document id of a page: keyed on its same-site canonical URL if any, else its own URL."""
    return document_id(source_id, normalize_url(canonical or url))


def is_pdf_url(url: str) -> bool:
    """Whether a URL's path names a PDF file."""
    return urlsplit(url).path.lower().endswith(".pdf")
