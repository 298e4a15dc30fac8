"""The SDG tagger: real-model behaviour in English, French and Spanish, and the contract on any embedder."""

from __future__ import annotations

import numpy as np
import pytest

from ssehub.embed import HashingEmbedder
from ssehub.tagger import EVIDENCE_CHARS, Tagger, evidence

COOPERATIVE = {
    "en": "In the village, a women's cooperative that produces shea butter has helped its members gain economic "
    "independence, fight gender discrimination and take part in local decision-making on an equal footing with men.",
    "fr": "Dans le village, une coopérative de femmes qui produit du beurre de karité a aidé ses membres à gagner leur "
    "indépendance économique, à lutter contre les discriminations de genre et à participer aux décisions locales à "
    "égalité avec les hommes.",
    "es": "En el pueblo, una cooperativa de mujeres que produce manteca de karité ha ayudado a sus socias a lograr "
    "independencia económica, luchar contra la discriminación de género y participar en las decisiones locales en "
    "igualdad con los hombres.",
}


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
def test_womens_cooperatives_are_tagged_sdg5_first(minilm_tagger: Tagger, lang: str) -> None:
    tags = minilm_tagger.tag(COOPERATIVE[lang])
    assert tags and tags[0]["sdg"] == 5
    assert tags[0]["score"] >= 0.5 and tags[0]["evidence"] == evidence(COOPERATIVE[lang])


def test_clear_goals_are_found(minilm_tagger: Tagger) -> None:
    texts = {
        6: "Access to safe drinking water and sanitation remains out of reach for rural households; the water "
        "cooperative built wells and latrines and now treats wastewater.",
        7: "The citizen energy cooperative installed solar panels and wind turbines, selling renewable electricity "
        "to its members and improving energy efficiency in homes.",
        13: "Climate change adaptation plans must reduce greenhouse gas emissions and build resilience to floods and "
        "droughts caused by global warming.",
    }
    for goal, text in texts.items():
        assert minilm_tagger.tag(text)[0]["sdg"] == goal


def test_unrelated_text_gets_few_or_no_tags(minilm_tagger: Tagger) -> None:
    assert minilm_tagger.tag("The match ended in a draw after the striker missed a penalty in the last minute.") == []
    assert len(minilm_tagger.tag("The recipe needs two eggs, a cup of flour and a pinch of salt; bake for twenty minutes.")) <= 1


def test_targets_are_named_only_with_strong_evidence(minilm_tagger: Tagger) -> None:
    tags = minilm_tagger.tag("By 2030, eradicate extreme poverty for all people everywhere, currently measured as "
                             "people living on less than $1.25 a day.")
    assert tags[0]["sdg"] == 1 and tags[0]["targets"][0] == "1.1"
    weak = minilm_tagger.tag(COOPERATIVE["en"])
    assert all(t.split(".")[0] == str(tag["sdg"]) for tag in weak for t in tag["targets"])


def test_document_tags_reuse_passage_vectors_and_cite_the_best_passage(minilm_tagger: Tagger, minilm_embedder) -> None:
    passages = ["The annual report covers the board meeting and the accounts of the year.",
                COOPERATIVE["en"],
                "The cooperative's solar dryer runs on renewable energy, cutting wood use."]
    title = "Annual report 2023"
    texts = [f"{title}. {passages[0]}", *passages[1:]]
    vectors = minilm_embedder.encode(texts)
    with_vectors = minilm_tagger.tag_document(title, passages, vectors)
    assert with_vectors == minilm_tagger.tag_document(title, passages, None)
    by_goal = {t["sdg"]: t for t in with_vectors}
    assert by_goal[5]["evidence"] == evidence(COOPERATIVE["en"])
    assert with_vectors == sorted(with_vectors, key=lambda t: -t["score"])


def test_empty_document_has_no_tags(minilm_tagger: Tagger) -> None:
    assert minilm_tagger.tag_document("", [], None) == []


