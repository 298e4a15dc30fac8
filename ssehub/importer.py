"""`ssehub import`: documents given as JSON lines; a bad line is reported with its number and skipped."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ssehub.errors import ImportFormatError
from ssehub.models import DOCUMENT_TYPES, Document, document_id
from ssehub.sources import ID_RE, SourceConfig
from ssehub.store import Store

log = logging.getLogger(__name__)
MAX_LINE_BYTES = 5_000_000
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass
class ImportReport:
    """What an import did: counts and one message per rejected line."""

    source: str
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Lines rejected."""
        return len(self.errors)


def _document(obj: object, source_id: str) -> Document:
    """Validate one parsed line; raises ValueError with a message a person can act on."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    for name in ("id", "text"):
        if name not in obj:
            raise ValueError(f"field {name!r} is required")
    local_id, text = obj["id"], obj["text"]
    if not isinstance(local_id, str | int) or isinstance(local_id, bool) or str(local_id).strip() == "":
        raise ValueError("field 'id' must be a non-empty string or number")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("field 'text' must be a non-empty string")
    strings = {k: obj.get(k) or "" for k in ("title", "url", "lang", "type")}
    for k, v in strings.items():
        if not isinstance(v, str):
            raise ValueError(f"field {k!r} must be a string")
    if strings["url"] and not re.match(r"^https?://[^\s/]+", strings["url"], re.I):
        raise ValueError("field 'url' must be an http(s) URL")
    kind = strings["type"] or "other"
    if kind not in DOCUMENT_TYPES:
        raise ValueError(f"field 'type' must be one of {', '.join(DOCUMENT_TYPES)}")
    published = obj.get("published")
    if published is not None:
        if not isinstance(published, str) or not DATE_RE.match(published):
            raise ValueError("field 'published' must be an ISO date (YYYY-MM-DD, YYYY-MM or YYYY)")
        if len(published) == 10:
            date.fromisoformat(published)  # rejects 2020-13-45
    authors = obj.get("authors") or []
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        raise ValueError("field 'authors' must be a list of strings")
    return Document(
        id=document_id(source_id, str(local_id)), source_id=source_id, text=text.strip(), title=strings["title"].strip(),
        url=strings["url"], lang=strings["lang"].lower()[:8], published=published, authors=authors, type=kind,
        extra={"import_id": str(local_id)},
    )


def import_jsonl(store: Store, path: Path, source_id: str) -> ImportReport:
    """Add or update the documents of a JSON-lines file under one source (created as import-only if new)."""
    if not ID_RE.match(source_id):
        raise ImportFormatError(f"source id {source_id!r} must match [a-z0-9_]+")
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    if source_id not in store.source_ids():
        store.upsert_source(SourceConfig(id=source_id, name=source_id, kind="import"), origin="import")
    report = ImportReport(source=source_id)
    seen: set[str] = set()
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            report.read += 1
            try:
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
                doc = _document(json.loads(raw.decode("utf-8")), source_id)
                if doc.id in seen:
                    raise ValueError(f"id {doc.extra['import_id']!r} appears twice in this file")
            except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
                report.errors.append(f"line {number}: {exc}")
                continue
            seen.add(doc.id)
            outcome = store.upsert_document(doc)
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report
