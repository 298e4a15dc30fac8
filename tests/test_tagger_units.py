"""SDG tagger parts that need no model: query syntax, language guess, UN-text lexicon, goal choice, `ssehub tag` batches."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np

from ssehub.embed import HashingEmbedder
from ssehub.sdgquery import Matcher, parse
from ssehub.settings import Settings
from ssehub.store import Store
from ssehub.tagfeatures import language, stems
from ssehub.tagger import MAX_DOCUMENT_TAGS, Tagger, choose_goals, default_lexicon, prototypes, split_passages
from ssehub.tagging import tag_inputs


def test_aurora_proximity_needs_both_sides_within_n_words() -> None:
    query = '( "poverty" ) W/3 ( "eradicat*" OR "reduc*" OR "end" )'
    assert parse(query).kind == "NEAR"
    m = Matcher({"aurora": [(1, query)]})
    assert m.counts("We aim to eradicate extreme poverty by 2030.")["aurora"][0] == 1
    assert m.counts("Poverty is a thing that we should, in the long run and with patience, eradicate.")["aurora"][0] == 0
    assert m.counts("Nothing about that here.")["aurora"][0] == 0


def test_language_guess() -> None:
    assert language("The cooperative is owned by the workers and it shares the profits with them.") == "en"
    assert language("La coopérative appartient aux salariés et elle partage les bénéfices avec eux.") == "fr"
    assert language("La cooperativa es de los trabajadores y reparte los beneficios con ellos.") == "es"
    assert language("Die Genossenschaft gehört den Arbeitnehmern.") == "other"
    assert language("") == "other"
    # Function words French and Spanish share ("de", "la", "en") tipped the count: py3langid decides between the two,
    # composed or decomposed (the UN texts are NFD).
    spanish = "De aquí a 2030, duplicar la tasa mundial de mejora de la eficiencia energética"
    assert language(spanish) == "es" and language(unicodedata.normalize("NFD", spanish)) == "es"
    assert language("De la part de la ville de Genève") == "fr" and language("de la casa de la ciudad") == "es"
    assert language("Tasa de mortalidad materna") == "es"  # was fr
    assert language("Proportion des races locales considérées comme étant en danger d’extinction") == "fr"  # was es


def test_lexicon_finds_the_goal_in_french_and_spanish_through_the_un_texts() -> None:
    lexicon = default_lexicon()
    goals = np.array([g for g, _, _ in prototypes()])
    texts = {"fr": "L'égalité entre les sexes et l'autonomisation des femmes et des filles : la coopérative lutte contre "
             "les violences faites aux femmes.",
             "es": "La igualdad de género y el empoderamiento de las mujeres y las niñas: la cooperativa lucha contra la "
             "violencia contra las mujeres."}
    for lang, text in texts.items():
        sims = lexicon.similarities([text], [lang])[0]
        assert goals[sims.argmax()] == 5
        assert sims[np.flatnonzero(lexicon.langs != lang)].max() == 0.0  # only its own language's UN texts count
    assert stems("coopératives femmes", "fr") == ["cooper", "femm"]


def test_choose_goals_keeps_best_passage_applies_ratio_and_cap() -> None:
    probs = np.full((2, 17), 0.1)
    probs[0, 4], probs[1, 4] = 0.6, 0.95  # goal 5: best in passage 1
    probs[0, 7] = 0.8  # goal 8: passage 0
    probs[1, 12] = 0.45  # goal 13: passes its threshold but is under half of the best score
    th = np.full((2, 17), 0.4)
    assert choose_goals(probs, th) == [(5, 1, 0.95), (8, 0, 0.8)]
    assert choose_goals(probs[1:], th[1:]) == [(5, 0, 0.95), (13, 0, 0.45)]  # one passage: no ratio rule
    many = np.full((1, 17), 0.9)
    assert len(choose_goals(many, np.full((1, 17), 0.5))) == MAX_DOCUMENT_TAGS
    assert choose_goals(np.full((1, 17), 0.3), np.full((1, 17), 0.5)) == []


def test_long_texts_are_split_into_passages() -> None:
    text = " ".join(f"Sentence number {i} talks about cooperatives and their members." for i in range(100))
    parts = split_passages(text, words=50)
    assert len(parts) > 10 and all(len(p.split()) <= 50 for p in parts)
    assert " ".join(parts) == text
    assert split_passages("One short text") == ["One short text"]


def test_document_tags_are_what_the_store_keeps(tmp_path: Path) -> None:
    from ssehub.models import Document, document_id

    tagger = Tagger(HashingEmbedder(), offset=-0.5)
    tags = tagger.tag_document("Gender equality", ["Women and girls in cooperatives.", "Decent work for all members."])
    assert tags and all(set(t) == {"sdg", "score", "evidence", "targets"} for t in tags)
    store = Store(tmp_path / "s.db")
    doc_id = document_id("t", "a")
    store.upsert_document(Document(id=doc_id, source_id="t", title="Gender equality",
                                   text="Women and girls in cooperatives. Decent work for all members."))
    store.set_auto_tags(doc_id, tags)
    kept = store.tags([doc_id])[doc_id]
    assert [(t["sdg"], t["evidence"], t["targets"]) for t in kept] == [(t["sdg"], t["evidence"], t["targets"]) for t in tags]
    store.close()


def test_without_target_hides_that_target_in_every_language() -> None:
    tagger = Tagger(HashingEmbedder())
    text = next(text for _, code, text in prototypes() if code == "1.1")
    vec = tagger.embedder.encode([text])
    full, _ = tagger.features([text], vec, ["en"])
    blind, _ = tagger.without_target("1.1").features([text], vec, ["en"])
    assert np.isclose(full[0, 0, 0], 1.0, atol=1e-3) and blind[0, 0, 0] < 0.99  # sim_max of goal 1
    assert not np.array_equal(full, blind)


def test_ssehub_tag_batches_keep_input_order_and_report_bad_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "text": f"Text {i} on women's cooperatives."}) for i in range(70)]
    lines.insert(3, "not json")
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    out = list(tag_inputs(Settings(data_dir=tmp_path, model_path="hashing"), None, path))
    assert len(out) == 71 and out[3]["id"] == "line 4" and "error" in out[3]
    assert [o["id"] for o in out if "sdgs" in o] == list(range(70))


def test_weights_are_chosen_by_embedding_model_with_the_packaged_ones_as_fallback() -> None:
    from ssehub.tagger import load_params, model_file

    assert load_params("all-MiniLM-L6-v2")["model"] == "all-MiniLM-L6-v2"
    assert load_params("multilingual-e5-small")["model"] == "multilingual-e5-small"
    assert load_params("some-other-model")["model"] == "all-MiniLM-L6-v2"
    assert model_file("data/sdg_tagger.json", "multilingual-e5-small") == "data/sdg_tagger-multilingual-e5-small.json"


def test_accents_stem_the_same_composed_or_decomposed() -> None:
    import unicodedata

    # The shipped UN texts are decomposed (é = e + U+0301); user text is usually composed.
    for lang, word in (("fr", "éliminer complètement la pauvreté"), ("es", "erradicar la pobreza extrema en áreas rurales")):
        assert stems(unicodedata.normalize("NFD", word), lang) == stems(word, lang)
    assert stems("éliminer", "fr") == ["élimin"]


def test_goal_lexicon_pools_a_goals_words_and_hides_a_held_out_target() -> None:
    lexicon = default_lexicon()
    goals = np.array([g for g, _, _ in prototypes()])
    text = "L'accès à l'eau potable et à l'assainissement pour tous, et le traitement des eaux usées."
    sims = lexicon.goal_similarities([text], ["fr"], lexicon.goal_matrices(goals))
    assert sims.shape == (1, 17) and sims[0].argmax() == 5  # goal 6
    keep = np.array([code != "6.1" for _, code, _ in prototypes()])
    blind = lexicon.goal_similarities([text], ["fr"], lexicon.goal_matrices(goals, keep))
    assert blind[0, 5] < sims[0, 5]
    assert not lexicon.goal_similarities(["xyz"], ["fr"], lexicon.goal_matrices(goals)).any()


def test_french_and_spanish_thresholds_carry_their_calibration() -> None:
    tagger = Tagger(HashingEmbedder())
    full = tagger.params["full"]
    assert set(full["lang_offset"]) == {"fr", "es"}
    glossed = tagger.params["glossed"]
    for lang in ("fr", "es"):
        assert np.allclose(tagger.thresholds(lang, "full"), np.array(full["thresholds"]) + full["lang_offset"][lang])
        assert np.allclose(tagger.thresholds(lang), np.array(glossed["thresholds"]) + glossed["lang_offset"][lang])
        plain = tagger.with_probe(None, None)  # a tagger without the `glossed` model (another embedding model's weights)
        assert np.allclose(plain.thresholds(lang), tagger.thresholds(lang, "full"))
    assert np.allclose(tagger.thresholds("en"), full["thresholds"])
