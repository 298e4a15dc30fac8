"""`ssehub import`: documents given as JSON lines; a bad line is reported with its number and skipped."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

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


def _check_unicode(obj: dict) -> None:
    """JSON may spell a lone UTF-16 surrogate (`"\\ud800"`), which no UTF-8 text holds: it would fail at the store,
    after the line was accepted, and end the import. Name the field instead."""
    for key, value in obj.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"field {key!r} holds a lone surrogate escape (\\ud800-\\udfff): not text; "
                                     "fix the encoder that wrote the file") from None


def _check_date(published: object) -> None:
    """ISO date, year-month or year, with a real month and day."""
    if not isinstance(published, str) or not DATE_RE.match(published):
        raise ValueError("field 'published' must be an ISO date (YYYY-MM-DD, YYYY-MM or YYYY)")
    try:
        date.fromisoformat((published + "-01-01")[:10] if len(published) < 10 else published)
    except ValueError:
        raise ValueError(f"field 'published': {published!r} is not a real date (YYYY-MM-DD, YYYY-MM or YYYY)") from None


def _document(obj: object, source_id: str) -> Document:
    """Validate one parsed line; raises ValueError with a message a person can act on."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    _check_unicode(obj)
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
        _check_date(published)
    authors = obj.get("authors") or []
    if not isinstance(authors, list) or not all(isinstance(a, str) for a in authors):
        raise ValueError("field 'authors' must be a list of strings")
    return Document(
        id=document_id(source_id, str(local_id)), source_id=source_id, text=text.strip(), title=strings["title"].strip(),
        url=strings["url"], lang=strings["lang"].lower()[:8], published=published, authors=authors, type=kind,
        extra={"import_id": str(local_id)},
    )


def _lines(f: BinaryIO) -> Iterator[bytes | None]:
    """The file's lines, each read at most MAX_LINE_BYTES at a time: a line past that (a file of one huge line, say)
    is skipped to its end without being held in memory, and yields None."""
    while raw := f.readline(MAX_LINE_BYTES + 1):
        if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
            yield raw if len(raw) <= MAX_LINE_BYTES else None
            continue
        while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
            pass
        yield None


def _parse(raw: bytes) -> object:
    """One line's JSON value; ValueError saying what is wrong with the line and how to mend the file.

    A UTF-8 byte-order mark (Excel, PowerShell, Notepad) is dropped on every line, not only the first: files joined
    with `cat` carry one at each join, and json refused those lines ("Unexpected UTF-8 BOM")."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1}): save the file as "
                         "UTF-8 (a line written in Latin-1 or Windows-1252, say, after a copy and paste)") from None
    try:
        return json.loads(text.strip())  # without the line end, an unclosed string is named as such
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}") from None


MAX_ARRAY_BYTES = 200_000_000  # a file this big that starts with '[' is not read whole to tell an array


def _check_not_array(path: Path) -> None:
    """ImportFormatError for a file of several lines that is one JSON array: its lines were refused one by one, except
    a last item standing alone on its line (pretty-printed), which was imported: 1 document of N."""
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"[") or path.stat().st_size > MAX_ARRAY_BYTES:
        return
    content = path.read_bytes()
    if b"\n" not in content.strip():
        return  # one line: refused as a line, and the file as one that imported nothing (nothing_imported)
    try:
        whole = json.loads(content.decode("utf-8-sig"))
    except ValueError:  # not one JSON value: JSON lines whose first line is bad, say
        return
    if isinstance(whole, list):
        raise nothing_imported(path, 0)


def nothing_imported(path: Path, read: int) -> ImportFormatError:
    """The error of a file none of whose lines could be imported (the import ended with 0 documents and exit code 0).

    A JSON array (what most tools call "export as JSON") is named as such, with the command that converts it: its
    lines were refused one by one ("Expecting value", "Extra data")."""
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return ImportFormatError(f"{path}: a JSON array, not JSON lines (one object per line): convert it first, e.g. "
                                 f"jq -c '.[]' {path} > documents.jsonl")
    return ImportFormatError(f"{path}: none of its {read} lines could be imported (the reasons are above): a JSON-lines "
                             "file holds one JSON object per line, with at least `id` and `text`")


def import_jsonl(store: Store, path: Path, source_id: str) -> ImportReport:
    """Add or update the documents of a JSON-lines file under one source (created as import-only if new)."""
    if not ID_RE.match(source_id):
        raise ImportFormatError(f"source id {source_id!r} must match [a-z0-9_]+")
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    _check_not_array(path)
    new_source = source_id not in store.source_ids()  # created with its first document, so a useless file writes nothing
    report = ImportReport(source=source_id)
    seen: set[str] = set()
    with path.open("rb") as f:
        for number, raw in enumerate(_lines(f), start=1):
            if raw is not None and not raw.strip():
                continue
            report.read += 1
            try:
                if raw is None:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
                doc = _document(_parse(raw), source_id)
                if doc.id in seen:
                    raise ValueError(f"id {doc.extra['import_id']!r} appears twice in this file")
            except ValueError as exc:
                report.errors.append(f"line {number}: {exc}")
                continue
            seen.add(doc.id)
            if new_source:
                store.upsert_source(SourceConfig(id=source_id, name=source_id, kind="import"), origin="import")
                new_source = False
            outcome = store.upsert_document(doc)
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report
