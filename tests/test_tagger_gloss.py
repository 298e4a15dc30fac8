"""French/Spanish -> English glosses for the SDG tagger: alignment, cognates, the English view, `ssehub tag` in fr/es."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ssehub.embed import HashingEmbedder
from ssehub.gloss import Glosser, align, align_pairs, cognate, default_glosser, english_words, segments
from ssehub.tagfeatures import goal_lexical_features, keyword_features, lexical_features
from ssehub.tagger import OWN_WORDS_WEIGHT, Tagger


def test_ibm_model_one_separates_words_that_always_appear_together_elsewhere() -> None:
    pairs = [(["maison", "bleu"], ["house", "blue"]), (["maison"], ["house"]), (["ciel", "bleu"], ["sky", "blue"]),
             (["ciel"], ["sky"])]
    lexicon = align_pairs(pairs)
    assert lexicon == {"maison": "house", "bleu": "blue", "ciel": "sky"}


def test_shipped_lexicon_knows_the_sdg_vocabulary() -> None:
    glosser = default_glosser()
    assert glosser.gloss("La pauvreté des femmes rurales", "fr").split() == ["poverty", "women", "rural"]
    assert {"water", "drinking"} <= set(glosser.gloss("El agua potable y el saneamiento", "es").split())
    assert {"climate", "change"} <= set(glosser.gloss("les changements climatiques", "fr").split())
    assert glosser.gloss("Die Armut der Frauen", "de") == ""  # no lexicon for German
    assert len(glosser.lexicon("fr")) > 800 and len(glosser.lexicon("es")) > 800  # session 2 shipped ~300 pairs


def test_cognates_turn_latinate_words_into_english_ones() -> None:
    english = english_words()
    assert cognate("éducation", "fr", english) == "education"
    assert cognate("économique", "fr", english) == "economic"  # not the French word the model's vocabulary holds
    assert cognate("financière", "fr", english) == "financial"
    assert cognate("económica", "es", english) == "economic"
    assert cognate("energía", "es", english) == "energy"
    assert cognate("participar", "es", english) == "participate"
    assert cognate("pour", "fr", english) is None  # short words are too often false friends
    assert cognate("zzzzzzz", "es", english) is None



def test_two_word_sse_terms_gloss_as_the_english_term() -> None:
    """"commerce équitable" is "fair trade" (the English queries' term), not "trade equitable"; the words around it
    are still glossed one by one, and a phrase split across words that do not form it is not matched."""
    g = default_glosser()
    fr = g.gloss("Le Commerce Équitable du cacao renforce la coopérative", "fr").split()
    assert fr[:2] == ["fair", "trade"] and "trade" not in fr[2:]
    assert g.gloss("comercio justo y economía solidaria", "es").startswith("fair trade") and "solidarity economy" in \
        g.gloss("comercio justo y economía solidaria", "es")
    assert "fair" not in g.gloss("le commerce de détail reste équitable", "fr").split()


def test_idioms_gloss_as_their_english_or_as_nothing() -> None:
    """Idioms glossed word by word were noise ("hacer frente" -> "monitor front", "en matière de" -> "eliminating",
    "D'ici à 2030" -> "including"); the longest idiom at a position wins, and its words alone still gloss as words."""
    g = default_glosser()
    assert g.gloss("D'ici à 2030, réduire nettement la corruption et les pots-de-vin en matière de santé", "fr").split() == \
        ["reduce", "substantially", "corruption", "bribes", "health"]
    assert g.gloss("De aquí a 2030, hacer frente a la pobreza y llevar a cabo", "es").split() == \
        ["address", "poverty", "carry", "out"]
    assert g.gloss("poner en práctica", "es") == "implement" and g.gloss("poner fin", "es") == "end"
    assert g.gloss("la santé", "fr") == "health" and "address" not in g.gloss("frente", "es")

def test_a_cognate_or_an_e5_neighbour_picks_among_the_aligned_partners() -> None:
    """Co-occurrence alone put "safely" before "security" for "sécurité"; the cognate and the e5 neighbour know better,
    but only among partners the alignment found, and not far below the best one."""
    english = english_words()
    near = {"fr": {"faim": [["hunger", 0.95]]}}
    g = Glosser({"fr": {"sécur": [["safely", 0.3], ["security", 0.05]], "faim": [["security", 0.2], ["hunger", 0.1]]}},
                english, neighbours=near)
    assert g.gloss("sécurité faim", "fr") == "security hunger"
    weak = Glosser({"fr": {"sécur": [["safely", 0.3], ["security", 0.01]], "faim": [["security", 0.2]]}}, english,
                   neighbours=near)
    assert weak.gloss("sécurité faim", "fr") == "safely security"  # partner too weak / not a partner at all


def test_e5_neighbours_gloss_words_the_aligned_lexicon_lacks() -> None:
    english = english_words()
    near = {"fr": {"logement": [["housing", 0.94]], "taudis": [["duty", 0.86]]},
            "es": {"vivienda": [["housing", 0.93]]}}
    g = Glosser({"fr": {}, "es": {}}, english, neighbours=near)
    assert g.gloss("logement", "fr") == "housing"
    assert g.gloss("logements", "fr") == "housing"  # by its stem
    assert g.gloss("taudis", "fr") == ""  # under NEIGHBOUR_MIN: single words score that high against unrelated ones
    assert g.gloss("viviendas", "es") == "housing"
    assert g.without_target("11.1").neighbour("logement", "log", "fr") == [("housing", 0.94)]


def test_shipped_e5_neighbours_restore_a_held_out_targets_words() -> None:
    """Blind to target 11.1 ("... adequate, safe and affordable housing ..."), the alignment never saw "logement" beside
    "housing"; the e5 neighbours, made from no parallel text, still gloss it."""
    shipped = default_glosser()
    blind = shipped.without_target("11.1")
    assert "log" not in blind.lexicon("fr")
    assert Glosser({}, shipped.english, skip_target="11.1").gloss("un logement abordable", "fr").split()[:1] != ["housing"]
    assert blind.gloss("un logement abordable", "fr").split()[0] == "housing"
    assert blind.gloss("la vivienda asequible", "es").split()[0] == "housing"
    assert all(e in shipped.english for table in shipped.neighbours.values() for near in table.values() for e, _ in near)
    assert shipped.candidates("fr")["pauvret"][0][0] == "poverty"


def test_a_held_out_target_is_not_aligned_on() -> None:
    keys = segments("fr", skip_target="5.5")
    assert ("target", "5.5") not in keys and ("target", "5.4") in keys
    assert not any(k[0] == "indicator" and k[1].startswith("5.5.") for k in keys)
    assert align("fr", "5.5") != align("fr")
    twin = default_glosser().without_target("5.5")
    assert twin.lexicon("fr") == align("fr", "5.5")


def test_french_and_spanish_passages_are_featurised_as_their_english_gloss() -> None:
    tagger = Tagger(HashingEmbedder())
    names = tagger.feature_names()
    kw = [i for i, n in enumerate(names) if n.startswith("kw_")]
    texts = ["La lutte contre la pauvreté et la faim des femmes rurales.", "Die Armut der Frauen auf dem Land.",
             "poverty hunger women rural"]
    feats, langs = tagger.features(texts, tagger.embedder.encode(texts), ["fr", "other", "en"])
    assert list(langs) == ["fr", "other", "en"]
    assert feats[0][:, kw].sum() > 0 and feats[1][:, kw].sum() == 0  # no gloss for German
    # The French passage's features are those of its gloss read as English ("lutte" -> "combat" is one more word).
    gloss = tagger.glosser.gloss(texts[0], "fr")
    as_english, _ = tagger.features([gloss], tagger.embedder.encode([gloss]), ["en"])
    words = [i for i, n in enumerate(names) if n.startswith(("lex_", "glex"))]
    emb = [i for i in range(len(names)) if i not in kw and i not in words and names[i] != "e5_probe"]
    assert np.allclose(feats[0][:, emb], as_english[0][:, emb])
    # Its word overlap mixes the gloss's against the English UN texts with its own words' against the French ones.
    own = tagger.lexicon.similarities(texts[:1], ["fr"])
    own_glex = tagger.lexicon.goal_similarities(texts[:1], ["fr"], tagger._goal_mats)
    own_feats = np.concatenate([lexical_features(own, tagger.proto_goal), goal_lexical_features(own_glex)], axis=2)[0]
    w = OWN_WORDS_WEIGHT
    assert np.allclose(feats[0][:, words], w * own_feats + (1 - w) * as_english[0][:, words], atol=1e-6)
    assert not np.allclose(own_feats, as_english[0][:, words])
    # Its keyword queries read the gloss loosely (French word order, no function words), an English text exactly.
    loose = keyword_features(tagger.loose_matcher(), [gloss], np.array([True]))[0]
    assert np.allclose(feats[0][:, kw], loose) and not np.allclose(loose, as_english[0][:, kw])


def test_ssehub_tag_finds_the_goal_of_french_and_spanish_texts(tmp_path: Path) -> None:
    texts = {
        "fr-2": "Les paysans de la coopérative ont doublé leurs rendements de maïs grâce à l'agroécologie : la faim "
        "recule dans les villages et les enfants mangent à leur faim toute l'année.",
        "es-4": "La escuela comunitaria ofrece educación gratuita y de calidad a niñas y niños de familias pobres, "
        "con maestros formados y libros para todos los alumnos.",
        "fr-13": "Face au réchauffement climatique, la commune réduit ses émissions de gaz à effet de serre et "
        "prépare les habitants aux inondations et aux sécheresses.",
    }
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"id": k, "text": t}) for k, t in texts.items()), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "ssehub", "--data", str(tmp_path), "tag", "--jsonl", str(path)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert [o["id"] for o in out] == list(texts)
    for o in out:
        assert o["sdgs"] and o["sdgs"][0]["sdg"] == int(o["id"].split("-")[1]), o
        assert o["sdgs"][0]["evidence"] == " ".join(texts[o["id"]].split())  # evidence in the text's own language
