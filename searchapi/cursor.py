"""Opaque paging cursors: an offset bound to the query, filters and mode it was issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict
from typing import Any

from ssehub.store import Filters


def fingerprint(q: str | None, filters: Filters, mode: str) -> str:
    """Short hash of what a cursor pages through; a cursor is only valid for the same search."""
    key = json.dumps({"q": q or "", "f": asdict(filters), "m": mode}, sort_keys=True)  # ascii: lone surrogates are safe
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:16]


def encode(offset: int, fingerprint: str) -> str:
    """A cursor for the page starting at `offset`."""
    raw = json.dumps({"o": offset, "h": fingerprint}, separators=(",", ":")).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(cursor: str, fingerprint: str) -> int:
    """The offset of a cursor; ValueError when it is malformed or belongs to another search."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data: Any = json.loads(raw)
        offset, owner = data["o"], data["h"]
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError, KeyError):
        raise ValueError("invalid cursor: pass the next_cursor of a previous response unchanged") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 1 << 62 or owner != fingerprint:
        raise ValueError("invalid cursor: it belongs to another query, filters or mode; start again without a cursor")
    return offset
