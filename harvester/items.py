"""What spiders hand to the pipelines: one PageItem per fetched, failed or skipped URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# document: a page or PDF to extract and store; navigation: a sitemap, feed or listing (recorded only);
# not_modified: a 304; gone: a 404/410; duplicate: an alternate of a canonical page;
# failed: a fetch that went wrong; skipped: a URL deliberately not fetched (robots.txt, sitemap lastmod).
Event = Literal["document", "navigation", "not_modified", "gone", "duplicate", "failed", "skipped"]


@dataclass
class PageItem:
    """One URL of a source and what happened to it; the pipelines fill the document fields."""

    source_id: str
    url: str
    event: Event
    status: int | None = None
    body: bytes = field(default=b"", repr=False)
    encoding: str = ""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    canonical: str | None = None  # same-site canonical link of an HTML page
    parent_id: str | None = None  # for attachments: the id of the page that links them
    hints: dict[str, Any] = field(default_factory=dict)  # metadata fallbacks: title, published, authors, type
    # How to read `body`: '' sniffs HTML or PDF; 'fragment' is clean body HTML from an API (WordPress
    # content.rendered); 'text' is plain text (an OAI description).
    format: str = ""
    derived: bool = False  # built from a listing's data (REST, OAI), not fetched on its own: not counted as fetched
    reason: str = ""  # failure or skip reason
    detail: str = ""
    # filled by the pipelines (a spider that knows the document's identity, e.g. an OAI identifier, sets doc_id)
    doc_id: str | None = None
    text: str = field(default="", repr=False)
    title: str = ""
    published: str | None = None
    authors: list[str] = field(default_factory=list)
    lang: str = ""
    type: str = ""
    is_pdf: bool = False
    signature: bytes | None = field(default=None, repr=False)  # MinHash of the text, for near-duplicates
    extra: dict[str, Any] = field(default_factory=dict)
