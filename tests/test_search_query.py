"""Query parsing, snippets, rank fusion and cursors: the search building blocks, without HTTP."""

from __future__ import annotations

import html as htmltext
import random
import re

import pytest

from searchapi import cursor as cursors
from searchapi.fusion import best_per_document, ranked, rrf
from searchapi.query import MAX_TERMS, parse
from searchapi.snippet import Marker, snippet
from ssehub.analyze import forms
from ssehub.store import Filters

NASTY = ['"', "'", "(", ")", "*", ":", "-", "+", "^", "NEAR", "AND", "OR", "NOT", "{", "}", "[", "]", "\\", "/", ".", ",",
         " ", "\t", "\n", "\x00", "_", "é", "ß", "ǅ", "²", "٣", "漢字", "🙂", "\u200b", "\ufeff", "co-op", "NEAR(a b)",
         "title:", "a*", "\"\"", "''", "%", ";", "--", "é́", "İ"]


def random_query(rng: random.Random) -> str:
    return "".join(rng.choice(NASTY) if rng.random() < 0.6 else rng.choice("abcxyz ") for _ in range(rng.randint(0, 25)))


def test_parser_never_produces_an_fts5_error(search_corpus) -> None:
    rng = random.Random(20240601)
    queries = [random_query(rng) for _ in range(400)] + NASTY + ["NEAR(cooperative housing, 2)", 'title:"x', "-cooperative"]
    for q in queries:
        parsed = parse(q)
        if not parsed.empty:
            search_corpus.store.keyword_chunks(parsed.match(), 10)  # raises ValueError on an FTS5 syntax error


def test_terms_are_quoted_and_or_ed_without_stop_words() -> None:
    parsed = parse("The women's cooperatives AND (housing) NEAR les coopératives de logement")
    assert parsed.terms == ("women", "cooperatives", "housing", "near", "coopératives", "logement")
    # Each term stands for its index forms (ssehub/analyze.py): its tagged stem per language and the plain folded word,
    # each quoted, all OR-ed; "cooperatives" and "coopératives" share all their forms.
    parts = parsed.match().split(" OR ")
    assert all(p.startswith('"') and p.endswith('"') for p in parts) and len(parts) == len(set(parts)) == 5 * 5
    assert {'"en_cooper"', '"fr_cooper"', '"es_cooperativ"', '"cooperatives"', '"fr_log"', '"en_hous"', '"women"'} <= set(parts)


def test_only_stop_words_are_kept_and_terms_bounded() -> None:
    assert parse("the of and").terms == ("the", "of", "and")
    assert parse("!!! ???").empty and parse(None).empty
    assert len(parse(" ".join(f"word{i}" for i in range(100))).terms) == MAX_TERMS


def test_keyword_or_finds_partial_matches(search_corpus) -> None:
    # Plain FTS5 would AND these words and find nothing: no document has all of them.
    hits = search_corpus.store.keyword_chunks(parse("community land trusts microcrédito nonsenseword").match(), 50)
    docs = {search_corpus.store.chunk_rows([c])[c]["document_id"] for c, _ in hits}
    assert {"housing-1", "finance-1"} <= docs


def test_snippet_escapes_and_marks_accent_and_case_insensitively() -> None:
    text = "Les Coopératives <script>alert(1)</script> & the cooperative movement; co-operation."
    html = snippet(text, parse("cooperatives script").highlight_forms())
    assert "<script>" not in html and "&lt;<mark>script</mark>&gt;" in html and "&amp;" in html
    assert "<mark>Coopératives</mark>" in html and "<mark>cooperative</mark> movement" in html
    assert "<mark>co</mark>" not in html


def test_snippet_trims_around_the_terms() -> None:
    text = " ".join(["filler"] * 200) + " the housing cooperative answer " + " ".join(["tail"] * 200)
    html = snippet(text, parse("housing").highlight_forms())
    assert "<mark>housing</mark>" in html and html.startswith("… ") and html.endswith(" …")
    assert len(html.replace("<mark>", "").replace("</mark>", "")) <= 250
    assert snippet("short text", ()) == "short text"


def _marked_spans(text: str, marks: frozenset[str]) -> list[tuple[int, int]]:
    """The definition the snippet's faster word search must keep: every run of letters and digits with a marked form."""
    return [m.span() for m in re.finditer(r"[^\W_]+", text) if not marks.isdisjoint(forms(m.group()))]


