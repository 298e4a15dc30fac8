"""OAI-PMH spider: ListRecords (Dublin Core) with sets, resumption tokens, `from=` on re-harvests and deleted records.

The XML is parsed with lxml inside Scrapy callbacks. OAI client libraries (Sickle, pyoaiharvester) fetch with their
own blocking HTTP clients, which would bypass Scrapy's robots.txt, delays, AutoThrottle, retries and run counts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from lxml import etree
from scrapy import Request
from scrapy.http import Response
from twisted.python.failure import Failure

from harvester.extract import iso_date
from harvester.items import PageItem
from harvester.spiders.base import BaseSpider
from harvester.spiders.sitemap import parse_time
from harvester.urls import is_pdf_url
from ssehub.models import document_id

logger = logging.getLogger(__name__)

NS = {
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
OVERLAP = timedelta(days=1)  # day granularity is the one every repository supports; a day more loses nothing
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
LANGUAGES = {"eng": "en", "fre": "fr", "fra": "fr", "spa": "es", "por": "pt", "ita": "it", "ger": "de", "deu": "de",
             "english": "en", "french": "fr", "français": "fr", "spanish": "es", "español": "es", "portuguese": "pt"}
# dc:type wording (free text or info:eu-repo/semantics/...) -> document type; first match wins.
TYPES = (("working", "working-paper"), ("policy", "policy-brief"), ("case stud", "case-study"), ("report", "report"),
         ("book", "book"), ("article", "article"), ("conference", "article"))


def dc_language(values: list[str]) -> str:
    """An ISO 639-1 code from dc:language values ('eng', 'en-GB', 'French'), or ''."""
    for value in values:
        v = value.strip().lower()
        code = LANGUAGES.get(v) or LANGUAGES.get(v[:3]) or (v[:2] if len(v) == 2 or v[2:3] in ("-", "_") else "")
        if code.isalpha():
            return code
    return ""


def dc_type(values: list[str]) -> str:
    """A document type from dc:type values, or '' to let the type guesser decide."""
    for value in values:
        v = value.lower().replace("_", " ")
        for needle, name in TYPES:
            if needle in v or needle.replace(" ", "") in v:
                return name
    return ""


class OaiPmhSpider(BaseSpider):
    """Records of an OAI-PMH repository (`url` is the base URL; `set` and `metadata_prefix` from sources.yaml).

    Each record is a document keyed by its OAI identifier. Its text comes from a same-site PDF identifier, else a
    same-site landing page, else the record's description; Dublin Core metadata wins over what the file says.
    """

    kind = "oai-pmh"
    revisit_unlisted = False  # deletions are announced as deleted records

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = self.source.url.split("?")[0]
        since = parse_time(self.store.harvest_state(self.source.id, "since"))
        self.from_date = (since - OVERLAP).date().isoformat() if since else None
        self.complete = True
        self.tokens: set[str] = set()

    async def start(self) -> AsyncIterator[Request]:
        params = {"verb": "ListRecords", "metadataPrefix": self.source.metadata_prefix}
        if self.source.set:
            params["set"] = self.source.set
        if self.from_date:
            params["from"] = self.from_date
        if request := self.listing(params):
            yield request

    def listing(self, params: dict[str, str]) -> Request | None:
        request = self.follow(f"{self.base}?{urlencode(params)}", self.parse_records)
        return request.replace(meta={**request.meta, "listing": True}) if request else None

    def parse_records(self, response: Response) -> Iterator[Any]:
        try:
            tree = etree.fromstring(response.body, PARSER)
        except etree.XMLSyntaxError as exc:
            self.complete = False
            yield self.item(response, "failed", reason="bad_xml", detail=str(exc))
            return
        error = tree.find("oai:error", NS)
        if error is not None:
            code = error.get("code", "")
            if code == "noRecordsMatch":  # nothing changed since `from`: a normal, empty answer
                yield self.navigation_item(response)
            else:
                self.complete = False
                yield self.item(response, "failed", reason=f"oai_{code or 'error'}", detail=(error.text or "").strip())
            return
        yield self.navigation_item(response)
        for record in tree.iterfind("oai:ListRecords/oai:record", NS):
            yield from self.record_items(record)
        token = (tree.findtext("oai:ListRecords/oai:resumptionToken", default="", namespaces=NS) or "").strip()
        if token in self.tokens:
            # A repository handing out a token it gave before would loop for ever; stopping is not the end of the list,
            # so the watermark stays where it was and the next harvest asks for the same dates again.
            self.complete = False
            yield self.item(response, "failed", reason="oai_token_loop",
                            detail=f"resumptionToken {token[:200]!r} came a second time: listing stopped, the next harvest lists these dates again")
        elif token:
            self.tokens.add(token)
            if request := self.listing({"verb": "ListRecords", "resumptionToken": token}):
                yield request

    def record_items(self, record: Any) -> Iterator[Any]:
        identifier = (record.findtext("oai:header/oai:identifier", default="", namespaces=NS) or "").strip()
        if not identifier:
            return
        stamp = (record.findtext("oai:header/oai:datestamp", default="", namespaces=NS) or "").strip()
        record_url = f"{self.base}?{urlencode({'verb': 'GetRecord', 'metadataPrefix': self.source.metadata_prefix, 'identifier': identifier})}"
        doc_id = document_id(self.source.id, f"oai:{identifier}")
        self.mark_listed(record_url)
        if record.find("oai:header", NS).get("status") == "deleted":
            yield PageItem(source_id=self.source.id, url=record_url, event="gone", derived=True, doc_id=doc_id, reason="oai_deleted")
            return
        known = self.known.get(record_url)
        if known and known.get("document_id") and stamp and known.get("last_modified") == stamp:
            yield PageItem(source_id=self.source.id, url=record_url, event="not_modified", status=200, derived=True)
            return
        dc = {name: self.dc_values(record, name) for name in ("title", "creator", "date", "language", "identifier", "description", "type")}
        links = [v for v in dc["identifier"] if v.startswith(("http://", "https://"))]
        local = [u for u in links if self.allowed(u)]
        pdf = next((u for u in local if is_pdf_url(u)), None)
        landing = next((u for u in local if not is_pdf_url(u)), None)
        title = " ".join(dc["title"][0].split()) if dc["title"] else ""
        hints = {
            "title": title,
            "authors": dc["creator"],
            "published": next((d for d in map(iso_date, dc["date"]) if d), None),
            "lang": dc_language(dc["language"]),
            "type": dc_type(dc["type"]),
            "prefer_hints": True,
            "doc_id": doc_id,
            "doc_url": landing or pdf or next(iter(links), record_url),
            "record_url": record_url,
            "record_stamp": stamp,
            "fallback_text": "\n\n".join([title, *dc["description"]]) if dc["description"] else "",
        }
        target = pdf or landing
        # The record changed (its datestamp says so), so its metadata must be re-read even if its file did not change.
        if target and (request := self.document_request(target, hints, conditional=False)):
            yield request
        elif hints["fallback_text"]:
            yield self.fallback_document(record_url, hints)  # off-site or no link: the description is the text
        else:
            yield PageItem(source_id=self.source.id, url=record_url, event="failed", reason="no_text", detail="no same-site text and no description")

    @staticmethod
    def dc_values(record: Any, name: str) -> list[str]:
        values = record.iterfind(f"oai:metadata/oai_dc:dc/dc:{name}", NS)
        return [" ".join(v.text.split()) for v in values if v.text and v.text.strip()]

    def on_error(self, failure: Failure) -> Iterator[PageItem]:
        if failure.request.meta.get("listing"):  # type: ignore[attr-defined]
            self.complete = False
        yield from super().on_error(failure)

    def closed(self, reason: str) -> None:
        if reason == "finished" and self.complete:
            self.tracker.watermark = self.started
