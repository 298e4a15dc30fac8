"""Public SDG keyword query systems (text2sdg syntax: phrases, AND/OR/NOT, `*`, Aurora's `W/n`) matched against texts.

The queries ship in `ssehub/data/sdg_queries.json` (rebuilt by `scripts/build_tagger_data.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Union

_WORD = re.compile(r"\w+")
_NEAR = re.compile(r"(?:W|PRE)/(\d+)$", re.IGNORECASE)
_TOKEN = re.compile(r'"[^"]*"|<[^>]*>|\{[^}]*\}|\(|\)|[^\s()"<>{}]+')


def words(text: str) -> list[str]:
    """Lower-case words; hyphens and apostrophes split, the same for texts and query phrases."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Phrase:
    """A run of words; `*` in a word matches any ending."""

    text: str  # the words joined by single spaces
    pattern: re.Pattern[str] | None  # only for phrases with a wildcard


@dataclass(frozen=True)
class Op:
    """AND / OR of sub-queries, NOT of one, or NEAR: two sub-queries within `dist` words (Scopus `W/n`)."""

    kind: str
    args: tuple[Node, ...]
    dist: int = 0


Node = Union[Phrase, Op]  # noqa: UP007 (a forward reference inside the dataclass above)


def _phrase(raw: str) -> Phrase | None:
    parts = [p for p in re.split(r"[^\w*]+", raw.lower()) if p.strip("*")]
    if not parts:
        return None
    text = " ".join(parts)
    if "*" not in text:
        return Phrase(text, None)
    body = r"\s".join(re.escape(p).replace(r"\*", r"\w*") for p in parts)
    return Phrase(text, re.compile(rf"(?<!\w){body}(?!\w)"))


def parse(query: str) -> Node | None:
    """Parse one text2sdg query; None if it holds no phrase. Adjacent terms are ANDed, as in Lucene."""
    tokens = _TOKEN.findall(query)
    if len(tokens) == 1 and tokens[0] not in ("NOT", "(", ")"):  # most queries: one phrase (what the grammar gives)
        return _phrase(tokens[0].strip('"<>{}'))
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def expr() -> Node | None:
        nonlocal pos
        args = [term()]
        while peek() == "OR":
            pos += 1
            args.append(term())
        kept = tuple(a for a in args if a is not None)
        return None if not kept else kept[0] if len(kept) == 1 else Op("OR", kept)

    def term() -> Node | None:
        nonlocal pos
        args = [near()]
        while peek() not in (None, "OR", ")"):
            if peek() == "AND":
                pos += 1
            args.append(near())
        kept = tuple(a for a in args if a is not None)
        return None if not kept else kept[0] if len(kept) == 1 else Op("AND", kept)

    def near() -> Node | None:
        # W/n binds tighter than AND/OR here: Aurora's queries parenthesise as if it did.
        nonlocal pos
        left = unary()
        while (tok := peek()) is not None and (m := _NEAR.match(tok)):
            pos += 1
            right = unary()
            if left is None or right is None:
                left = left or right
            else:
                left = Op("NEAR", (left, right), int(m.group(1)))
        return left

    def unary() -> Node | None:
        nonlocal pos
        tok = peek()
        if tok is None:
            return None
        pos += 1
        if tok == "NOT":
            arg = unary()
            return None if arg is None else Op("NOT", (arg,))
        if tok == "(":
            node = expr()
            if peek() == ")":
                pos += 1
            return node
        if tok == ")":
            return None
        return _phrase(tok.strip('"<>{}'))

    return expr()


Trigger = frozenset[tuple[str, str]]  # ("w", word) or ("p", prefix): a text can match only if it has one of them


