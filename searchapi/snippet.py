"""Snippets: a passage trimmed around the query terms, HTML-escaped, with the terms wrapped in <mark>.

A word is marked when one of its index forms (ssehub/analyze.py: its stem in each language, or the plain folded word)
is a form of a query term: the words the keyword match found, in any inflection and with or without accents.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection

from ssehub.analyze import forms

SNIPPET_CHARS = 240
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LEAD = 60  # context kept before the first marked word


def _matches(text: str, marks: Collection[str]) -> list[tuple[int, int]]:
    """Spans of the words with an index form among `marks`."""
    if not marks:
        return []
    marks = frozenset(marks)
    marked: dict[str, bool] = {}  # per distinct word: a passage repeats its words, each is looked up once
    spans = []
    for m in _WORD.finditer(text):
        word = m.group()
        hit = marked.get(word)
        if hit is None:
            hit = marked[word] = not marks.isdisjoint(forms(word))
        if hit:
            spans.append(m.span())
    return spans


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


def snippet(text: str, marks: Collection[str] = (), size: int = SNIPPET_CHARS) -> str:
    """Escaped HTML of the best ~`size` characters of `text`, marking words with a form among `marks` (highlight_forms)."""
    text = " ".join(text.split())
    spans = _matches(text, marks)
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
