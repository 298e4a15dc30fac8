"""French/Spanish words no gloss table holds, looked up in multilingual-e5 at run time (`ssehub.gloss.WordLookup`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssehub.errors import ConfigError
from ssehub.gloss import (
    LOOKUP_MIN,
    Glosser,
    WordLookup,
    default_glosser,
    english_words,
    load_word_lookup,
    quantise_rows,
)

ENGLISH = ["pandemic", "survey", "housing"]


class Encoder:
    """Unit vectors by word from a small table, counting the words it is asked for (a real encoder of a toy space)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = {w: np.asarray(v, np.float32) / np.linalg.norm(v) for w, v in table.items()}
        self.asked: list[str] = []

    def __call__(self, words: list[str]) -> np.ndarray:
        self.asked += words
        return np.array([self.table[w] for w in words])


def toy_lookup() -> tuple[WordLookup, Encoder]:
    encoder = Encoder({"pandemia": [1, 0.05, 0], "encuesta": [0.1, 1, 0.02], "ahorros": [0.6, 0.6, 0.5],
                       "pandemias": [1, 0.04, 0]})
    return WordLookup(ENGLISH, np.eye(3, dtype=np.float32), encoder), encoder


def test_a_word_is_looked_up_once_and_counts_only_when_near_enough() -> None:
    lookup, encoder = toy_lookup()
    assert lookup.nearest(["pandemia", "encuesta", "ahorros", "pandemia"]) == {"pandemia": "pandemic",
                                                                              "encuesta": "survey"}
    assert lookup.nearest(["encuesta", "ahorros"]) == {"encuesta": "survey"}  # "ahorros": 0.6 < LOOKUP_MIN
    assert sorted(encoder.asked) == ["ahorros", "encuesta", "pandemia"]  # each word encoded once


def test_the_glosser_looks_up_only_words_no_table_holds() -> None:
    lookup, encoder = toy_lookup()
    english = english_words() | set(ENGLISH)
    near = {"es": {"vivienda": [["housing", 0.95]]}}
    g = Glosser({"es": {"agu": [["water", 0.5]]}, "fr": {}}, english, neighbours=near, lookup=lookup)
    # "agua": the aligned lexicon; "viviendas": the shipped neighbours (by stem); "sobre": a skipped word; "pandemia",
    # "encuesta": looked up; "ahorros": looked up, too far from every English word.
    assert g.gloss("agua viviendas sobre pandemia encuesta ahorros", "es") == "water housing pandemic survey"
    assert sorted(encoder.asked) == ["ahorros", "encuesta", "pandemia"]
    assert g.with_lookup(None).gloss("agua pandemia", "es") == "water"
    assert g.without_target("3.3").lookup is lookup  # target-blind twins look up as the glosser does
    assert g.gloss("pandemia", "de") == ""  # no gloss at all in other languages


def test_a_documents_passages_share_one_lookup_call() -> None:
    """`gloss_many` asks the encoder once for every passage's unknown words, each word once, and glosses each passage as
    `gloss` alone would (the indexer tags a document's passages together)."""
    lookup, _ = toy_lookup()
    g = Glosser({"es": {"agu": [["water", 0.5]]}, "fr": {}}, english_words() | set(ENGLISH), lookup=lookup)
    calls: list[list[str]] = []
    inner = lookup.encode
    lookup.encode = lambda words: (calls.append(list(words)), inner(words))[1]  # type: ignore[method-assign]
    texts = ["agua pandemia", "encuesta pandemia", "pandemia", "ahorros agua"]
    got = g.gloss_many(texts, ["es", "es", "de", "es"])
    assert calls == [["ahorros", "encuesta", "pandemia"]]
    assert got == ["water pandemic", "survey pandemic", "", "water"]
    fresh, _ = toy_lookup()
    alone = Glosser({"es": {"agu": [["water", 0.5]]}, "fr": {}}, english_words() | set(ENGLISH), lookup=fresh)
    assert got == [alone.gloss(t, lg) for t, lg in zip(texts, ["es", "es", "de", "es"], strict=True)]


