"""Snippets: a passage trimmed around the query terms, HTML-escaped, with the terms wrapped in <mark>."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from searchapi.query import fold

SNIPPET_CHARS = 240
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LEAD = 60  # context kept before the first marked word


def _matches(text: str, prefixes: Sequence[str]) -> list[tuple[int, int]]:
    """Spans of the words that start with one of the (folded) prefixes."""
    if not prefixes:
        return []
    return [m.span() for m in _WORD.finditer(text) if fold(m.group()).startswith(tuple(prefixes))]


def _window(text: str, spans: list[tuple[int, int]], size: int) -> tuple[int, int]:
    """The stretch of about `size` characters holding the most marked words, cut at spaces."""
    if len(text) <= size:
        return 0, len(text)
    start = 0
    if spans:
        best = max(range(len(spans)), key=lambda i: sum(1 for s, e in spans[i:] if e <= spans[i][0] + size - _LEAD))
        start = max(0, spans[best][0] - _LEAD)
    start = min(start, len(text) - size)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + size // 2 else end
    return start, end


def snippet(text: str, prefixes: Sequence[str] = (), size: int = SNIPPET_CHARS) -> str:
    """Escaped HTML of the best ~`size` characters of `text`, marking words that start with a prefix."""
    text = " ".join(text.split())
    spans = _matches(text, prefixes)
    start, end = _window(text, spans, size)
    out = ["… " if start > 0 else ""]
    pos = start
    for s, e in spans:
        if s < start or e > end:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    out.append(" …" if end < len(text) else "")
    return "".join(out)
