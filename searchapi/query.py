"""User queries -> safe FTS5 MATCH expressions over the analysed keyword index, and the word forms to highlight.

A query word's language is unknown, so it stands for all its index forms (ssehub/analyze.py `forms`: its stem in
English, French, Spanish and Portuguese, and the plain folded word); a phrase stands for the same phrase in each
language. Every form is quoted, so no input is ever FTS5 syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssehub.analyze import LANGUAGES, fold, forms, stem

__all__ = ["MAX_TERMS", "STOP_WORDS", "ParsedQuery", "fold", "parse"]

# Runs of letters and digits: what FTS5's unicode61 tokenizer keeps as tokens (it splits on `_` too).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 32  # bounds the cost of a pasted paragraph; bm25 over 32 OR-ed terms is still fast

STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "au", "aux", "avec", "ce", "ces", "cet", "cette", "dans", "de", "des", "du", "elle", "elles", "en", "et", "eux", "il", "ils", "je", "la", "le", "les", "leur", "leurs", "lui", "ma", "mais", "me", "meme", "mes", "moi", "mon", "ne", "nos", "notre", "nous", "on", "ou", "par", "pas", "pour", "qu", "que", "qui", "sa", "se", "ses", "son", "sur", "ta", "te", "tes", "toi", "ton", "tu", "un", "une", "vos", "votre", "vous", "y", "est", "sont", "ete", "etre", "avoir", "ont", "a", "d", "l", "c", "n", "s", "j", "m", "t", "al", "algo", "como", "con", "contra", "cual", "cuando", "del", "desde", "donde", "durante", "el", "ella", "ellas", "ellos", "en", "entre", "era", "es", "esa", "ese", "eso", "esta", "este", "esto", "estos", "fue", "ha", "han", "hasta", "la", "las", "le", "les", "lo", "los", "mas", "me", "mi", "mucho", "muy", "nada", "ni", "no", "nos", "o", "otra", "otro", "para", "pero", "poco", "por", "porque", "que", "quien", "se", "sea", "ser", "si", "sin", "sobre", "son", "su", "sus", "tambien", "te", "tiene", "todo", "todos", "tu", "un", "una", "uno", "unos", "y", "ya",
     "ao", "aos", "as", "com", "da", "das", "do", "dos", "e", "em", "foi", "isso", "ja", "mais", "mas", "na", "nas", "nao", "no",
     "num", "numa", "os", "ou", "pela", "pelas", "pelo", "pelos", "sao", "sem", "seu", "seus", "sua", "suas", "tem", "um", "uma",
     "umas", "uns"]
)




# Operators of the search box: "a phrase", -excluded (or -"phrase"), title:word, title:"phrase", author:name, author:"A Name".
_TOKEN = re.compile(r'(?P<neg>-)?(?:(?P<field>title|author):)?(?:"(?P<phrase>[^"]*)"?|(?P<word>[^\s"]+))', re.IGNORECASE)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _quote(words: tuple[str, ...] | list[str]) -> str:
    """An FTS5 string (a phrase when several words): quoted, so no input is ever FTS5 syntax."""
    return '"' + " ".join(w.replace('"', '""') for w in words) + '"'


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed query: ranking terms, required phrases and title words, excluded words, author names."""

    text: str
    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()
    titles: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[tuple[str, ...], ...] = ()
    authors: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing is left to rank by keyword."""
        return not self.terms

    @property
    def constrained(self) -> bool:
        """True when the query requires or excludes something (phrases, fields, -terms)."""
        return bool(self.phrases or self.titles or self.excluded or self.authors)

    def match(self) -> str:
        """FTS5 MATCH expression that ranks: every form of every term, quoted, joined by OR.

        Plain FTS5 ANDs the words of a query; OR lets bm25 rank partial matches (SciFact nDCG@10 0.055 -> 0.684).
        """
        return " OR ".join(_quote([f]) for f in dict.fromkeys(f for t in self.terms for f in forms(t)))

    def required(self) -> list[str]:
        """FTS5 expressions a document must match, one per phrase or title: item (all must hold)."""
        return [_phrase(p) for p in self.phrases] + ["title : " + _phrase(t) for t in self.titles]

    def exclusions(self) -> list[str]:
        """FTS5 expressions a document must not match."""
        return [_phrase(e) for e in self.excluded]

    def with_terms(self, terms: tuple[str, ...]) -> ParsedQuery:
        """The same query with other ranking terms (typo corrections)."""
        return ParsedQuery(self.text, terms, self.phrases, self.titles, self.excluded, self.authors)

    def highlight_forms(self) -> frozenset[str]:
        """Index forms of the ranking terms: a snippet word with one of these forms is marked (searchapi/snippet.py)."""
        return frozenset(f for t in self.terms for f in forms(t))


def _phrase(words: tuple[str, ...]) -> str:
    """An FTS5 expression for a phrase in any language: the phrase of each language's forms, OR-ed in parentheses."""
    variants = [[stem(w, lang) for w in words] for lang in LANGUAGES] + [[fold(w) for w in words]]
    return "(" + " OR ".join(dict.fromkeys(_quote(v) for v in variants)) + ")"


def parse(text: str | None) -> ParsedQuery:
    """Split a user query into ranking terms (en/fr/es/pt stop words dropped unless nothing else is left) and operators.

    Words of phrases and title: items rank too; excluded words and author names do not.
    """
    text = (text or "").strip()
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    titles: list[tuple[str, ...]] = []
    excluded: list[tuple[str, ...]] = []
    authors: list[str] = []
    plain: list[str] = []
    for m in _TOKEN.finditer(text):
        raw = m.group("phrase") if m.group("phrase") is not None else m.group("word")
        field = (m.group("field") or "").lower()
        quoted = m.group("phrase") is not None
        if field == "author":
            if raw.strip():
                authors.append(" ".join(raw.split()))
            continue
        ws = tuple(_words(raw))
        if not ws:
            continue
        if m.group("neg"):
            excluded.append(ws)
            continue
        if field == "title":
            titles.append(ws)
        elif quoted and len(ws) > 1:
            phrases.append(ws)
        plain.extend(ws)
        for w in ws:
            if w not in words:
                words.append(w)
    kept = [w for w in words if fold(w) not in STOP_WORDS] or words
    semantic = " ".join(plain) if (phrases or titles or excluded or authors) else text
    return ParsedQuery(
        text=semantic, terms=tuple(kept[:MAX_TERMS]), phrases=tuple(phrases[:8]), titles=tuple(titles[:8]),
        excluded=tuple(excluded[:8]), authors=tuple(authors[:4]),
    )
