"""Extraction quality: the harvester's own HTML path vs trafilatura alone on ../shared/eval/extraction (181 pages).

Scoring follows the dataset's README (the upstream article-extraction-benchmark protocol): word 4-gram shingles
with counts, precision/recall per page, averaged over pages; F1 from the mean precision and recall (the published
0.958 for trafilatura), with the mean of per-page F1 shown too. The harvester runs with and without its second extractor (readability
on pages where trafilatura finds fewer than 50 words). A page an extractor rejects scores zero recall.

    .venv/bin/python -m bench.extraction [--data ../shared/eval/extraction] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import trafilatura

from harvester.extract import ExtractionError, decode_html, extract_html

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "extraction"
RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)))


def score(truth: str, predicted: str) -> tuple[float, float]:
    """(precision, recall) of the predicted text's 4-gram shingles against the truth's."""
    t, p = shingles(truth), shingles(predicted)
    tp = sum((t & p).values())
    precision = tp / sum(p.values()) if predicted.strip() else 0.0
    recall = tp / sum(t.values()) if t else 0.0
    return precision, recall


def harvester_path(html: bytes, url: str, second: bool = True) -> str:
    """What the harvester stores for an HTML page: decode, then extract_html (trafilatura, readability where it fails)."""
    try:
        return extract_html(decode_html(html, "utf-8"), url, second=second).text
    except ExtractionError:
        return ""


def harvester_first_only(html: bytes, url: str) -> str:
    """The harvester's path without its second extractor: the figure before readability was added."""
    return harvester_path(html, url, second=False)


def trafilatura_alone(html: bytes, url: str) -> str:
    """The reference: trafilatura.extract with its defaults, as in the dataset's reference run."""
    return trafilatura.extract(html) or ""


EXTRACTORS: dict[str, Callable[[bytes, str], str]] = {
    "trafilatura alone": trafilatura_alone,
    "harvester, 1st only": harvester_first_only,
    "harvester": harvester_path,
}


def run(data: Path, limit: int | None) -> dict[str, dict[str, float]]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    ids = sorted(truth)[:limit]
    pages = [(i, gzip.decompress((data / "html" / f"{i}.html.gz").read_bytes()), truth[i]) for i in ids]
    out: dict[str, dict[str, float]] = {}
    for name, extractor in EXTRACTORS.items():
        ps, rs, f1s, t0 = [], [], [], time.perf_counter()
        for _, html, gt in pages:
            p, r = score(gt["articleBody"], extractor(html, gt.get("url", "")))
            ps.append(p)
            rs.append(r)
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        seconds = time.perf_counter() - t0
        mp, mr = sum(ps) / len(ps), sum(rs) / len(rs)
        out[name] = {"f1": 2 * mp * mr / (mp + mr), "precision": mp, "recall": mr, "mean_page_f1": sum(f1s) / len(f1s),
                     "empty": sum(1 for r in rs if r == 0), "pages_per_s": len(pages) / seconds, "pages": len(pages)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if not (args.data / "ground-truth.json").exists():
        print(f"no extraction data at {args.data}: skipped")
        sys.exit(0)
    results = run(args.data, args.limit)
    print(f"{'extractor':<20} {'F1':>6} {'P':>6} {'R':>6} {'pageF1':>7} {'empty':>6} {'pages/s':>8}")
    for name, r in results.items():
        print(f"{name:<20} {r['f1']:6.3f} {r['precision']:6.3f} {r['recall']:6.3f} {r['mean_page_f1']:7.3f} {r['empty']:6d} {r['pages_per_s']:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "extraction.json"
    path.write_text(json.dumps({"data": str(args.data), "results": results}, indent=2), encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()