def trigger(node: Node) -> Trigger | None:
    """Words or word prefixes of which a text must hold at least one to match `node` (None: no such set, e.g. NOT).

    Used to skip the queries a text cannot match: a phrase needs each of its words (its longest is kept, likely the
    rarest), a wildcard part needs a word starting with its letters before the `*`; AND and NEAR need every argument
    (the smallest argument set is kept), OR needs one (the union).
    """
    if isinstance(node, Phrase):
        parts = node.text.split(" ")
        words_ = [p for p in parts if "*" not in p]
        if words_:
            return frozenset({("w", max(words_, key=len))})
        prefixes = [p[: p.index("*")] for p in parts if not p.startswith("*")]
        return frozenset({("p", max(prefixes, key=len))}) if prefixes else None
    if node.kind in ("AND", "NEAR"):
        known = [t for t in map(trigger, node.args) if t is not None]
        return min(known, key=lambda t: (len(t), -sum(len(k[1]) for k in t))) if known else None
    if node.kind == "OR":
        union: set[tuple[str, str]] = set()
        for arg in node.args:
            t = trigger(arg)
            if t is None:
                return None
            union |= t
        return frozenset(union)
    return None  # NOT


class Matcher:
    """Counts, for a text, the queries of each system and goal that it matches."""

    def __init__(self, queries: dict[str, list[tuple[int, str]]]) -> None:
        self.queries = queries
        self.systems = sorted(queries)
        self._single: dict[str, list[tuple[int, int]]] = {}  # plain phrase -> [(system index, goal)]
        self._complex: list[tuple[int, int, Node]] = []
        self._wild: list[Phrase] = []
        self.max_words = 1
        self._starts: dict[str, set[int]] = {}  # first word of a plain phrase -> the word counts of such phrases
        self._needs: dict[int, tuple[str, str]] = {}  # id of a wildcard phrase -> a word or prefix it needs
        self._ors: dict[int, tuple[frozenset[str], tuple[Node, ...]]] = {}  # id of an OR -> (plain phrases, the rest)
        for si, system in enumerate(self.systems):
            for goal, query in queries[system]:
                node = self._parse(query)
                if node is None:
                    continue
                if isinstance(node, Phrase) and node.pattern is None:
                    self._single.setdefault(node.text, []).append((si, goal))
                else:
                    self._complex.append((si, goal, node))
                self._scan(node)
        self._index_triggers()
        self._gram_lengths = {w: tuple(sorted(ns)) for w, ns in self._starts.items()}
        self._all_prefix_lengths = sorted({*self._prefix_lengths, *(len(k) for kind, k in self._needs.values() if kind == "p")})

    def _parse(self, query: str) -> Node | None:
        """One query as this matcher reads it."""
        return parse(query)

    def _index_triggers(self) -> None:
        """Complex queries by trigger word and prefix (`trigger`), so a text evaluates only those it may match:
        9 in 10 of them hold a word the text lacks."""
        self._always: list[int] = []
        self._by_word: dict[str, list[int]] = {}
        self._by_prefix: dict[str, list[int]] = {}
        for qi, (_, _, node) in enumerate(self._complex):
            keys = trigger(node)
            if keys is None:
                self._always.append(qi)
                continue
            for kind, key in keys:
                (self._by_word if kind == "w" else self._by_prefix).setdefault(key, []).append(qi)
        self._prefix_lengths = sorted({len(p) for p in self._by_prefix})

    def candidates(self, present: set[str], prefixes: set[str] | None = None) -> list[int]:
        """Indexes of the complex queries a text with these words (and these word prefixes: `prefixes`) may match, in
        query order."""
        found = set(self._always)
        prefixes = self.prefixes(present) if prefixes is None else prefixes
        for w in present & self._by_word.keys():
            found.update(self._by_word[w])
        for p in prefixes & self._by_prefix.keys():
            found.update(self._by_prefix[p])
        return sorted(found)

    def prefixes(self, present: set[str]) -> set[str]:
        """The words' prefixes of the lengths that triggers and wildcard phrases use."""
        lengths = self._all_prefix_lengths
        return {w[:n] for w in present for n in lengths if n <= len(w)}

    def _scan(self, node: Node) -> None:
        if isinstance(node, Phrase):
            self.max_words = max(self.max_words, node.text.count(" ") + 1)
            if node.pattern is None:
                self._starts.setdefault(node.text.split(" ")[0], set()).add(node.text.count(" ") + 1)
            elif (need := trigger(node)) is not None:
                self._needs[id(node)] = next(iter(need))
        else:
            if node.kind == "OR":  # one set test for its plain phrases (some ORs hold hundreds)
                plain = frozenset(a.text for a in node.args if isinstance(a, Phrase) and a.pattern is None)
                self._ors[id(node)] = (plain, tuple(a for a in node.args if not (isinstance(a, Phrase) and a.pattern is None)))
            for arg in node.args:
                self._scan(arg)

    def counts(self, text: str) -> dict[str, list[int]]:
        """System -> 17 counts of matched queries (index 0 is goal 1)."""
        ws = words(text)
        # Only the word runs that start like a phrase of their length: the n-grams that can equal a phrase.
        grams, size, lengths = set(), len(ws), self._gram_lengths
        for i, w in enumerate(ws):
            for n in lengths.get(w, ()):
                if i + n <= size:
                    grams.add(" ".join(ws[i : i + n]))
        return self._count(ws, grams, set(ws))

    def _count(self, ws: list[str], grams: set[str], present: set[str]) -> dict[str, list[int]]:
        """Counts from a text's words (for wildcard phrases), the phrase texts it holds and the words it has."""
        out = [[0] * 17 for _ in self.systems]
        for gram in grams & self._single.keys():
            for si, goal in self._single[gram]:
                out[si][goal - 1] += 1
        prefixes = self.prefixes(present)
        ctx = _Context(ws, " ".join(ws), grams, present, prefixes, self._needs, self._ors)
        for qi in self.candidates(present, prefixes):
            si, goal, node = self._complex[qi]
            if ctx.match(node):
                out[si][goal - 1] += 1
        return {system: out[si] for si, system in enumerate(self.systems)}


