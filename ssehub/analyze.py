"""Text analysis for the keyword index: words folded (lower case, no accents) and stemmed in the document's language.

The store indexes each word of a text as `stem(word, lang)` in the document's language (`analyse`): the stem tagged
with the language ("fr_cooper"), so the stems of one language never meet the words of another in the index. A
query word, whose language is unknown, is looked up under its forms in every language of the corpus (`forms`: its
tagged stem in each of `LANGUAGES`, plus the plain folded word, which is how documents of any other or of unknown
language are indexed). On SciFact, untagged stems shared by all languages cost 0.005 keyword nDCG@10 (English words
matching the French or Spanish stems of query words); tagged, English keyword search is exactly English stemming.

Folding comes first, so an accent typed or left out changes nothing ("economia" and "economía" are one word):
`stem(fold(word))`.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from functools import lru_cache

import snowballstemmer

# The corpus's languages (ISO 639-1) and their Snowball stemmers. English keeps the original Porter algorithm (FTS5's
# `porter` tokenizer): on SciFact it beat Porter2 ("english"), train keyword nDCG@10 0.6969 against 0.6947.
STEMMERS = {"en": "porter", "fr": "french", "es": "spanish", "pt": "portuguese"}
LANGUAGES: tuple[str, ...] = tuple(STEMMERS)
# Runs of letters and digits: the words of a text (never `_`, which joins a language tag to its stem).
WORD = re.compile(r"[^\W_]+", re.UNICODE)
TAG = "_"  # FTS5's tokenizer is told to keep it inside tokens (migration m006)
# Portuguese plurals the stemmer leaves alone once accents are gone: -ões/-ães of -ão ("organizações" and
# "organização" would get different stems), and -ns of -m ("reciclagens", "homens"), which it never knew.
_PT_PLURALS = ((re.compile(r"(?:oes|aes)$"), "ao"), (re.compile(r"ns$"), "m"))


def fold(text: str) -> str:
    """Lower case without accents, so `Coopérative` and `cooperative` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_local = threading.local()


def _stemmer(lang: str) -> snowballstemmer.stemmer:
    # One stemmer per thread: a Snowball stemmer keeps the word being stemmed in itself (shared, two searches at once
    # corrupted each other's words: IndexError under load).
    stemmers = _local.__dict__.setdefault("stemmers", {})
    if lang not in stemmers:
        stemmers[lang] = snowballstemmer.stemmer(STEMMERS[lang])
    return stemmers[lang]


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    """The index form of one word in a language: folded, stemmed and tagged ("fr_cooper"); plain folded outside
    `LANGUAGES`, and for words with digits (numbers, codes), which have no inflections."""
    folded = fold(word)
    if lang not in STEMMERS or not folded.isalpha():
        return folded
    if lang == "pt" and len(folded) > 4:
        for plural, singular in _PT_PLURALS:
            folded = plural.sub(singular, folded)
    return lang + TAG + _stemmer(lang).stemWord(folded)


def untagged(form: str) -> str:
    """An index form without its language tag ("fr_cooper" -> "cooper")."""
    return form.partition(TAG)[2] or form


def language(lang: str | None) -> str:
    """The analysis language of a document's `lang` field ('' when it has no stemmer here)."""
    code = (lang or "").lower()[:2]
    return code if code in STEMMERS else ""


def tokens(text: str, lang: str) -> Iterator[str]:
    """Index forms of the words of a text in a language."""
    lang = language(lang)
    for m in WORD.finditer(text):
        yield stem(m.group(), lang)


def analyse(text: str, lang: str | None) -> str:
    """The text as the keyword index stores it: its words' index forms separated by spaces."""
    return " ".join(tokens(text, lang or ""))


@lru_cache(maxsize=50_000)
def forms(word: str) -> tuple[str, ...]:
    """Every index form a query word may have in a document: its stem in each language, then the plain folded word."""
    return _forms(word, stem)


def fresh_forms(word: str) -> tuple[str, ...]:
    """`forms`, without filling its cache or `stem`'s: for the many non-words typo corrections try."""
    return _forms(word, stem.__wrapped__)


def _forms(word: str, stem_of: Callable[[str, str], str]) -> tuple[str, ...]:
    out = dict.fromkeys(stem_of(word, lang) for lang in LANGUAGES)
    out[fold(word)] = None
    return tuple(f for f in out if f)
