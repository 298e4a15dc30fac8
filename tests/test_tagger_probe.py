"""The e5 probe and the `glossed` model: French/Spanish passages scored with a language-neutral view that skips the gloss."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ssehub.tagger import E5_PROBE, Tagger, load_e5_probe, load_params

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from tagger_fit import SHARED_SDG, DevSet, ParityText, ProbeData, fit, fit_glossed, read_dev

FRENCH = "Les paysans de la coopérative ont doublé leurs rendements de maïs grâce à l'agroécologie : la faim recule."
SPANISH = "La escuela comunitaria ofrece educación gratuita y de calidad a niñas y niños de familias pobres."
ENGLISH = "The cooperative's farmers doubled their maize yields thanks to agroecology, and hunger is receding."


def test_the_shipped_probe_and_glossed_model_fit_the_feature_columns() -> None:
    probe = load_e5_probe()
    assert probe is not None and probe.shape == (385, 17) and np.isfinite(probe).all()
    params = load_params()
    glossed, full = params["glossed"], params["full"]
    assert params["features"][-1] == E5_PROBE
    assert glossed["columns"] == [*full["columns"], len(params["features"]) - 1]  # `full`'s columns and the probe
    assert E5_PROBE not in [params["features"][c] for c in full["columns"]]
    assert set(glossed["lang_offset"]) == {"fr", "es"}


@pytest.fixture(scope="module")
def tagger(minilm_embedder) -> Tagger:
    tagger = Tagger(minilm_embedder)
    if tagger.probe is None:
        pytest.skip("no e5 probe for this embedder")
    return tagger


def _e5_or_skip(tagger: Tagger, texts: list[str]) -> np.ndarray:
    e5 = tagger._e5_vectors(texts)
    if e5 is None:
        pytest.skip("no multilingual-e5 engine")
    return e5


def test_the_probe_reads_french_and_spanish_as_it_reads_english(tagger: Tagger) -> None:
    scores = tagger.probe_scores(_e5_or_skip(tagger, [FRENCH, SPANISH, ENGLISH]))
    assert list(scores.argmax(axis=1) + 1) == [2, 4, 2]  # zero hunger, quality education, zero hunger
    assert np.corrcoef(scores[0], scores[2])[0, 1] > 0.8  # the French text and its English: the same goal profile


def test_french_and_spanish_passages_get_the_glossed_model_and_english_ones_keep_full(tagger: Tagger) -> None:
    texts = [FRENCH, SPANISH, ENGLISH]
    _e5_or_skip(tagger, texts[:1])
    vectors = tagger.embedder.encode(texts)
    feats, langs = tagger.features(texts, vectors)
    assert list(langs) == ["fr", "es", "en"]
    probe = feats[:, 0, tagger.feature_names().index(E5_PROBE)]
    assert np.isfinite(probe[:2]).all() and np.isnan(probe[2])  # no e5 vector is made for an English passage
    assert list(tagger.model_keys(feats, langs)) == ["glossed", "glossed", "full"]
    probs = tagger.probabilities(feats, langs)
    assert list(probs[:2].argmax(axis=1) + 1) == [2, 4] and np.isfinite(probs).all()
    # English passages: the same probabilities as a tagger that has no probe at all.
    plain = tagger.with_probe(None, None)
    plain_feats, _ = plain.features(texts[2:], vectors[2:])
    assert np.allclose(plain.probabilities(plain_feats, langs[2:]), probs[2:], atol=1e-6)
    assert tagger.thresholds("fr", "glossed") == pytest.approx(
        np.array(tagger.params["glossed"]["thresholds"]) + tagger.params["glossed"]["lang_offset"]["fr"])


def test_a_target_blind_twin_has_neither_probe_nor_glossed_model_until_given_ones(tagger: Tagger) -> None:
    twin = tagger.without_target("2.3")
    assert twin.probe is None and "glossed" not in twin.params and "glossed" in tagger.params
    feats, langs = twin.features([FRENCH], tagger.embedder.encode([FRENCH]))
    assert list(twin.model_keys(feats, langs)) == ["full"]  # French falls back to `full`, as before the probe
    given = twin.with_probe(tagger.probe, tagger.params["glossed"])
    feats, langs = given.features([FRENCH], tagger.embedder.encode([FRENCH]))
    assert list(given.model_keys(feats, langs)) == ["glossed"]


def test_weighted_fit_counts_a_row_of_weight_two_as_two_rows() -> None:
    rng = np.random.default_rng(1)
    x, sdg = rng.normal(size=(120, 3)), rng.integers(1, 18, size=120)
    y = (x[:, 0] + rng.normal(size=120) > 0).astype(float)
    doubled = fit(np.vstack([x, x[:40]]), np.r_[sdg, sdg[:40]], np.r_[y, y[:40]])
    weighted = fit(x, sdg, y, weight=np.r_[np.full(40, 2.0), np.ones(80)])
    assert np.allclose(doubled["weights"], weighted["weights"], atol=1e-6)
    assert not np.allclose(fit(x, sdg, y)["weights"], weighted["weights"], atol=1e-3)


def test_the_probe_refitted_without_a_target_has_not_seen_its_rows() -> None:
    rng = np.random.default_rng(2)
    goal = np.repeat(np.arange(1, 18), 6)
    x = rng.normal(size=(17, 8))[goal - 1] + 0.3 * rng.normal(size=(len(goal), 8))
    target = np.array([f"{g}.{i % 3 + 1}" for i, g in enumerate(goal)])
    data = ProbeData(x, goal, target, np.zeros((0, 8)))
    seen, blind = data.fit(), data.fit("5.1")
    assert seen.shape == (9, 17) and (ProbeData.scores(seen, x).argmax(axis=1) + 1 == goal).mean() > 0.8
    keep = target != "5.1"
    assert np.allclose(blind, ProbeData(x[keep], goal[keep], target[keep], data.dev).fit(), atol=1e-5)
    assert not np.allclose(blind, seen, atol=1e-3)
    assert np.allclose(data.fit("99.9"), seen)  # leaving out a target with no rows changes nothing


def test_the_glossed_model_leaves_out_the_held_out_targets_rows(tagger: Tagger) -> None:
    if not (SHARED_SDG / "osdg_dev_600.csv").is_file():
        pytest.skip("needs ../shared/data/sdg")
    dev = read_dev(SHARED_SDG / "osdg_dev_600.csv")
    rng = np.random.default_rng(3)
    width = len(tagger.feature_names())
    dev_feats = rng.normal(size=(len(dev.texts), 17, width))
    texts = [ParityText(f"{g}.1", lang, g, "tune", rng.normal(size=(17, width)), lang)
             for g in range(1, 18) for lang in ("en", "fr", "es")]
    every, blind = fit_glossed(tagger, dev, dev_feats, texts), fit_glossed(tagger, dev, dev_feats, texts, "3.1")
    assert every["columns"] == tagger.params["glossed"]["columns"]
    assert not np.allclose(every["weights"], blind["weights"])
    # English texts are never rows of `glossed`: changing them changes nothing.
    changed = [ParityText(t.code, t.lang, t.goal, t.split, t.feats + (t.lang == "en"), t.detected) for t in texts]
    assert np.allclose(fit_glossed(tagger, dev, dev_feats, changed)["weights"], every["weights"])
    assert isinstance(dev, DevSet)
