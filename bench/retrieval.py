"""SciFact through ssehub's real path (`ssehub import`, `ssehub index`, `Searcher.search`): nDCG@10, Recall@100, timings.

Usage: .venv/bin/python -m bench.retrieval [--queries train|test] [--limit-docs N] [--modes hybrid,keyword] [--reuse DIR]
                                           [--backend auto|onnx|onnx-int8|torch]

The built data folder is cached under ~/.cache/ssehub-bench/ (env SSEHUB_BENCH_CACHE) keyed by the indexing code, the model and the corpus subset,
so a change to the search code re-runs only the queries. `--reuse DIR` evaluates a copy of a data folder built earlier
(opening it migrates it: a keyword index change is rebuilt from the stored chunks, without re-embedding).
`--backend` runs the model with that embedding backend (SSEHUB_EMBED_BACKEND); with `--reuse`, the copy is first
re-embedded with it (`ssehub index --rebuild`'s pipeline, in process), so backends compare on the same chunks.
Results go to bench/results/ as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "eval" / "beir" / "scifact"
# Outside data/, which `make clean` and demo runs wipe: a SciFact build costs 15-35 minutes on this machine.
CACHE = Path(os.environ.get("SSEHUB_BENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssehub-bench")
RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "scifact"
MODES = ("hybrid", "semantic", "keyword")
# Code whose change changes what the index holds (search code is deliberately not in the key).
BUILD_CODE = ("indexer/chunk.py", "indexer/pipeline.py", "ssehub/embed.py", "ssehub/importer.py", "ssehub/models.py",
              "ssehub/analyze.py", "indexer/crosslingual.py", "ssehub/onnxembed.py")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: grade} from a BEIR qrels TSV (with header)."""
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            out.setdefault(q, {})[d] = int(s)
    return out


