"""The document model shared by every stage, and the helpers that give documents stable ids."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DOCUMENT_TYPES = ("report", "policy-brief", "case-study", "working-paper", "article", "news", "book", "page", "other")

# Query parameters that only track visits; dropping them lets one document keep one id.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|_hsenc|_hsmi|ref|share)$", re.I)


def content_hash(text: str) -> str:
    """Hash of a text with whitespace normalised, so layout-only changes do not count as changes."""
    norm = " ".join(text.split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:32]


def normalize_url(url: str) -> str:
    """URL without fragment, tracking parameters, default ports or a trailing `index.html`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)))
    path = parts.path or "/"
    if path.endswith("/index.html"):
        path = path[: -len("index.html")]
    return urlunsplit((scheme, netloc, path, query, ""))


def document_id(source_id: str, key: str) -> str:
    """Stable id of a document: its source and a short hash of its key (normalised URL or import id)."""
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    return f"{source_id}-{digest}"


@dataclass
class Document:
    """One document as the harvester or an import hands it to the store."""

    id: str
    source_id: str
    text: str
    title: str = ""
    url: str = ""
    lang: str = ""
    published: str | None = None  # ISO date, YYYY-MM-DD (or YYYY)
    authors: list[str] = field(default_factory=list)
    type: str = "other"
    parent_id: str | None = None  # the page an attachment was linked from
    licence: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Content hash over everything that changes what the indexer would produce."""
        return content_hash("\x1f".join([self.title, self.text, self.lang, self.published or "", "|".join(self.authors), self.type]))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, as JSON would carry it."""
        return asdict(self)


@dataclass
class Chunk:
    """A passage of a document, the unit that is embedded and keyword-indexed."""

    document_id: str
    seq: int
    text: str
    hash: str = ""

    def __post_init__(self) -> None:
        if not self.hash:
            self.hash = content_hash(self.text)
