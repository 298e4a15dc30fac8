"""Fusion and feedback sweep on SciFact train queries over a data folder built by bench.retrieval.

Usage: .venv/bin/python -m bench.retrieval_tune DATA_FOLDER [--queries train]
Ranks each query with the Searcher's own keyword and semantic rankings (once per feedback setting), then fuses in
memory with each candidate setting and prints nDCG@10 for each.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from bench.retrieval import SCIFACT, SOURCE, ndcg_at, read_jsonl, read_qrels
from searchapi.fusion import convex, minmax, rrf

Scores = dict[str, float]


def order(m: Scores) -> list[str]:
    """Ids by descending score."""
    return sorted(m, key=lambda d: (-m[d], d))


def main() -> None:
    """Rank, then sweep fusion settings and print nDCG@10 for each."""
    from searchapi.query import parse
    from searchapi.search import Searcher, dense_floor
    from ssehub.embed import load_embedder
    from ssehub.models import document_id
    from ssehub.settings import Settings
    from ssehub.store import Filters, Store

    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--queries", default="train")
    ap.add_argument("--model", default="")
    ap.add_argument("--weights", default="0.2,0.3,0.4,0.5,0.6,0.7", help="keyword weights to try")
    ap.add_argument("--prf", default="0x0,3x0.5,10x0.5", help="feedback settings to try, DOCSxWEIGHT")
    args = ap.parse_args()
    settings = Settings(data_dir=args.folder, **({"model_path": args.model} if args.model else {}))
    s = Searcher(Store(settings.store_path, create=False), load_embedder(settings), settings.index_dir)
    floor = dense_floor(s.embedder.name)
    queries = {r["_id"]: r["text"] for r in read_jsonl(SCIFACT / "queries.jsonl")}
    qrels = read_qrels(SCIFACT / "qrels" / f"{args.queries}.tsv")
    to_beir = {document_id(SOURCE, d["_id"]): d["_id"] for d in read_jsonl(SCIFACT / "corpus.jsonl")}
    parsed = {q: parse(queries[q]) for q in qrels}
    keyword = {}
    for q in qrels:
        kw = s._keyword(parsed[q], Filters())
        keyword[q] = {to_beir[d]: kw.scores[d] for d in kw.ids[:200]}

    def score(semantic: dict[str, Scores], fuse: Callable[[Scores, Scores], Scores]) -> float:
        return statistics.fmean(ndcg_at(order(fuse(keyword[q], semantic[q])), rel) for q, rel in qrels.items())

    print(f"{len(qrels)} queries; keyword {score(keyword, lambda k, _: k):.4f}")
    for prf_docs, prf_weight in ((int(a), float(b)) for a, b in (x.split("x") for x in args.prf.split(","))):
        s.prf_docs, s.prf_weight = prf_docs, prf_weight
        semantic = {}
        for q in qrels:
            se = s._semantic(parsed[q].text, Filters())
            semantic[q] = {to_beir[d]: se.scores[d] for d in se.ids[:200]}
        tag = f"prf {prf_docs}x{prf_weight}"
        print(f"{tag}: semantic {score(semantic, lambda _, b: b):.4f}")
        for k in (20, 60):
            print(f"{tag}: rrf k={k}: {score(semantic, lambda a, b, k=k: rrf([order(a), order(b)], k)):.4f}")
        for w in (float(x) for x in args.weights.split(",")):
            floor_fused = score(semantic, lambda a, b, w=w: convex(a, minmax(b, low=floor), w))
            minmax_fused = score(semantic, lambda a, b, w=w: convex(minmax(a), minmax(b), w))
            print(f"{tag}: convex w={w}: floor-norm {floor_fused:.4f}  minmax {minmax_fused:.4f}")


if __name__ == "__main__":
    main()