class _Context:
    """One text's words, joined words and n-grams, with memoised phrase look-ups."""

    def __init__(self, ws: list[str], joined: str, grams: set[str], present: set[str] | None = None,
                 prefixes: set[str] | None = None, needs: dict[int, tuple[str, str]] | None = None,
                 ors: dict[int, tuple[frozenset[str], tuple[Node, ...]]] | None = None) -> None:
        """Args (all optional, from `Matcher`, for speed alone): the text's word set and word prefixes, what each
        wildcard phrase needs, and each OR's plain phrases apart."""
        self.ws, self.joined, self.grams = ws, joined, grams
        self.present = present if present is not None else set(ws)
        self.prefixes, self.needs, self.ors = prefixes, needs or {}, ors or {}
        self.memo: dict[int, bool] = {}
        self.starts: dict[int, list[int]] = {}
        # Character offset -> word index, to turn regex hits in `joined` into word positions.
        self.offsets: dict[int, int] = {}
        at = 0
        for i, w in enumerate(ws):
            self.offsets[at] = i
            at += len(w) + 1

    def match(self, node: Node) -> bool:
        if isinstance(node, Phrase):
            if node.pattern is None:
                return node.text in self.grams
            key = id(node)
            if key not in self.memo:
                need = self.needs.get(key)
                self.memo[key] = (need is None or self.has(need)) and node.pattern.search(self.joined) is not None
            return self.memo[key]
        if node.kind == "AND":
            return all(self.match(a) for a in node.args)
        if node.kind == "OR":
            if (split := self.ors.get(id(node))) is not None:
                plain, rest = split
                return not self.grams.isdisjoint(plain) or any(self.match(a) for a in rest)
            return any(self.match(a) for a in node.args)
        if node.kind == "NEAR":
            if not all(self.match(a) for a in node.args):  # cheap check first
                return False
            left, right = (self.positions(a) for a in node.args)
            return any(abs(a - b) <= node.dist + 1 for a in left for b in right)
        return not self.match(node.args[0])

    def has(self, need: tuple[str, str]) -> bool:
        """Whether the text holds the word, or a word starting with the prefix (a cheap test before a regex search)."""
        kind, key = need
        if kind == "w":
            return key in self.present
        return self.prefixes is None or key in self.prefixes

    def positions(self, node: Node) -> list[int]:
        """Word positions where a phrase (or an OR of phrases) starts; AND/NOT/NEAR count everywhere."""
        if isinstance(node, Phrase):
            key = id(node)
            if key not in self.starts:
                pattern = node.pattern or re.compile(rf"(?<!\w){re.escape(node.text)}(?!\w)")
                self.starts[key] = [self.offsets[m.start()] for m in pattern.finditer(self.joined) if m.start() in self.offsets]
            return self.starts[key]
        if node.kind == "OR":
            return sorted({p for a in node.args if self.match(a) for p in self.positions(a)})
        return list(range(len(self.ws))) if self.match(node) else []


