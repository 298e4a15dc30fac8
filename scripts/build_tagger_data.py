"""Rebuild the SDG tagger's shipped data from ../shared/data/sdg: the keyword queries and the fitted model.

Usage: python scripts/build_tagger_data.py [--queries-only]
Writes ssehub/data/sdg_queries.json, ssehub/data/sdg_align.json (French/Spanish -> English words from the parallel
UN texts), ssehub/data/sdg_tagger.json (logistic models by the language of the text, with per-goal thresholds,
their cross-validated dev-set figures and the French/Spanish score calibration) and ssehub/data/sdg_prototypes.npz.
Needs the packaged model (about 1 minute on 2 cores). `python -m bench.tagger` prints the full evaluation.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
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
    parity_split,
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


def build_alignment(langs: tuple[str, ...] = ("fr", "es"), min_dice: float = 0.3) -> dict:
    """French/Spanish stem -> English word from the parallel UN texts of the tune half of the targets (their
    target and indicator texts, plus the goal titles), so that the parity figures on the other half stay honest.

    A pair is kept when each side is the other's best partner by Dice co-occurrence over the aligned texts
    (seen together at least twice): "pauvret" -> "poverty", "femm" -> "women", "climat" -> "climate".
    """
    from collections import Counter

    from ssehub import sdg
    from ssehub.sdgquery import words
    from ssehub.tagfeatures import _FUNCTION_WORDS, stems

    def segments(lang: str) -> dict[tuple, str]:
        out: dict[tuple, str] = {("goal", g.sdg): f"{g.short}. {g.title}" for g in sdg.goals(lang)}
        out.update({("target", c): t for c, t in sdg.targets(lang).items() if parity_split(c) == "tune"})
        out.update({("indicator", k): i["text"] for k, i in sdg.indicators(lang).items() if parity_split(i["target"]) == "tune"})
        return out

    english = segments("en")
    out = {}
    for lang in langs:
        own = segments(lang)
        skip = set(stems(" ".join(_FUNCTION_WORDS[lang]), lang))
        n_src, n_en, pairs = Counter(), Counter(), Counter()
        for key in english.keys() & own.keys():
            src = set(stems(own[key], lang)) - skip
            dst = {w for w in words(english[key]) if len(w) > 2 and not w.isdigit()} - _EN_STOP
            n_src.update(src)
            n_en.update(dst)
            pairs.update((s, e) for s in src for e in dst)
        best_src: dict[str, tuple[float, str]] = {}
        best_en: dict[str, tuple[float, str]] = {}
        for (s, e), c in sorted(pairs.items()):
            if c < 2:
                continue
            dice = 2 * c / (n_src[s] + n_en[e])
            best_src[s] = max(best_src.get(s, (0.0, "")), (dice, e))
            best_en[e] = max(best_en.get(e, (0.0, "")), (dice, s))
        out[lang] = {s: e for s, (d, e) in sorted(best_src.items()) if d >= min_dice and best_en[e][1] == s}
    return {"source": "UN SDG goal/target/indicator texts (tune half of the targets), open-sdg/sdg-translations",
            "languages": out}


_EN_STOP = frozenset(["the", "of", "and", "to", "in", "is", "are", "for", "that", "with", "this", "on", "by", "from", "as", "be",
                     "which", "all", "at", "or", "an", "its", "their", "other"])


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