def test_a_text_that_says_nothing_gets_no_tags(minilm_tagger: Tagger) -> None:
    # The models were fitted on paragraphs: without a guard "a" got SDG 16 and 2, "xx yy" SDG 8 at 0.92.
    for text in ["a", "xx yy", "qwerty asdfgh", "the of and", "la", "\x00", "12 34"]:
        assert minilm_tagger.tag(text) == [], text
    # A single word of the UN texts still says something, in any of the three languages.
    assert minilm_tagger.tag("water")[0]["sdg"] == 6
    assert minilm_tagger.tag("Femmes")[0]["sdg"] == 5
    assert minilm_tagger.tag("Access to clean water")[0]["sdg"] == 6


def test_contract_holds_on_the_hashing_embedder() -> None:
    tagger = Tagger(HashingEmbedder(), offset=-0.5)  # a low bar, so that tags come out at all
    tags = tagger.tag("Gender equality and the empowerment of all women and girls in cooperatives.")
    assert tags, "with the offset at -0.5 some goal should pass"
    assert all(set(t) == {"sdg", "score", "evidence", "targets"} for t in tags)
    assert all(1 <= t["sdg"] <= 17 and 0.0 <= t["score"] <= 1.0 for t in tags)
    assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
    assert len({t["sdg"] for t in tags}) == len(tags)


def test_evidence_is_trimmed_on_a_word_boundary() -> None:
    text = "word " * 200
    out = evidence(text)
    assert len(out) <= EVIDENCE_CHARS + 2 and out.endswith(" …") and "wor …" not in out
    assert evidence("  short   text ") == "short text"


def test_prototype_vectors_are_shipped_for_the_packaged_model(minilm_tagger: Tagger, minilm_embedder) -> None:
    fresh = minilm_embedder.encode(["Gender equality. Achieve gender equality and empower all women and girls"])
    sims = minilm_tagger.similarities(fresh)[0]
    assert np.isclose(sims.max(), 1.0, atol=0.01)  # the goal 5 text, within float16 rounding


def test_a_long_text_is_tagged_passage_by_passage_with_the_right_evidence(minilm_tagger: Tagger) -> None:
    filler = " ".join(["The board met in March and approved the accounts of the year after a long discussion."] * 30)
    water = ("Access to safe drinking water and sanitation remains out of reach for rural households; the water "
             "cooperative built wells and latrines and now treats wastewater.")
    tags = minilm_tagger.tag(f"{filler} {water} {filler}")
    assert tags and tags[0]["sdg"] == 6
    assert tags[0]["evidence"].startswith("Access to safe drinking water")  # the sentence, not the filler before it


@pytest.mark.parametrize("lang", ["fr", "es"])
def test_french_and_spanish_target_texts_name_their_target(minilm_tagger: Tagger, lang: str) -> None:
    from ssehub import sdg

    tags = minilm_tagger.tag(sdg.targets(lang)["6.1"])
    assert tags[0]["sdg"] == 6 and "6.1" in tags[0]["targets"]


@pytest.mark.parametrize("lang", ["fr", "es"])
def test_clear_goals_are_found_in_french_and_spanish(minilm_tagger: Tagger, lang: str) -> None:
    texts = {
        "fr": {6: "L'accès à l'eau potable et à l'assainissement reste hors de portée des ménages ruraux ; la coopérative "
                  "de l'eau a construit des puits et des latrines et traite désormais les eaux usées.",
               7: "La coopérative citoyenne d'énergie a installé des panneaux solaires et des éoliennes, vend une "
                  "électricité renouvelable à ses membres et améliore l'efficacité énergétique des logements."},
        "es": {6: "El acceso al agua potable y al saneamiento sigue fuera del alcance de los hogares rurales; la "
                  "cooperativa de agua construyó pozos y letrinas y ahora trata las aguas residuales.",
               7: "La cooperativa ciudadana de energía instaló paneles solares y aerogeneradores, vende electricidad "
                  "renovable a sus socios y mejora la eficiencia energética de las viviendas."},
    }
    for goal, text in texts[lang].items():
        assert minilm_tagger.tag(text)[0]["sdg"] == goal