def ndcg_at(ranking: list[str], rel: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (BEIR/trec_eval's linear gain)."""
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def recall_at(ranking: list[str], rel: dict[str, int], k: int = 100) -> float:
    """Share of the relevant documents in the first k."""
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant & set(ranking[:k])) / len(relevant) if relevant else 0.0


def subset(corpus: list[dict[str, Any]], qrels: dict[str, dict[str, int]], limit: int | None) -> list[dict[str, Any]]:
    """The whole corpus, or the judged documents of these queries first, filled up to `limit` in corpus order."""
    if not limit or limit >= len(corpus):
        return corpus
    judged = {d for rel in qrels.values() for d in rel}
    first = [r for r in corpus if r["_id"] in judged][:limit]
    rest = [r for r in corpus if r["_id"] not in judged][: max(0, limit - len(first))]
    return first + rest


def build_key(model: str, docs: list[dict[str, Any]]) -> str:
    """Hash of the indexing code, the model, the embedding backend and the document ids."""
    h = hashlib.sha256((model + "|" + os.environ.get("SSEHUB_EMBED_BACKEND", "")).encode())
    for rel in BUILD_CODE:
        p = ROOT / rel
        h.update(p.read_bytes() if p.exists() else b"-")
    h.update("\n".join(r["_id"] for r in docs).encode())
    return h.hexdigest()[:12]


def build(docs: list[dict[str, Any]], model: str, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """Import and index the documents with the CLI in a cached data folder; returns (folder, build info)."""
    folder = CACHE / f"scifact-{len(docs)}-{build_key(model, docs)}"
    info_path = folder / "build.json"
    if info_path.exists() and not rebuild:
        return folder, json.loads(info_path.read_text()) | {"cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    jsonl = folder / "scifact.jsonl"
    with jsonl.open("w", encoding="utf-8") as f:
        for r in docs:
            line = {"id": r["_id"], "title": r["title"], "text": r["text"], "lang": "en", "type": "article"}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    env = os.environ | ({"SSEHUB_MODEL_PATH": model} if model else {})
    cmd = [sys.executable, "-m", "ssehub", "--data", str(folder)]
    info: dict[str, Any] = {"documents": len(docs), "model": model or "default"}
    for step, args in (("import", ["import", str(jsonl), "--source", SOURCE]), ("index", ["index"])):
        t0 = time.perf_counter()
        done = subprocess.run(cmd + args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"ssehub {step} failed: {done.stderr.strip()[-2000:]}")
        info[f"{step}_seconds"] = round(time.perf_counter() - t0, 1)
        info[f"{step}_output"] = done.stdout.strip()[-500:]
    info_path.write_text(json.dumps(info, indent=1))
    return folder, info | {"cached": False}


def reuse(built: Path, suffix: str = "") -> tuple[Path, dict[str, Any]]:
    """A fresh copy of a data folder built earlier, and its build info."""
    if not (built / "build.json").exists():
        sys.exit(f"no build.json in {built}: not a folder built by this benchmark")
    folder = CACHE / f"reuse-{built.name}{suffix}"  # a copy per backend: runs of different backends do not clobber each other
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(built, folder)
    # Re-run the keyword index migration on the copy, so it holds the current analysis (ssehub/analyze.py).
    with sqlite3.connect(folder / "ssehub.db") as conn:
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_analysed_keyword_index'")
    return folder, json.loads((built / "build.json").read_text()) | {"cached": True, "reused": str(built)}


def reembed(folder: Path, model: str) -> dict[str, Any]:
    """Re-embed every chunk of a data folder with the current backend (SSEHUB_EMBED_BACKEND), as `ssehub index --rebuild`."""
    from unittest import mock

    from indexer import pipeline
    from ssehub.settings import Settings

    settings = Settings(data_dir=folder, **({"model_path": model} if model else {}))
    t0 = time.perf_counter()
    # SciFact is English: the cross-language vectors leave its results unchanged (searchapi/crosslingual.py) and cost
    # ~10 minutes of e5 here, so this comparison of MiniLM backends skips them.
    with mock.patch.object(pipeline.crosslingual, "enabled", lambda settings: False):
        report = pipeline.index(settings, rebuild=True)
    return {"reembed_seconds": round(time.perf_counter() - t0, 1), "reembed": report}


def evaluate(folder: Path, model: str, queries: dict[str, str], qrels: dict[str, dict[str, int]],
             modes: list[str]) -> dict[str, Any]:
    """Every query through Searcher.search in each mode: metrics and latency per mode."""
    from searchapi.search import Searcher
    from ssehub.embed import load_embedder
    from ssehub.models import document_id
    from ssehub.settings import Settings
    from ssehub.store import Store

    settings = Settings(data_dir=folder, **({"model_path": model} if model else {}))
    searcher = Searcher(Store(settings.store_path, create=False), load_embedder(settings), settings.index_dir)
    to_beir = {document_id(SOURCE, d): d for rel in qrels.values() for d in rel}
    searcher.search("warm up", mode="hybrid", limit=10)
    out: dict[str, Any] = {}
    for mode in modes:
        ndcg, recall, took = [], [], []
        for qid, rel in qrels.items():
            t0 = time.perf_counter()
            res = searcher.search(queries[qid], mode=mode, limit=100)  # type: ignore[arg-type]
            took.append(time.perf_counter() - t0)
            ranking = [to_beir.get(h["id"], h["id"]) for h in res["results"]]
            ndcg.append(ndcg_at(ranking, rel))
            recall.append(recall_at(ranking, rel))
        took.sort()
        out[mode] = {
            "ndcg@10": round(statistics.fmean(ndcg), 4), "recall@100": round(statistics.fmean(recall), 4),
            "p50_ms": round(1000 * took[len(took) // 2], 1), "p95_ms": round(1000 * took[int(len(took) * 0.95)], 1),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, build (or reuse) the index, run the queries, print and save the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", choices=("train", "test"), default="test")
    ap.add_argument("--limit-docs", type=int, default=None, help="index only the judged documents plus others up to N")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    ap.add_argument("--model", default="", help="sentence-transformers folder (default: the packaged model)")
    ap.add_argument("--rebuild", action="store_true", help="ignore the cached data folder")
    ap.add_argument("--data", type=Path, default=SCIFACT, help="BEIR SciFact folder")
    ap.add_argument("--reuse", type=Path, default=None, help="a data folder built earlier (copied, never changed)")
    ap.add_argument("--backend", choices=("auto", "onnx", "onnx-int8", "torch"), default=None,
                    help="embedding backend (default: the setting's); with --reuse, re-embeds the copy with it")
    args = ap.parse_args(argv)
    if args.backend:
        os.environ["SSEHUB_EMBED_BACKEND"] = args.backend  # read by Settings here and in the `ssehub` subprocesses
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"no SciFact at {args.data} (see its README)")
    modes = [m for m in args.modes.split(",") if m]
    if bad := [m for m in modes if m not in MODES]:
        sys.exit(f"unknown mode(s) {bad}: use {', '.join(MODES)}")
    corpus = read_jsonl(args.data / "corpus.jsonl")
    queries = {r["_id"]: r["text"] for r in read_jsonl(args.data / "queries.jsonl")}
    qrels = read_qrels(args.data / "qrels" / f"{args.queries}.tsv")
    docs = subset(corpus, qrels, args.limit_docs)
    kept = {r["_id"] for r in docs}
    qrels = {q: {d: g for d, g in rel.items() if d in kept} for q, rel in qrels.items()}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    folder, info = reuse(args.reuse, f"-{args.backend}" if args.backend else "") if args.reuse else build(docs, args.model, args.rebuild)
    if args.reuse and args.backend:
        info |= reembed(folder, args.model)
        print(f"re-embedded with {args.backend}: {info['reembed']['embedded']} chunks in {info['reembed_seconds']} s")
    info["backend"] = os.environ.get("SSEHUB_EMBED_BACKEND", "default")
    print(f"index: {info['documents']} documents in {folder} "
          f"({'cached; ' if info['cached'] else ''}import {info['import_seconds']} s, index {info['index_seconds']} s)")
    figures = evaluate(folder, args.model, queries, qrels, modes)
    print(f"{args.queries} queries: {len(qrels)}")
    print(f"{'mode':<10}{'nDCG@10':>9}{'R@100':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for mode, f in figures.items():
        print(f"{mode:<10}{f['ndcg@10']:>9.4f}{f['recall@100']:>8.4f}{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"retrieval-{args.queries}-{len(docs)}{'-' + args.backend if args.backend else ''}-{stamp}.json"
    out.write_text(json.dumps({"queries": args.queries, "n_queries": len(qrels), "build": info, "modes": figures},
                              indent=1))
    print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
