"""Typo tolerance: a query word none of whose forms the keyword index has seen is replaced by the closest indexed term."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from typing import Protocol

from rapidfuzz.distance import OSA

from searchapi.query import fold
from ssehub.analyze import forms, untagged
from ssehub.store import Store

log = logging.getLogger(__name__)
MIN_LENGTH = 4  # shorter words are too often real words of another language, or acronyms


def distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment): a swap of two neighbours counts as one edit."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


class Vocabulary(Protocol):
    """What corrections need of the keyword index: Store's answers, from memory (searchapi/keyword.py's engine)."""

    def has_any(self, forms: Sequence[str]) -> bool | None:
        """Whether any of the forms is an indexed term (None: cannot tell, ask the store)."""
        ...

    def terms(self, first: str, min_length: int, max_length: int) -> list[tuple[str, int]]:
        """Store.vocabulary."""
        ...


class SortedTerms:
    """Store.vocabulary over a term -> chunk count mapping: the terms sorted (SQLite's BINARY order is code point
    order), a prefix is a bisected range."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.sorted = sorted(counts)
        self.counts = counts

    def terms(self, first: str, min_length: int, max_length: int) -> list[tuple[str, int]]:
        lo = bisect.bisect_left(self.sorted, first)
        hi = bisect.bisect_left(self.sorted, first + "\uffff", lo)
        return [(t, self.counts[t]) for t in self.sorted[lo:hi] if min_length <= len(t) <= max_length]


def allowed_edits(length: int) -> int:
    """Edits tolerated for a stem of this length: one up to 5 letters, two beyond."""
    return 1 if length <= 5 else 2


def _quoted(words: Sequence[str]) -> str:
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def corrections(terms: Sequence[str], store: Store, vocabulary: Vocabulary | None = None) -> dict[str, str]:
    """Query term -> indexed term (an index form, ssehub/analyze.py) for each term none of whose forms is indexed
    and that has a close neighbour.

    Each of the term's forms (its stem in each language, the plain folded word) is compared with the indexed terms
    within its allowed edits; the fewest edits win, then the most frequent term. The correction is an index form, which
    the query matches as its own plain form. `vocabulary` answers the index look-ups from memory when given.
    """
    out: dict[str, str] = {}
    for term in terms:
        word = fold(term)
        if len(word) < MIN_LENGTH or not word.isalpha():
            continue
        candidates = [f for f in forms(term) if len(untagged(f)) >= MIN_LENGTH - 1]
        if not candidates:
            continue
        known = vocabulary.has_any(forms(term)) if vocabulary is not None else None
        if known is None:
            known = bool(store.keyword_documents(_quoted(forms(term)), limit=1))
        if known:
            continue
        best: tuple[int, int, str] | None = None
        for form in candidates:
            # A tagged form is compared with the terms of its language only: its tag is their common prefix.
            edits = allowed_edits(len(untagged(form)))
            first = form[: len(form) - len(untagged(form)) + 1]
            lengths = (first, len(form) - edits, len(form) + edits)
            near = vocabulary.terms(*lengths) if vocabulary is not None else store.vocabulary(*lengths)
            for candidate, chunks in near:
                d = OSA.distance(form, candidate, score_cutoff=edits)  # `distance`, in C; above the cutoff: cutoff + 1
                if d <= edits and (best is None or (d, -chunks, candidate) < best):
                    best = (d, -chunks, candidate)
        if best is not None:
            out[term] = best[2]
            log.debug("typo: %r -> %r", term, best[2])
    return out
