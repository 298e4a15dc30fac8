"""Snippets: a passage trimmed around the query terms, HTML-escaped, with the terms wrapped in <mark>.

A word is marked when one of its index forms (ssehub/analyze.py: its stem in each language, or the plain folded word)
is a form of a query term: the words the keyword match found, in any inflection and with or without accents.
"""

from __future__ import annotations

import html
import re
import threading
from bisect import bisect_right
from collections.abc import Collection, Iterable
from functools import lru_cache

from ssehub.analyze import forms

SNIPPET_CHARS = 240
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LEAD = 60  # context kept before the first marked word
MAX_WORDS = 300_000  # words the shared vocabulary keeps (a few tens of MB) before it starts afresh


@lru_cache(maxsize=4096)
def _occurrences(word: str) -> re.Pattern[str]:
    """The word not followed by a letter or digit; the character before is checked by the caller (a pattern opening
    with its literal is searched for fast, one opening with a look-behind is tried at every position)."""
    return re.compile(re.escape(word) + r"(?![^\W_])")


class _Vocabulary:
    """Every word snippets have met, and the inverse of `forms` over them: form -> the words that have it.

    Shared by all searches: the words of a page are mostly words earlier pages had, so a page finds its marked words with
    a few set operations instead of looking each distinct word's forms up and testing them against the marks (~60 words
    a passage, ~100 us of its ~115 us). Words are added under a lock, each one's forms before the word itself: a word
    found in `known` has all its forms in `words_of`.
    """

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.words_of: dict[str, set[str]] = {}

    def add(self, words: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        """Learn (word, its forms) pairs."""
        words_of = self.words_of
        for word, its_forms in words:
            for form in its_forms:
                found = words_of.get(form)
                if found is None:
                    words_of[form] = {word}
                else:
                    found.add(word)
        self.known.update(word for word, _ in words)


_vocabulary = _Vocabulary()
_adding = threading.Lock()


def _learn(words: list[tuple[str, tuple[str, ...]]]) -> None:
    """Add (word, forms) pairs to the shared vocabulary (a full one is replaced by an empty one: it only saves work)."""
    global _vocabulary
    with _adding:
        if len(_vocabulary.known) + len(words) > MAX_WORDS:
            _vocabulary = _Vocabulary()
        _vocabulary.add(words)


class Marker:
    """The words to mark for one set of query forms: a word is marked when one of its forms is a mark.

    Shared by a page's snippets. A word the shared vocabulary knows is marked when it is among the words of the marks'
    forms; the others are tested one by one, then learnt.
    """

    def __init__(self, marks: Collection[str]) -> None:
        self.marks = frozenset(marks)

    def spans(self, text: str, tokens: list[str] | None = None) -> list[tuple[int, int]]:
        """Spans of the words of `text` with an index form among the marks, in order (`tokens`: `text.split()`)."""
        if not self.marks:
            return []
        words = _words(text.split() if tokens is None else tokens)
        vocabulary = _vocabulary
        new = words - vocabulary.known  # before reading `words_of`: a known word's forms are in it already
        words_of = vocabulary.words_of
        marked: set[str] = set()
        for form in self.marks:
            found = words_of.get(form)
            if found:
                marked |= words & found
        if new:
            pairs = [(w, forms(w)) for w in new]
            isdisjoint = self.marks.isdisjoint
            marked.update(w for w, its_forms in pairs if not isdisjoint(its_forms))
            _learn(pairs)
        # Each marked word's whole-word occurrences: a run of letters and digits (what _WORD finds) equal to it. A match
        # rejected for the letter before it hides no other: the positions it covers are all inside that same run.
        spans = [
            m.span() for word in marked for m in _occurrences(word).finditer(text)
            if m.start() == 0 or not text[m.start() - 1].isalnum()  # isalnum() is exactly [^\W_]
        ]
        if len(marked) > 1:
            spans.sort()
        return spans


def _words(tokens: list[str]) -> set[str]:
    """The distinct words (runs of letters and digits, _WORD) of a text split at whitespace: a token that is all letters
    and digits is one word (str.isalnum is exactly _WORD's class), the regex reads the others alone (a fifth of the text
    instead of all of it)."""
    words = set(filter(str.isalnum, tokens))
    rest = [t for t in tokens if t not in words]
    if rest:
        words.update(_WORD.findall(" ".join(rest)))
    return words


def _matches(text: str, marks: Collection[str]) -> list[tuple[int, int]]:
    """Spans of the words with an index form among `marks`."""
    return Marker(marks).spans(text)


def _window(text: str, spans: list[tuple[int, int]], size: int) -> tuple[int, int]:
    """The stretch of about `size` characters holding the most marked words, cut at spaces."""
    if len(text) <= size:
        return 0, len(text)
    start = 0
    if spans:
        # The first span whose window [its start, + size - _LEAD] ends after the most spans: spans do not overlap, so
        # their ends are sorted and a window's count is a bisection.
        ends = [e for _, e in spans]
        counts = [bisect_right(ends, s + size - _LEAD) - i for i, (s, _) in enumerate(spans)]
        best = counts.index(max(counts))
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


def snippet(text: str, marks: Collection[str] | Marker = (), size: int = SNIPPET_CHARS) -> str:
    """Escaped HTML of the best ~`size` characters of `text`, marking words with a form among `marks` (highlight_forms;
    a `Marker` shared by a page's snippets saves looking the same words up again)."""
    tokens = text.split()
    text = " ".join(tokens)
    spans = (marks if isinstance(marks, Marker) else Marker(marks)).spans(text, tokens)
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
