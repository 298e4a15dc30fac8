"""The tagger's e5 meaning for French/Spanish passages: a ridge map from multilingual-e5 vectors into MiniLM's space."""

from __future__ import annotations

import numpy as np
import pytest

from ssehub.tagger import DEFAULT_MODEL, Tagger, _prototypes, load_e5_stats, solve_map


def test_solve_map_is_ridge_regression_with_a_free_constant() -> None:
    rng = np.random.default_rng(0)
    x = np.hstack([rng.normal(size=(200, 6)), np.ones((200, 1))])
    true = rng.normal(size=(7, 3))
    y = x @ true
    assert np.allclose(solve_map(x.T @ x, x.T @ y, 1e-9), true, atol=1e-6)
    shrunk = solve_map(x.T @ x, x.T @ y, 50.0)
    assert np.abs(shrunk[:6]).sum() < np.abs(true[:6]).sum()  # the weights shrink towards zero ...
    residual = (x.T @ x + np.diag([50.0] * 6 + [1e-6])) @ shrunk - x.T @ y
    assert np.abs(residual).max() < 1e-6  # ... as the ridge normal equations say


def test_shipped_statistics_match_the_shipped_un_texts() -> None:
    stats = load_e5_stats()
    assert stats is not None
    gram, cross, un_e5 = stats
    assert gram.shape == (385, 385) and cross.shape == (385, 384)
    assert gram[-1, -1] >= 500  # the dev rows (the constant column counts them)
    assert np.allclose(np.linalg.norm(un_e5, axis=1), 1.0, atol=0.01)


@pytest.fixture(scope="module")
def tagger(minilm_embedder) -> Tagger:
    return Tagger(minilm_embedder)


def test_a_blind_map_still_places_its_held_out_target_near_its_english_text(tagger: Tagger) -> None:
    stats = tagger._e5_stats
    assert stats is not None and tagger.embedder.name.startswith(DEFAULT_MODEL)
    un_e5 = stats[2]
    protos = [p for p in _prototypes() if p[3] == "en"]
    row = next(i for i, p in enumerate(protos) if p[1] == "5.5")  # target 5.5, women in leadership
    twin = tagger.without_target("5.5")
    blind, seen = twin.e5_map(), tagger.e5_map()
    assert blind is not None and seen is not None and not np.allclose(blind, seen)
    mapped = np.append(un_e5[row], 1.0) @ blind
    mapped /= np.linalg.norm(mapped)
    cos = tagger.proto_vecs[: len(protos)] @ mapped
    others = np.array([p[1] != "5.5" for p in protos])
    assert cos[row] > 0.6  # near the English text the map never saw ...
    assert protos[int(np.flatnonzero(others)[cos[others].argmax()])][0] == 5  # ... and nearest to goal 5's texts


# (text, language, the same in English): ordinary words the gloss misses or mistakes ("paysans", "commune", "venden")
PAIRS = [("Les femmes occupent la moitié des sièges du conseil de la coopérative.", "fr",
          "Women hold half of the seats on the cooperative's board."),
         ("Les paysans de la coopérative ont doublé leurs rendements de maïs grâce à l'agroécologie.", "fr",
          "The cooperative's farmers doubled their maize yields thanks to agroecology."),
         ("La commune réduit ses émissions de gaz à effet de serre.", "fr", "The town cuts its greenhouse gas emissions."),
         ("La escuela comunitaria ofrece educación gratuita a niñas y niños de familias pobres.", "es",
          "The community school offers free education to girls and boys from poor families."),
         ("Los campesinos venden su café a través de la cooperativa de comercio justo.", "es",
          "The peasants sell their coffee through the fair trade cooperative.")]


def test_french_and_spanish_passages_add_e5_meaning_and_english_ones_are_untouched(tagger: Tagger) -> None:
    texts = [p[0] for p in PAIRS] + [p[2] for p in PAIRS]
    vectors = tagger.embedder.encode(texts)
    n = len(PAIRS)
    _, langs, view, _ = tagger.english_view(texts, np.array([p[1] for p in PAIRS] + ["en"] * n), vectors)
    assert list(langs) == ["en"] * 2 * n
    assert np.array_equal(view[n:], vectors[n:])  # English: the same vectors, no e5
    gloss_only = tagger.embedder.encode([tagger.glosser.gloss(t, lang) for t, lang, _ in PAIRS])
    assert np.allclose(np.linalg.norm(view[:n], axis=1), 1.0, atol=1e-4)
    with_e5 = (view[:n] * vectors[n:]).sum(axis=1)  # cosine to the English text
    alone = (gloss_only * vectors[n:]).sum(axis=1)
    assert with_e5.mean() > alone.mean() + 0.03 and (with_e5 > alone).sum() >= n - 1


def test_without_the_e5_data_the_gloss_stands_alone(tagger: Tagger) -> None:
    text = PAIRS[1][0]
    vec = tagger.embedder.encode([text])
    plain = Tagger.__new__(Tagger)
    plain.__dict__.update(tagger.__dict__)
    plain._e5_stats, plain._e5_map = None, None
    _, _, view, _ = plain.english_view([text], np.array(["fr"]), vec)
    assert np.allclose(view[0], tagger.embedder.encode([tagger.glosser.gloss(text, "fr")])[0], atol=1e-6)
