"""Typo tolerance: a query word the keyword index has never seen is replaced by the closest indexed term."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

import snowballstemmer

from searchapi.query import fold
from ssehub.store import Store

log = logging.getLogger(__name__)
MIN_LENGTH = 4  # shorter words are too often real words of another language, or acronyms


@lru_cache(maxsize=1)
def _porter() -> snowballstemmer.stemmer:
    # The original Porter algorithm, as FTS5's `porter` tokenizer applies it: the vocabulary holds its stems.
    return snowballstemmer.stemmer("porter")


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


def allowed_edits(length: int) -> int:
    """Edits tolerated for a stem of this length: one up to 5 letters, two beyond."""
    return 1 if length <= 5 else 2


def corrections(terms: Sequence[str], store: Store) -> dict[str, str]:
    """Query term -> indexed term (a Porter stem) for each term with no keyword match that has a close neighbour.

    Among the terms within the allowed edits of the term's stem, the fewest edits win, then the most frequent.
    """
    out: dict[str, str] = {}
    for term in terms:
        word = fold(term)
        if len(word) < MIN_LENGTH or not word.isalpha() or store.keyword_documents(f'"{word}"', limit=1):
            continue
        stem = _porter().stemWord(word)
        edits = allowed_edits(len(stem))
        best: tuple[int, int, str] | None = None
        for candidate, chunks in store.vocabulary(stem[0], len(stem) - edits, len(stem) + edits):
            d = distance(stem, candidate)
            if d <= edits and (best is None or (d, -chunks, candidate) < best):
                best = (d, -chunks, candidate)
        if best is not None:
            out[term] = best[2]
            log.debug("typo: %r -> %r", term, best[2])
    return out
