"""Atom 1.0 feeds (RFC 4287) of the newest documents tagged with a goal, built with ElementTree (which escapes)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 forbids; harvested text can hold them, and one would make the whole feed unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
SUMMARY_CHARS = 600


def clean(text: Any) -> str:
    """Text safe in XML 1.0."""
    return _NOT_XML.sub("", str(text or ""))


def rfc3339(value: str | None) -> str | None:
    """An ISO date or timestamp as an RFC 3339 timestamp (dates at midnight UTC); None when unparseable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary(text: str) -> str:
    text = " ".join(clean(text).split())
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text.rfind(" ", 0, SUMMARY_CHARS)
    return text[: cut if cut > SUMMARY_CHARS // 2 else SUMMARY_CHARS] + " …"


def sdg_feed(base_url: str, sdg: int, short: str, docs: list[dict[str, Any]]) -> bytes:
    """The feed document for one goal; `base_url` is where this API is served (ends without a slash)."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            node.text = clean(text)
        return node

    feed = ET.Element(f"{{{ATOM}}}feed")
    self_url = f"{base_url}/api/feeds/sdg/{sdg}"
    sub(feed, "id", self_url)
    sub(feed, "title", f"SSE Hub: SDG {sdg} — {short}")
    sub(feed, "subtitle", f"Newest Social and Solidarity Economy documents tagged with Sustainable Development Goal {sdg}")
    stamps = [s for s in (rfc3339(d.get("updated_at")) for d in docs) if s]
    sub(feed, "updated", max(stamps) if stamps else rfc3339(datetime.now(UTC).isoformat()))
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base_url}/?sdg={sdg}")
    author = sub(feed, "author")
    sub(author, "name", "SSE Hub")
    sub(feed, "generator", "ssehub")
    for doc in docs:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{base_url}/api/documents/{quote(doc['id'], safe=':')}")
        sub(entry, "title", doc.get("title") or doc["id"])
        updated = rfc3339(doc.get("updated_at")) or rfc3339(doc.get("published"))
        sub(entry, "updated", updated or rfc3339(datetime.now(UTC).isoformat()))
        if rfc3339(doc.get("published")):
            sub(entry, "published", rfc3339(doc["published"]))
        if doc.get("url"):
            sub(entry, "link", rel="alternate", type="text/html", href=clean(doc["url"]))
        sub(entry, "link", rel="related", type="text/html", href=f"{base_url}/?doc={quote(doc['id'], safe='')}")
        for name in doc.get("authors") or []:
            sub(sub(entry, "author"), "name", name)
        for n in doc.get("sdgs") or []:
            sub(entry, "category", term=f"sdg-{n}", label=f"SDG {n}")
        summary = sub(entry, "summary", _summary(doc.get("summary") or ""), type="text")
        if doc.get("lang"):
            summary.set("{http://www.w3.org/XML/1998/namespace}lang", clean(doc["lang"]))
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
