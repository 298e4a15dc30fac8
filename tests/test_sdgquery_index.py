"""The keyword-query matcher's shortcuts (trigger words, phrase-start n-grams, OR phrase sets) give the same counts as
evaluating every query over every n-gram, on texts built from the shipped queries' own words so that many match."""

from __future__ import annotations

import random
import re

import pytest

from ssehub.sdgquery import Matcher, Op, Phrase, _Context, default_matcher, load_queries, parse, trigger, words


def brute_counts(matcher: Matcher, text: str) -> dict[str, list[int]]:
    """Every query, every n-gram, no index: the meaning the shortcuts must keep."""
    ws = words(text)
    grams = {" ".join(ws[i : i + n]) for n in range(1, matcher.max_words + 1) for i in range(len(ws) - n + 1)}
    out = [[0] * 17 for _ in matcher.systems]
    for gram in grams & matcher._single.keys():
        for si, goal in matcher._single[gram]:
            out[si][goal - 1] += 1
    ctx = _Context(ws, " ".join(ws), grams)
    for si, goal, node in matcher._complex:
        if ctx.match(node):
            out[si][goal - 1] += 1
    return {system: out[si] for si, system in enumerate(matcher.systems)}


def query_texts(count: int, seed: int = 7) -> list[str]:
    """Texts of 40 words drawn from the queries' words (wildcards given endings), with punctuation between some."""
    vocabulary = sorted({w for rows in load_queries().values() for _, q in rows for w in re.findall(r"[\w*]+", q.lower())
                         if w not in ("and", "or", "not") and w.strip("*")})
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        picked = [rng.choice(vocabulary).replace("*", rng.choice(["", "s", "ing", "al"])) for _ in range(40)]
        texts.append(" ".join(w + rng.choice(["", "", "", ",", "."]) for w in picked))
    return texts


def test_shipped_queries_count_as_without_the_index() -> None:
    matcher = default_matcher()
    texts = query_texts(150)
    matched = 0
    for text in texts:
        fast = matcher.counts(text)
        assert fast == brute_counts(matcher, text), text
        matched += sum(sum(row) for row in fast.values())
    assert matched > 1000  # the texts do exercise the queries


@pytest.mark.parametrize("text, expected", [
    ("sustainable development of rural areas", 1),
    ("sustainability and developing countries", 1),
    ("rural development without the s-word", 0),
    ("", 0),
])
def test_wildcards_ands_ors_and_nots_through_the_index(text: str, expected: int) -> None:
    matcher = Matcher({"x": [(1, '"sustainab*" AND ("develop*" OR "rural areas") NOT "s-word"')]})
    assert matcher.counts(text)["x"][0] == expected == brute_counts(matcher, text)["x"][0]


def test_a_query_with_only_a_not_is_always_evaluated() -> None:
    matcher = Matcher({"x": [(3, 'NOT "health"')]})
    assert matcher.counts("nothing relevant")["x"][2] == 1
    assert matcher.counts("public health")["x"][2] == 0


def test_triggers() -> None:
    assert trigger(Phrase("climate change", None)) == frozenset({("w", "climate")})
    assert trigger(Phrase("sustainab* goals", re.compile("x"))) == frozenset({("w", "goals")})
    assert trigger(Phrase("sustainab* develop*", re.compile("x"))) == frozenset({("p", "sustainab")})
    assert trigger(Phrase("*forest*", re.compile("x"))) is None
    either = Op("OR", (Phrase("water", None), Phrase("sanitation", None)))
    assert trigger(either) == frozenset({("w", "water"), ("w", "sanitation")})
    assert trigger(Op("AND", (either, Phrase("toilets", None)))) == frozenset({("w", "toilets")})
    assert trigger(Op("NOT", (either,))) is None
    assert trigger(Op("OR", (either, Op("NOT", (either,))))) is None


