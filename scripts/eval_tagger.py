"""Print the SDG tagger's dev-set table (5-fold cross-validated), a language-parity check and its speed.

Usage: python scripts/eval_tagger.py   (needs ../shared/data/sdg; about 1 minute on 2 cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tagger_fit import SHARED_SDG, cached_features, cross_validate, design, read_dev, scores  # noqa: E402


def main() -> None:
    from ssehub import sdg
    from ssehub.embed import SentenceTransformerEmbedder
    from ssehub.tagger import Tagger

    embedder = SentenceTransformerEmbedder()
    tagger = Tagger(embedder, cache_dir=Path("data/cache"))
    dev = read_dev(SHARED_SDG / "osdg_dev_600.csv")
    feats, _ = cached_features(tagger, dev, Path("data/cache"))
    for key in ("full", "similarity"):
        model = tagger.params[key]
        x = design(feats, dev.sdg)[:, model["columns"]]
        _, decide = cross_validate(x, dev, tagger.params["shrink"])
        r = scores(decide, dev.sdg, dev.label)
        print(f"\n{key} model, 5-fold cross-validated on osdg_dev_600 (grouped by text, thresholds by inner CV)")
        print(f"{'SDG':>4} {'n':>4} {'acc':>6} {'prec':>6} {'rec':>6} {'F1':>6}")
        for g, m in r["per_sdg"].items():
            print(f"{g:>4} {m['n']:>4} {m['accuracy']:6.3f} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}")
        m = r["macro"]
        print(f"macro     {m['accuracy']:6.3f} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f}   "
              f"worst SDG {r['worst_sdg']}: {r['worst_accuracy']:.3f}")

    # Language parity: tag each UN target text in en/fr/es with a tagger that cannot see that target's own
    # texts (its target and indicator prototypes masked in every language), and check its goal comes out.
    print("\nlanguage parity: UN target texts, own target masked (goal top-1 / goal tagged / tags per text)")
    for lang in ("en", "fr", "es"):
        items = list(sdg.targets(lang).items())
        top1 = tagged = ntags = 0
        vectors = embedder.encode([t for _, t in items], batch_size=32)
        for (code, text), vec in zip(items, vectors, strict=True):
            masked = Tagger.__new__(Tagger)
            masked.__dict__.update(tagger.__dict__)
            keep = np.array([t != code for t in tagger.proto_target])
            masked.proto_vecs, masked.proto_goal = tagger.proto_vecs[keep], tagger.proto_goal[keep]
            masked.proto_target = [t for t, k in zip(tagger.proto_target, keep, strict=True) if k]
            masked._is_title = tagger._is_title[keep]
            tags = masked.tag_document("", [text], vec[None, :])
            goal = sdg.goal_of(code)
            top1 += bool(tags) and tags[0]["sdg"] == goal
            tagged += any(t["sdg"] == goal for t in tags)
            ntags += len(tags)
        n = len(items)
        print(f"  {lang}: {top1 / n:.3f} / {tagged / n:.3f} / {ntags / n:.2f}")

    texts = dev.texts[:200]
    start = time.perf_counter()
    tagger.tag_many(texts)
    dt = time.perf_counter() - start
    print(f"\nspeed: {len(texts) / dt:.1f} texts/s tagging dev paragraphs (embedding included, 1 torch thread)")


if __name__ == "__main__":
    main()
