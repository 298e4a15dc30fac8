"""Keyword search per language: stemming and accent folding in French, Spanish and Portuguese, with every query feature."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import SearchCorpus

from searchapi.query import parse
from searchapi.search import Searcher
from searchapi.snippet import snippet
from searchapi.typo import corrections
from ssehub.analyze import analyse, forms, stem
from ssehub.embed import HashingEmbedder
from ssehub.store import Store

LANG_DOCS = [
    ("fr-1", "observatoire", "fr", "report", "2021-03-01", [11], "Les coopératives d'habitants en France",
     ["Dans ces coopératives, les habitants gèrent ensemble leurs logements et partagent les décisions."]),
    ("es-1", "observatoire", "es", "report", "2020-05-01", [8], "Economías solidarias en América Latina",
     ["Las economías solidarias reúnen cooperativas de trabajo y asociaciones de viviendas populares."]),
    ("pt-1", "observatoire", "pt", "report", "2019-07-01", [1], "Organizações de catadores no Brasil",
     ["As organizações de catadores praticam a economia solidária e a reciclagem popular."]),
]


@pytest.fixture
def searcher(search_corpus: SearchCorpus) -> Searcher:
    for doc in LANG_DOCS:
        search_corpus.add(*doc)
    search_corpus.rebuild_index()
    return Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)


def ids(searcher: Searcher, q: str, mode: str = "keyword") -> list[str]:
    return [h["id"] for h in searcher.search(q, mode=mode, limit=100)["results"]]  # type: ignore[arg-type]


def test_each_language_conflates_inflections_and_accents() -> None:
    assert stem("coopératives", "fr") == stem("coopérative", "fr") == stem("cooperative", "fr")
    assert stem("economías", "es") == stem("economía", "es") == stem("economia", "es")
    assert stem("organizações", "pt") == stem("organização", "pt") == stem("organizacao", "pt")
    assert stem("cooperatives", "en") == stem("cooperative", "en")
    assert analyse("Les Coopératives", "de") == "les cooperatives"  # no stemmer here: folded words only
    assert analyse("L'économie sociale 2030", "fr") == "fr_l fr_econom fr_social 2030"  # tagged with their language
    # A query word stands for its stem in every language and its plain folded form.
    assert set(forms("Economías")) == {stem("economías", lang) for lang in ("en", "fr", "es", "pt")} | {"economias"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("coopérative", "fr-1"), ("cooperative habitant", "fr-1"), ("logement", "fr-1"),  # singular finds plural
        ("economía solidaria", "es-1"), ("economia solidaria", "es-1"), ("vivienda popular", "es-1"),  # accents optional
        ("organização catador", "pt-1"), ("organizacao", "pt-1"), ("reciclagens", "pt-1"),
    ],
)
def test_keyword_search_finds_other_inflections(searcher: Searcher, query: str, expected: str) -> None:
    assert expected in ids(searcher, query)


def test_phrases_title_and_exclusion_in_each_language(searcher: Searcher) -> None:
    # es-1 says "economías solidarias", pt-1 "economia solidária"; the words apart are not the phrase.
    assert set(ids(searcher, '"economia solidaria"')) == {"es-1", "pt-1"}
    assert set(ids(searcher, '"economía solidaria"', "hybrid")) == {"es-1", "pt-1"}
    assert ids(searcher, '"solidarias economías"') == []
    assert ids(searcher, '"habitants gèrent"') == ["fr-1"]
    assert ids(searcher, "title:organizacao") == ["pt-1"]
    assert set(ids(searcher, "title:coopérative")) == {"fr-1", "coop-1", "coop-2"}  # "cooperatives", "coopératives"
    assert set(ids(searcher, "title:habitant")) == {"fr-1"}
    assert ids(searcher, "title:logements") == []  # only in fr-1's text
    assert "es-1" in ids(searcher, "solidaria") and "es-1" not in ids(searcher, "solidaria -vivienda")
    assert "pt-1" not in ids(searcher, "solidaria -catadoras")


def test_typo_tolerance_uses_the_analysed_vocabulary(searcher: Searcher) -> None:
    fixed = corrections(["organizasões", "economias"], searcher.store)
    assert "economias" not in fixed  # a known word is left alone
    # The closest stem is the Portuguese one (a word one edit away may be a frequent word of another language).
    assert set(forms("organizações")) & {f for fix in fixed["organizasões"] for f in forms(fix)}
    assert ids(searcher, "organizasões")[0] == "pt-1"


def test_snippets_mark_every_inflection(searcher: Searcher) -> None:
    hits = {h["id"]: h["snippet"] for h in searcher.search("economia solidaria", mode="keyword")["results"]}
    assert "<mark>economías</mark> <mark>solidarias</mark>" in hits["es-1"]
    assert "<mark>economia</mark> <mark>solidária</mark>" in hits["pt-1"]
    marks = parse("habitants").highlight_forms()
    assert snippet("Les Habitants, un habitant et l'habitat", marks) == "Les <mark>Habitants</mark>, un <mark>habitant</mark> et l&#x27;habitat"


def test_migration_rebuilds_an_old_keyword_index(tmp_path) -> None:
    store = Store(tmp_path / "s.db")
    corpus = SearchCorpus(None, store, HashingEmbedder())  # type: ignore[arg-type]
    corpus.add(*LANG_DOCS[1])
    store.close()
    # Make it a store written before m006: FTS5's porter tokenizer over the raw text.
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript(
        """DROP TABLE chunks_vocab; DROP TABLE chunks_fts;
           CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize = 'porter unicode61 remove_diacritics 2');
           INSERT INTO chunks_fts (rowid, title, text) SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.document_id;
           CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');
           DELETE FROM _sqlite_migrations WHERE name = 'm006_analysed_keyword_index';"""
    )
    conn.commit()
    assert not conn.execute("SELECT term FROM chunks_vocab WHERE term LIKE 'es%economi'").fetchall()
    conn.close()
    store = Store(tmp_path / "s.db")
    assert store.keyword_chunks(parse("economia").match(), 10)  # es stem "economi" of "economías"
    assert store.vocabulary("es_economi", 10, 10) == [("es_economi", 1)]
    store.close()