def test_words_shorter_than_a_cognate_are_not_looked_up() -> None:
    lookup, encoder = toy_lookup()
    g = Glosser({"fr": {}, "es": {}}, english_words(), lookup=lookup)
    assert g.gloss("mais date font", "fr") == "" and encoder.asked == []


def test_without_an_e5_engine_unknown_words_are_dropped() -> None:
    def missing(words: list[str]) -> np.ndarray:
        raise ConfigError("no e5 engine")

    lookup = WordLookup(ENGLISH, np.eye(3, dtype=np.float32), missing)
    g = Glosser({"fr": {}, "es": {}}, english_words(), lookup=lookup)
    assert g.gloss("pandemia encuesta", "es") == "" and lookup.failed
    assert lookup.nearest(["pandemia"]) == {}


def test_quantised_rows_keep_their_cosines() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    q, scale = quantise_rows(vectors)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    back = q.astype(np.float32) * scale[:, None]
    assert np.abs((back @ vectors.T) - (vectors @ vectors.T)).max() < 0.01


def test_english_vectors_are_made_once_in_the_cache_folder(tmp_path: Path) -> None:
    """Not shipped: the first look-up encodes every English word and saves them; a second lookup over the same folder
    reads the file and encodes only the words asked for."""
    rng = np.random.default_rng(0)

    def encode(words: list[str]) -> np.ndarray:
        asked.extend(words)
        v = rng.normal(size=(len(words), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    asked: list[str] = []
    first = load_word_lookup(encode, tmp_path)
    assert asked == [] and list(tmp_path.glob("*.npz")) == []  # nothing made until a word is looked up
    first.nearest(["pandemia"])
    made = list(tmp_path.glob("sdg_english_e5-*.npz"))
    assert len(made) == 1 and len(asked) == 1 + len(english_words())
    asked.clear()
    second = load_word_lookup(encode, tmp_path)
    second.nearest(["encuesta"])
    assert asked == ["encuesta"] and second.vectors().shape == (len(english_words()), 8)
    np.testing.assert_allclose(second.vectors(), first.vectors())


def test_shipped_vectors_gloss_real_words_the_tables_lack() -> None:
    """The English vectors (made once per machine) read by the real e5 engine: words of real SSE text outside the UN
    texts."""
    from ssehub.embed import shared_e5
    from ssehub.onnxembed import cache_dir

    try:
        engine = shared_e5()
    except ConfigError as exc:  # no e5 engine on this machine
        pytest.skip(str(exc))
    lookup = load_word_lookup(lambda words: engine.encode(words, kind="query"), cache_dir())
    assert lookup is not None and len(lookup.english) == len(english_words())
    found = lookup.nearest(["pandemia", "reciclaje", "tarifas", "territoire", "xqzvwkpl"])
    assert found == {"pandemia": "pandemic", "reciclaje": "recycling", "tarifas": "tariffs", "territoire": "territory"}
    assert LOOKUP_MIN >= 0.9  # single words score 0.86-0.90 against unrelated ones


def test_un_texts_never_need_a_lookup() -> None:
    """Every word of the UN texts has its e5 neighbours shipped, so target-blind glosses of them in their own language
    read the same with or without lookups; only words of other text reach e5 at run time (in the language-parity
    benchmark, a Spanish target the language guesser reads as French, 7.3, is glossed through lookups)."""
    from ssehub import sdg
    from ssehub.gloss import GLOSS_LANGS

    lookup, encoder = toy_lookup()
    glosser = default_glosser().with_lookup(lookup)
    for lang in GLOSS_LANGS:
        texts = [*sdg.targets(lang).values(), *(i["text"] for i in sdg.indicators(lang).values())]
        blind = glosser.without_target("6.1")
        assert all(blind.gloss(t, lang) == blind.with_lookup(None).gloss(t, lang) for t in texts[:60])
        for text in texts:
            glosser.gloss(text, lang)
    assert encoder.asked == []
    assert glosser.gloss("la pandemia", "es") == "pandemic" and encoder.asked == ["pandemia"]