def test_snippet_marks_exactly_the_words_with_a_marked_form() -> None:
    rng = random.Random(11)
    words = ["coop", "cooperative", "Coopératives", "COOPERATIVES", "co_op", "_coop", "coop_", "coop2", "2coop", "économie",
             "l'économie", "women's", "&amp;", "<b>", "coopcoop", "ﬁnance", "finance", "İstanbul", "straße", "habitants",
             "micro-crédito", "١٢٣", "\u00a0", "—", "x" * 300, *NASTY]
    queries = ["cooperatives", "economie finance", "habitant", "coop", "micro credit", "strasse istanbul", "123 ١٢٣"]
    for _ in range(3000):
        text = "".join(rng.choice(words) + rng.choice([" ", ", ", "\n", "-", "_", "/", ""]) for _ in range(rng.randint(0, 80)))
        marks = parse(rng.choice(queries)).highlight_forms()
        flat = " ".join(text.split())
        expected = _marked_spans(flat, marks)
        assert Marker(marks).spans(flat) == expected
        shown = re.findall(r"<mark>(.*?)</mark>", snippet(text, marks, size=rng.choice([40, 240, 5000])))
        assert {htmltext.unescape(w) for w in shown} <= {flat[s:e] for s, e in expected}
    marker = Marker(parse("cooperatives finance").highlight_forms())  # one marker over a page: same as fresh ones
    for text in ["Coopératives and finance.", "co_operatives financé", "finances, coop", "Coopératives and finance."]:
        assert snippet(text, marker) == snippet(text, parse("cooperatives finance").highlight_forms())


@pytest.mark.parametrize("max_words", [5, 300_000], ids=["vocabulary-restarting", "vocabulary-kept"])
def test_marked_words_from_the_shared_vocabulary_are_exact_across_threads(
    monkeypatch: pytest.MonkeyPatch, max_words: int
) -> None:
    import threading

    from searchapi import snippet as snippets

    monkeypatch.setattr(snippets, "MAX_WORDS", max_words)
    monkeypatch.setattr(snippets, "_vocabulary", snippets._Vocabulary())
    words = ["Coopératives", "cooperative", "coop", "finance", "financé", "économie", "Economies", "habitants", "women",
             "Women's", "rural", "credit", "crédito", "x1", "strasse", "straße", "co_op"]
    queries = ["cooperatives", "economie finance", "habitant women", "credit rural", "strasse coop"]
    failures: list[str] = []

    def read(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(400):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
            marks = parse(rng.choice(queries)).highlight_forms()
            if Marker(marks).spans(text) != _marked_spans(text, marks):
                failures.append(text)

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert len(snippets._vocabulary.known) <= max(max_words, len(words))


def test_rrf_rewards_agreement_and_normalises() -> None:
    fused = rrf([["a", "b", "c"], ["b", "a", "d"]])
    assert fused["a"] == fused["b"] > fused["c"] > 0 and fused["c"] == fused["d"]
    assert rrf([["x"], ["x"]])["x"] == pytest.approx(1.0)
    assert fused["a"] == pytest.approx((1 / 61 + 1 / 62) / (2 / 61))


def test_documents_keep_their_best_chunk() -> None:
    best = best_per_document([(1, 0.5), (2, 0.9), (3, 0.7), (99, 5.0)], {1: "a", 2: "a", 3: "b"})
    assert best == {"a": (0.9, 2), "b": (0.7, 3)}
    assert ranked({"b": (0.7, 3), "a": (0.9, 2), "c": (0.7, 4)}) == ["a", "b", "c"]


def test_cursor_round_trip_and_rejection() -> None:
    key = cursors.fingerprint("q", Filters(sdg=[5]), "hybrid")
    assert cursors.decode(cursors.encode(20, key), key) == 20
    other = cursors.fingerprint("q", Filters(sdg=[8]), "hybrid")
    for bad in ["garbage", "", "!!!", cursors.encode(20, other), "eyJvIjotMSwiaCI6IngifQ", "bnVsbA"]:
        with pytest.raises(ValueError, match="cursor"):
            cursors.decode(bad, key)
