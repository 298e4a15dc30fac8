"""Typo tolerance: a query word none of whose forms the keyword index has seen is replaced by the closest indexed word
or term."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from rapidfuzz.distance import OSA

from ssehub.analyze import fold, forms, fresh_forms, untagged
from ssehub.store import Store

log = logging.getLogger(__name__)
MIN_LENGTH = 4  # shorter words are too often real words of another language, or acronyms
# Longest word whose one-edit neighbours are tried as words (~54 per letter, each stemmed in every language: ~9 ms of
# CPU for a 10-letter word); a longer unknown word goes straight to the neighbours of its stems.
MAX_WORD = 15
PREFIX = 3  # letters a word's stems keep from its start in every language (Snowball changes endings only)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


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

    def counts(self, forms: Collection[str]) -> dict[str, int]:
        """Store.term_counts."""
        ...

    def has_prefix(self, prefix: str) -> bool:
        """Whether an indexed term starts with `prefix`, in some language (after its tag) or untagged."""
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

    def has_prefix(self, prefix: str) -> bool:
        """Whether a term starts with `prefix`."""
        lo = bisect.bisect_left(self.sorted, prefix)
        return lo < len(self.sorted) and self.sorted[lo].startswith(prefix)


def allowed_edits(length: int) -> int:
    """Edits tolerated for a stem of this length: one up to 5 letters, two beyond."""
    return 1 if length <= 5 else 2


def one_edit(word: str) -> set[str]:
    """Every string one edit from `word`: a letter deleted, two neighbours swapped, a letter replaced or inserted
    (a-z: query words are folded, so accents are gone)."""
    out: set[str] = set()
    for i in range(len(word) + 1):
        head, tail = word[:i], word[i:]
        if tail:
            out.add(head + tail[1:])
            if len(tail) > 1:
                out.add(head + tail[1] + tail[0] + tail[2:])
            out.update(head + c + tail[1:] for c in _LETTERS)
        out.update(head + c + tail for c in _LETTERS)
    out.discard(word)
    return out


def word_correction(word: str, counts: Callable[[Collection[str]], dict[str, int]],
                    has_prefix: Callable[[str], bool] | None = None) -> str | None:
    """The word one edit from the folded `word` whose index forms hold the most chunks, or None.

    Stems of a misspelt word are not stems of the right one ("cooperatve" stems to "cooperatv" in English, three edits
    from "cooper", the stem of "cooperative"), so the edit is undone on the word and the neighbours are stemmed; the
    correction is a word, whose forms then match in every language. `has_prefix` (the in-memory vocabulary's) skips
    the neighbours no indexed term begins like: stemmers change the ends of words, not their first letters, so a
    neighbour's forms can be indexed only if a term starts with its first PREFIX letters (a random 15-letter word:
    ~1,300 neighbours stemmed in four languages -> a few hundred prefix look-ups).
    """
    near = [c for c in one_edit(word) if len(c) >= MIN_LENGTH]
    if has_prefix is not None:
        starts = {p for p in {c[:PREFIX] for c in near} if has_prefix(p)}
        near = [c for c in near if c[:PREFIX] in starts]
    candidates = {c: fresh_forms(c) for c in near}
    known = counts({f for fs in candidates.values() for f in fs})
    if not known:
        return None
    weight, best = min((-sum(known.get(f, 0) for f in fs), c) for c, fs in candidates.items())
    return best if weight < 0 else None


def _quoted(words: Sequence[str]) -> str:
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def corrections(terms: Sequence[str], store: Store, vocabulary: Vocabulary | None = None,
                by_word: bool = True) -> dict[str, tuple[str, ...]]:
    """Query term -> its corrections, for each term none of whose forms is indexed and that has a close neighbour.

    Two readings, both kept when they differ:
    - the word one edit from the term whose forms are in the most chunks (`word_correction`): a word, whose forms then
      match in every language ("cooperatve" -> "cooperative", found in English, French and Spanish documents);
    - the closest indexed stem (`stem_correction`): an index form (ssehub/analyze.py), which the query matches as its
      own plain form. It finds what one edit of the word cannot, and keeps the typed word's language when the most
      frequent neighbour word belongs to another ("organizasões": Spanish "organizases" by weight, Portuguese
      "organizações" by stem).
    `vocabulary` answers the index look-ups from memory when given; `by_word=False` skips the first reading (a query's
    later terms: it costs ~10 ms of CPU a word).
    """
    out: dict[str, tuple[str, ...]] = {}
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
        fixes: list[str] = []
        if by_word and len(word) <= MAX_WORD:
            fixed = (word_correction(word, vocabulary.counts, vocabulary.has_prefix) if vocabulary is not None
                     else word_correction(word, store.term_counts))
            if fixed is not None:
                fixes.append(fixed)
        near = stem_correction(candidates, store, vocabulary)
        if near is not None and not (fixes and near in fresh_forms(fixes[0])):
            fixes.append(near)
        if fixes:
            out[term] = tuple(fixes)
            log.debug("typo: %r -> %r", term, fixes)
    return out


def stem_correction(forms: Sequence[str], store: Store, vocabulary: Vocabulary | None = None) -> str | None:
    """The indexed term closest to one of a word's forms, or None: each form is compared with the indexed terms of its
    language within its allowed edits; the fewest edits win, then the most frequent term."""
    best: tuple[int, int, str] | None = None
    for form in forms:
        # A tagged form is compared with the terms of its language only: its tag is their common prefix.
        edits = allowed_edits(len(untagged(form)))
        first = form[: len(form) - len(untagged(form)) + 1]
        lengths = (first, len(form) - edits, len(form) + edits)
        near = vocabulary.terms(*lengths) if vocabulary is not None else store.vocabulary(*lengths)
        for candidate, chunks in near:
            d = OSA.distance(form, candidate, score_cutoff=edits)  # `distance`, in C; above the cutoff: cutoff + 1
            if d <= edits and (best is None or (d, -chunks, candidate) < best):
                best = (d, -chunks, candidate)
    return best[2] if best is not None else None