def test_one_phrase_queries_parse_as_the_grammar_does() -> None:
    queries = [q for rows in load_queries().values() for _, q in rows]
    single = [q for q in queries if len(re.findall(r'"[^"]*"|<[^>]*>|\{[^}]*\}|\(|\)|[^\s()"<>{}]+', q)) == 1]
    assert len(single) > 20000
    for q in [*single[::50], '"climate change"', "sustainab*", "<water>", "{x}", "OR"]:
        assert parse(q) == parse(f"( {q} )"), q  # the parenthesised form goes through the whole grammar


def test_loose_matching_reads_a_gloss_in_any_order_without_function_words() -> None:
    """A gloss has French/Spanish word order and no function words: "access universal equitable water drinking"."""
    from ssehub.sdgquery import LooseMatcher

    queries = {"x": [(6, '"access to safe drinking water"'), (6, '"drinking water"'), (13, '"climate change"'),
                     (8, '"decent work" AND ("youth" OR "young people")'), (1, '"of the"'), (9, "<industr*>")]}
    loose, exact = LooseMatcher(queries), Matcher(queries)
    gloss = "including ensure access universal equitable water drinking safe affordable"
    assert loose.counts(gloss)["x"][5] == 1  # "water drinking"; the five-word phrase has two words between its own
    assert exact.counts(gloss)["x"][5] == 0
    assert loose.counts("access safe water drinking")["x"][5] == 2  # stop words gone, order free: both phrases
    assert loose.counts("changes climatic")["x"][12] == 1  # English stems: "climatic" and "climate" are "climat"
    assert loose.counts("change weather")["x"][12] == 0
    assert loose.counts("adaptation change climate")["x"][12] == 1
    assert loose.counts("change adaptation climate")["x"][12] == 1  # one word inside the run is let through
    assert loose.counts("change adaptation local climate")["x"][12] == 0  # two are not
    assert loose.counts("work decent youth")["x"][7] == 1 and loose.counts("work youth")["x"][7] == 0
    assert loose.counts("ensure of the access")["x"][0] == 0  # a phrase of stop words alone never matches
    assert loose.counts("growth industrial")["x"][8] == 1  # wildcard phrases read the words as they are


def test_loose_matching_finds_what_exact_matching_finds_in_english_order() -> None:
    """On texts without function words, every query the exact matcher counts is counted loosely too."""
    from ssehub.sdgquery import LOOSE_STOP, default_loose_matcher

    exact, loose = default_matcher(), default_loose_matcher()
    more = 0
    for text in query_texts(60, seed=11):
        text = " ".join(w for w in words(text) if w not in LOOSE_STOP)
        a, b = exact.counts(text), loose.counts(text)
        for system in exact.systems:
            # NOT queries may flip when a loosely matched phrase is negated: count only the systems without them
            if system in ("osdg", "osdg_v1", "sdsn"):
                assert all(x <= y for x, y in zip(a[system], b[system], strict=True)), (system, text)
        more += sum(map(sum, b.values())) - sum(map(sum, a.values()))
    assert more > 0


def test_loose_matching_counts_as_without_the_index() -> None:
    """The trigger index and OR phrase sets keep their meaning over loosened queries: every query evaluated on the
    runs of stems (any order, one word let through inside) gives the same counts."""
    from ssehub.sdgquery import default_loose_matcher, loose_stems

    matcher = default_loose_matcher()
    for text in query_texts(40, seed=5):
        ws = words(text)
        content = loose_stems(ws)
        grams = set()
        for n in range(1, matcher.max_words + 1):
            for i in range(len(content) - n + 1):
                grams.add(" ".join(sorted(content[i : i + n])))
                if n >= 2 and i + n < len(content):
                    run = content[i : i + n + 1]
                    grams.update(" ".join(sorted(run[:j] + run[j + 1 :])) for j in range(1, n))
        out = [[0] * 17 for _ in matcher.systems]
        for gram in grams & matcher._single.keys():
            for si, goal in matcher._single[gram]:
                out[si][goal - 1] += 1
        both = [*ws, *reversed(ws)]
        ctx = _Context(both, " ".join(both), grams)
        for si, goal, node in matcher._complex:
            out[si][goal - 1] += ctx.match(node)
        assert matcher.counts(text) == {s: out[si] for si, s in enumerate(matcher.systems)}, text