# English words a word-by-word gloss of French/Spanish never renders (the gloss drops function words) or renders
# unreliably: left out of both the query phrases and the text when phrases are matched loosely (`LooseMatcher`).
LOOSE_STOP = frozenset(["the", "of", "and", "to", "in", "is", "are", "for", "that", "with", "this", "on", "by", "from",
                        "as", "be", "which", "all", "at", "or", "an", "its", "their", "other", "such", "into", "per",
                        "a", "not", "without", "s"])


def loose_stems(ws: list[str]) -> list[str]:
    """English stems of the words that are not in LOOSE_STOP, in order."""
    from ssehub.tagfeatures import stem_words

    return stem_words([w for w in ws if w not in LOOSE_STOP], "en")


class LooseMatcher(Matcher):
    """The queries matched on an English gloss of French or Spanish text, whose word order is the source language's
    and whose function words are gone ("accès universel et équitable à l'eau potable" -> "access universal equitable
    water drinking"): a plain phrase matches any run of the text holding its stems in any order, function words
    dropped on both sides, with at most one other word inside the run. Wildcard phrases are matched on the words in
    both orders.

    Chosen on the tune half of the UN target texts (`bench.tagger`): the right goal ranked first per 88 French/Spanish
    texts went 60/63 (the gloss read exactly, forwards and backwards) -> 65/64 at the same tags per text (in any order
    but without the inner word: 61/63).
    """

    def __init__(self, queries: dict[str, list[tuple[int, str]]]) -> None:
        super().__init__(queries)
        self._phrase_lengths = sorted({n for ns in self._gram_lengths.values() for n in ns})

    def _parse(self, query: str) -> Node | None:
        return _loosen(parse(query))

    def counts(self, text: str) -> dict[str, list[int]]:
        ws = words(text)
        content = loose_stems(ws)
        grams: set[str] = set()
        size = len(content)
        for n in self._phrase_lengths:
            for i in range(size - n + 1):
                grams.add(" ".join(sorted(content[i : i + n])))
            for i in range(size - n if n >= 2 else 0):  # one word inside the run left out (never the first or last)
                run = content[i : i + n + 1]
                for j in range(1, n):
                    grams.add(" ".join(sorted(run[:j] + run[j + 1 :])))
        return self._count([*ws, *reversed(ws)], grams, set(ws) | set(content))


_NEVER = Phrase("", None)  # a phrase of stop words alone: no run of a text's stems is empty, so it never matches


def _loosen(node: Node | None) -> Node | None:
    """A query with each plain phrase turned into its stems in sorted order, stop words dropped."""
    if node is None:
        return None
    if isinstance(node, Phrase):
        if node.pattern is not None:
            return node
        parts = sorted(loose_stems(node.text.split(" ")))
        return Phrase(" ".join(parts), None) if parts else _NEVER
    return Op(node.kind, tuple(a for a in (_loosen(x) for x in node.args) if a is not None), node.dist)


def load_queries(raw: str | None = None) -> dict[str, list[tuple[int, str]]]:
    """The shipped query systems: system -> [(goal, query)]."""
    if raw is None:
        raw = resources.files("ssehub").joinpath("data/sdg_queries.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return {system: [(int(g), q) for g, q in rows] for system, rows in data["systems"].items()}


@cache
def default_matcher() -> Matcher:
    """The matcher over the shipped queries, built once per process."""
    return Matcher(load_queries())


@cache
def default_loose_matcher() -> LooseMatcher:
    """`LooseMatcher` over the shipped queries, built once per process (on the first French/Spanish passage)."""
    return LooseMatcher(load_queries())


def count_many(matcher: Matcher, texts: Iterable[str]) -> list[dict[str, list[int]]]:
    """`Matcher.counts` for each text."""
    return [matcher.counts(t) for t in texts]
