"""The Searcher: keyword (FTS5 bm25), semantic (FAISS) and hybrid (RRF) search over documents, used by the API and the CLI.

What a search returns (its result set; `total` counts it, the facets count it, the cursor pages through it):

- keyword: the documents owning one of the best `POOL` chunks that match any query term (quoted terms OR-ed);
  a document scores its best chunk's bm25 (title weighted 2x), shown divided by the best score of the set.
- semantic: the documents owning one of the `POOL` chunks nearest to the query embedding whose cosine
  similarity reaches the model's floor (`dense_floor`, 0.25 for MiniLM); a document scores its best chunk's cosine.
- hybrid: the union of both sets, ranked by a convex combination of the two normalised scores:
  `KEYWORD_WEIGHT` * keyword score (best = 1) + the rest * semantic score rescaled from the model's floor (0) to the
  set's best cosine (1); a document missing from one set scores 0 there. It beat reciprocal rank fusion on SciFact
  train (see bench/retrieval_tune.py). Without a built index, hybrid is keyword search. A third signal, each document's
  multilingual-e5-small vector (searchapi/crosslingual.py), adds the documents nearest the query in any language.

Query operators (searchapi/query.py): a quoted phrase and a `title:` item must occur in a document, a `-term` must
not, `author:name` keeps documents with a matching author; a query of `author:` items alone lists their documents
newest first. A keyword term the index has never seen is replaced by its closest indexed term (searchapi/typo.py).
`sort="date"` orders the same result set newest first. A page and its own attachment (its PDF) take one result slot:
the better ranked stays and lists the other among its `locations`, with the document's other URLs.

Filters (and the hidden/withdrawn exclusion) apply to the candidates. When fewer than `MIN_DOCUMENTS`
documents are left and more chunks matched, the pool grows 4x (up to `MAX_POOL`); the pool depends only on
the query, filters and data, never on the page, so every page sees the same set. Without a query, the set is
every document passing the filters, newest first, with `score` null.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from searchapi import cursor as cursors
from searchapi.cache import Lru
from searchapi.catalog import Catalog, LiveCatalog, distinct
from searchapi.constraint import Constraint, constraint_of
from searchapi.crosslingual import CrossLingual
from searchapi.fusion import best_per_document, convex, minmax, ranked
from searchapi.keyword import LiveKeyword
from searchapi.live import LiveIndex
from searchapi.query import ParsedQuery, parse
from searchapi.snippet import Marker, snippet
from searchapi.typo import corrections
from ssehub.embed import Embedder
from ssehub.errors import IndexNotBuilt
from ssehub.store import Filters, Store

log = logging.getLogger(__name__)
Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "semantic", "keyword")
Sort = Literal["relevance", "date"]
SORTS: tuple[str, ...] = ("relevance", "date")
KEYWORD_WEIGHT = 0.5  # hybrid = this * keyword + the rest * semantic, normalised: SciFact train 0.7420 (RRF 0.7229)
PRF_DOCS = 0  # dense pseudo-relevance feedback: the query vector moves towards its first chunks (0: off)
PRF_WEIGHT = 0.5
POOL = 1000  # chunks fetched per ranking before filters
MAX_POOL = 16000
MIN_DOCUMENTS = 200  # widen the pool until this many documents survive the filters (or nothing more matches)
# Cosine similarity below which a chunk is not a semantic match: measured for MiniLM on SSE texts, where
# unrelated passages sit at 0.0-0.2. The hashing test embedder gives much lower cosines for related texts.
# multilingual-e5-small squeezes every text into high cosines: off-topic queries still reach ~0.80 on the demo corpus.
DENSE_FLOORS = {"all-MiniLM-L6-v2": 0.25, "multilingual-e5-small": 0.80}
DEFAULT_DENSE_FLOOR = 0.25
HASHING_DENSE_FLOOR = 0.05
HIT_FIELDS = ("id", "title", "url", "source", "lang", "published", "type", "authors", "sdgs")
HELPERS = 4  # threads running the keyword half of hybrid searches beside their semantic half (shared by all searchers)
_helpers = ThreadPoolExecutor(max_workers=HELPERS, thread_name_prefix="ssehub-hybrid")
# Searches running at once in a process (the others wait their turn, using no CPU): the cores plus one. With 32
# clients a 1M server's threads contended (one worker reached ~1.45 of 2 cores). Unique hybrid searches at 1M, one
# worker, 32 wrk clients, alternating runs (load 0.5-3.3): no cap 87.2 / 73.2 req/s (16.5 / 19.8 ms of server CPU a
# request), 3 at once 95.1 / 101.3 (15.8 / 14.6 ms), 6 at once 62.9 / 93.1. Answers are unchanged: only their order in
# time is.
SEARCHES_AT_ONCE = (os.cpu_count() or 2) + 1
_running = threading.BoundedSemaphore(SEARCHES_AT_ONCE)
_helper_slots = threading.BoundedSemaphore(HELPERS)
T = TypeVar("T")


# Query embeddings (1.5 kB), typo corrections and keyword pools (16 kB per 1000 chunks) kept: a query's next pages,
# facet clicks and exports repeat it. Worst case ~70 MB with every entry a 1000-chunk pool.
QUERY_CACHE = 4096
WORD_TYPOS = 6  # a query's terms whose typos are also undone on the word (searchapi/typo.py), the rest by stem alone
TYPO_CACHE = 16384  # query terms whose corrections are kept (a few hundred bytes each)
NOT_INDEXED = ("documents are stored but none is indexed yet, so no query can find them: run `ssehub index` "
               "(browsing without a query lists them meanwhile)")
SAVED_DIR = "saved"  # under the index folder: arrays built from the store, loaded by the next process (searchapi/saved.py)


def dense_floor(model: str) -> float:
    """The minimum chunk cosine that counts as a semantic match for a model."""
    if model.startswith("hashing"):
        return HASHING_DENSE_FLOOR
    return DENSE_FLOORS.get(model, DEFAULT_DENSE_FLOOR)


Hits = tuple[np.ndarray, np.ndarray]  # chunk ids (int64) and their scores (float64), best first
_SPLITTER = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two halves of 26 bits


def round4(values: np.ndarray) -> np.ndarray:
    """`round(v, 4)` of each value, exactly as Python rounds (to the double nearest the correctly rounded decimal).

    numpy's round (multiply, rint, divide) gives the same double except when the product `v * 1e4` rounds onto a
    half-integer that the exact product is not: Python then rounds by the side of the half the exact product lies on.
    Dekker's product gives that product's rounding error exactly (1e4 has 14 significant bits), so those few are fixed
    in the arrays (a hybrid ranking has ~150 of 1,000: each document in one half only scores half a 4-decimal score;
    Python's round on each cost ~0.15 ms a ranking). Checked against Python on 11M values (tests/test_search_arrays.py).
    For finite scores, not for magnitudes near 1e300 (the split overflows).
    """
    scaled = values * 1e4
    out = np.round(values, 4)
    high = values * _SPLITTER
    high = high - (high - values)
    error = (high * 1e4 - scaled) + (values - high) * 1e4  # values * 1e4 == scaled + error, exactly
    floor = np.floor(scaled)
    off = (scaled - floor == 0.5) & (error != 0)
    if off.any():
        out[off] = (floor[off] + (error[off] > 0)) / 1e4
    return out


@dataclass
class Ranking:
    """Documents in result order, their scores and the chunk that makes each one's snippet."""

    ids: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    chunks: dict[str, int] = field(default_factory=dict)


@dataclass
class Ranked:
    """A `Ranking` over one catalog's document numbers, as arrays in result order: the scores shown (None: no score,
    e.g. an author: list) and the chunk of each one's snippet (-1: the document's opening)."""

    numbers: np.ndarray
    scores: np.ndarray | None
    chunks: np.ndarray

    def take(self, positions: np.ndarray) -> Ranked:
        """The documents at these positions, in that order."""
        return Ranked(self.numbers[positions], None if self.scores is None else self.scores[positions], self.chunks[positions])


def _by_score(catalog: Catalog, numbers: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The order of documents by descending score, ties by id (fusion.ranked's order)."""
    return np.lexsort((catalog.id_rank[numbers], -scores))


class Searcher:
    """Search over the store and the vector index; safe to share between threads."""

    def __init__(self, store: Store, embedder: Embedder | Callable[[], Embedder] | None, index_dir: Path) -> None:
        """`embedder` may be a zero-argument factory, called once on the first semantic search."""
        self.store = store
        self.live = LiveIndex(index_dir)
        self.crosslingual = CrossLingual(index_dir)  # the third hybrid signal (searchapi/crosslingual.py)
        self.catalog = LiveCatalog(store)
        # in-memory bm25 (searchapi/keyword.py), FTS5 until built; large ones saved beside the index for the next start
        self.keyword = LiveKeyword(store, index_dir / SAVED_DIR)
        self._cache = Lru(QUERY_CACHE)  # query embeddings, keyword pools
        self._typos = Lru(TYPO_CACHE)  # (data version, term, by word) -> {term: corrections} or {}
        self._embedder = embedder if embedder is None or hasattr(embedder, "encode") else None
        self._factory = None if self._embedder is not None else embedder
        self._lock = threading.Lock()
        self.keyword_weight = KEYWORD_WEIGHT  # instance attributes, so bench/retrieval_tune.py can sweep them
        self.prf_docs = PRF_DOCS
        self.prf_weight = PRF_WEIGHT

    @property
    def embedder(self) -> Embedder:
        """The query embedder, loaded on first use."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    if self._factory is None:
                        raise IndexNotBuilt("semantic search is not available: no embedding model configured")
                    self._embedder = self._factory()  # type: ignore[operator]
        return self._embedder  # type: ignore[return-value]

    def index_manifest(self) -> dict | None:
        """Manifest of the index being served, or None."""
        return self.live.manifest()

    # -- public API -------------------------------------------------------------------------------

    def search(
        self, q: str | None, filters: Filters | None = None, mode: Mode = "hybrid", limit: int = 10, cursor: str | None = None,
        sort: Sort = "relevance",
    ) -> dict[str, Any]:
        """The CONTRACT's search response; ValueError on a bad mode, sort, limit or cursor, IndexNotBuilt for semantic without index.

        `sort="date"` orders the same result set newest first (undated last); browsing is always newest first. The
        store's data version is read once for the whole search (Store.pinned_version).
        """
        with _running, self.store.pinned_version():
            try:
                return self._search(q, filters, mode, limit, cursor, sort)
            except IndexNotBuilt:
                if mode != "keyword" and not self.store.index_state()[0]:
                    # No document at all: nothing to index and nothing to find, the answer of every mode (an empty
                    # library is not an error; `ssehub index` would not change it).
                    return self._search(q, filters, "keyword", limit, None, sort)
                raise

    def _never_indexed(self) -> bool:
        """True when documents are stored but nothing was ever indexed: every query would find nothing (keyword and
        hybrid), or fail (semantic), for one reason, which is named. Free when the catalog is loaded."""
        catalog = self.catalog.get()
        if catalog is not None and catalog.chunks:
            return False
        stored, indexed = self.store.index_state()
        return stored and not indexed

    def _search(
        self, q: str | None, filters: Filters | None, mode: Mode, limit: int, cursor: str | None, sort: Sort,
    ) -> dict[str, Any]:
        filters = filters or Filters()
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        query = (q or "").strip()
        key = cursors.fingerprint(query, filters, (mode + ("" if sort == "relevance" else ":" + sort)) if query else "browse")
        offset = cursors.decode(cursor, key) if cursor else 0
        if query and self._never_indexed():
            raise IndexNotBuilt(NOT_INDEXED)
        catalog = self.catalog.get()
        if not query:
            if catalog is not None:
                ids, total, numbers = catalog.browse(filters, offset, limit)
            else:
                ids, total = self.store.browse(filters, offset, limit)
            heads = self.store.text_heads(ids)
            results = self._hits(ids, {}, lambda d: heads.get(d, ""), ())
            facets = catalog.facets(numbers) if catalog is not None else self.store.facets(filters=filters)
        elif catalog is not None:
            # The catalog's path: rankings as arrays of document numbers, ids and hit fields for the page alone.
            parsed = self._corrected(parse(query), mode)
            ranked = self._rank_numbers(parsed, filters, mode, catalog)
            kept = catalog.fold(ranked.numbers)
            if kept is None:  # the catalog did not read the links: fold by the store's
                ids = [catalog.ids[n] for n in ranked.numbers.tolist()]
                folded = set(self._fold_attachments(ids))
                kept = np.array([i for i, d in enumerate(ids) if d in folded], dtype=np.int64)
            ranked = ranked.take(kept)
            if sort == "date":
                ranked = ranked.take(catalog.newest_first(ranked.numbers))
            total = len(ranked.numbers)
            page = ranked.take(np.arange(offset, min(offset + limit, total)))
            page_ids = [catalog.ids[n] for n in page.numbers.tolist()]
            chunk_of = {d: c for d, c in zip(page_ids, page.chunks.tolist(), strict=True) if c >= 0}
            texts = {c: r["text"] for c, r in self.store.chunk_rows(list(chunk_of.values())).items()}
            heads = self.store.text_heads([d for d in page_ids if d not in chunk_of])
            scores = {} if page.scores is None else dict(zip(page_ids, page.scores.tolist(), strict=True))
            results = self._hits(
                page_ids, scores, lambda d: texts.get(chunk_of[d], "") if d in chunk_of else heads.get(d, ""),
                parsed.highlight_forms(),
            )
            facets = catalog.facets(distinct(ranked.numbers))
        else:
            parsed = self._corrected(parse(query), mode)
            ranking = self._rank(parsed, filters, mode)
            ranking.ids = self._fold_attachments(ranking.ids)
            if sort == "date":
                ranking.ids = self._newest_first(ranking.ids)
            total = len(ranking.ids)
            page = ranking.ids[offset : offset + limit]
            texts = {c: r["text"] for c, r in self.store.chunk_rows([ranking.chunks[d] for d in page if d in ranking.chunks]).items()}
            heads = self.store.text_heads([d for d in page if d not in ranking.chunks])  # e.g. author: lists
            results = self._hits(
                page, ranking.scores, lambda d: texts.get(ranking.chunks[d], "") if d in ranking.chunks else heads.get(d, ""),
                parsed.highlight_forms(),
            )
            facets = catalog.facets(catalog.numbers(ranking.ids)) if catalog is not None else self.store.facets(ids=ranking.ids)
        next_offset = offset + limit
        return {
            "query": query,
            "total": total,
            "next_cursor": cursors.encode(next_offset, key) if next_offset < total else None,
            "results": results,
            "facets": facets,
        }

    def similar(self, doc_id: str, limit: int = 10) -> dict[str, Any]:
        """Documents whose chunks are nearest the document's mean chunk embedding (itself excluded)."""
        self.store.document(doc_id)  # NotFound for an unknown id
        if not self._filter_ids(Filters(), [doc_id]):
            return {"results": []}  # hidden or withdrawn: nothing to be similar to in public
        blobs = self.store.document_embeddings(doc_id)
        if not blobs:
            return {"results": []}  # not indexed yet
        mean = np.vstack([np.frombuffer(b, dtype=np.float32) for b in blobs]).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0:
            return {"results": []}
        fetch = self._dense_fetch(mean / norm)
        best = self._candidates(fetch, Filters(), floor=None, min_documents=limit + 1, pool=max(100, 20 * limit))
        best.pop(doc_id, None)
        ids = ranked(best)[:limit]
        texts = {c: r["text"] for c, r in self.store.chunk_rows([best[d][1] for d in ids]).items()}
        scores = {d: round(max(0.0, min(1.0, best[d][0])), 4) for d in ids}
        return {"results": self._hits(ids, scores, lambda d: texts.get(best[d][1], ""), ())}

    # -- ranking ----------------------------------------------------------------------------------

    def _corrected(self, parsed: ParsedQuery, mode: Mode) -> ParsedQuery:
        """The query with each keyword term the index has never seen replaced by its corrections (searchapi/typo.py)."""
        if mode == "semantic" or parsed.empty:
            return parsed
        version = self.store.data_version()  # the vocabulary changes only with a commit
        fixed: dict[str, tuple[str, ...]] = {}
        for i, term in enumerate(parsed.terms):
            # Kept per term: a term's correction does not depend on the query's other terms, and words recur across
            # queries that do not (an unknown word's neighbour search was most of the typo stage's 0.2-0.3 ms a search).
            # Words one edit away are tried for the first WORD_TYPOS terms only: a query of 32 unknown words would
            # otherwise cost ~0.3 s of CPU.
            by_word = i < WORD_TYPOS
            fixed |= self._typos.get((version, term, by_word), lambda t=term, w=by_word: corrections(
                (t,), self.store, self.keyword.get(), by_word=w))
        if not fixed:
            return parsed
        return parsed.with_terms(tuple(dict.fromkeys(f for t in parsed.terms for f in fixed.get(t, (t,)))))

    def _rank(self, parsed: ParsedQuery, filters: Filters, mode: Mode, constraint: Constraint | None = None) -> Ranking:
        constraint = constraint if constraint is not None else constraint_of(parsed, self.store)
        if parsed.empty:
            # Nothing to rank by: an author: query lists the author's documents, newest first; `-x` alone browses,
            # less the documents with x (what "everything without x" means; it found nothing before).
            if constraint.allowed is None:
                browsed = sorted(d for d in self._filter_ids(filters, None) if constraint.admits(d))
                return Ranking(self._newest_first(browsed))  # browse order: newest first, then by id
            allowed = self._filter_ids(filters, [d for d in constraint.allowed if constraint.admits(d)])
            # sorted: a set's order follows the process's string hash seed, so documents of one date came in another
            # order from each `serve --workers N` process, and a cursor's next page from another one repeated or
            # skipped some; ties now go by id, as in browsing
            return Ranking(self._newest_first(sorted(allowed)))
        if mode == "keyword":
            return self._keyword(parsed, filters, constraint)
        if mode == "semantic":
            return self._semantic(parsed.text, filters, constraint)
        semantic_half = self._beside(self._semantic, parsed.text, filters, constraint)
        keyword = self._keyword(parsed, filters, constraint)
        try:
            semantic = semantic_half.result() if semantic_half is not None else self._semantic(parsed.text, filters, constraint)
        except IndexNotBuilt as exc:
            log.debug("hybrid search falls back to keyword: %s", exc)
            return keyword
        fused = convex(keyword.scores, minmax(semantic.scores, low=dense_floor(self.embedder.name)), self.keyword_weight)
        fused = self.crosslingual.fuse(
            fused, parsed.text, lambda ids: {d for d in self._filter_ids(filters, ids) if constraint.admits(d)}
        )
        ids = sorted(fused, key=lambda d: (-fused[d], d))
        # The keyword chunk contains the query terms, so it makes the better snippet.
        chunks = semantic.chunks | keyword.chunks
        return Ranking(ids, {d: round(fused[d], 4) for d in ids}, chunks)

    def _beside(self, half: Callable[..., T], *args: Any) -> Future[T] | None:
        """One half of a hybrid search started in a helper thread, to run while this one computes the other (both
        release the GIL in the model, FAISS and numpy), or None when every helper is busy: run it here, after the other
        half. The helper answers with this search's data version (Store.pinned_version).

        Running it here whenever other searches are in flight was tried (no hand-off under load): 100k, 32 clients,
        101.2/104.5 unique hybrid req/s against 107.3/111.7 with helpers, the same CPU a request (load 5-6.5)."""
        if not _helper_slots.acquire(blocking=False):
            return None
        version = self.store.data_version()  # this search's pinned number, for the helper thread too

        def pinned() -> T:
            with self.store.pinned_version(version):
                return half(*args)

        future = _helpers.submit(pinned)
        future.add_done_callback(lambda _: _helper_slots.release())
        return future

    def _rank_numbers(self, parsed: ParsedQuery, filters: Filters, mode: Mode, catalog: Catalog) -> Ranked:
        """`_rank` over the catalog's arrays: the same documents, order and scores (tests compare the two)."""
        constraint = constraint_of(parsed, self.store)
        if parsed.empty:
            if constraint.allowed is None:  # `-x` alone: browsing, less the documents with x
                keep = catalog.mask(filters)
                keep[catalog.numbers(constraint.excluded)] = False
                numbers = catalog.order[keep[catalog.order]]
            else:
                ranking = self._rank(parsed, filters, mode, constraint)
                numbers = np.fromiter((n for d in ranking.ids if (n := catalog.number.get(d)) is not None), np.int64)
            return Ranked(numbers, None, np.full(len(numbers), -1, dtype=np.int64))
        if mode == "keyword":
            return self._keyword_numbers(parsed, filters, constraint, catalog)
        if mode == "semantic":
            return self._semantic_numbers(parsed.text, filters, constraint, catalog)
        # The keyword half goes to a helper and the longer semantic half (query embedding, HNSW) runs here, so this
        # thread seldom waits: a helper ending a half that was waited for woke this thread while holding Python's lock.
        keyword_half = self._beside(self._keyword_numbers, parsed, filters, constraint, catalog)
        try:
            semantic = self._semantic_numbers(parsed.text, filters, constraint, catalog)
        except IndexNotBuilt as exc:
            log.debug("hybrid search falls back to keyword: %s", exc)
            semantic = None
        keyword = (keyword_half.result() if keyword_half is not None
                   else self._keyword_numbers(parsed, filters, constraint, catalog))
        if semantic is None:
            return keyword
        # fusion.convex of the keyword scores and fusion.minmax of the semantic ones, over the union of both sets
        assert keyword.scores is not None and semantic.scores is not None  # rankings by a score always have scores
        low = dense_floor(self.embedder.name)
        normalised = semantic.scores
        if len(normalised):
            span = float(normalised.max()) - low
            normalised = (np.maximum(normalised, low) - low) / span if span > 0 else np.ones(len(normalised))
        numbers = distinct(np.concatenate([keyword.numbers, semantic.numbers]))
        at_keyword, at_semantic = np.searchsorted(numbers, keyword.numbers), np.searchsorted(numbers, semantic.numbers)
        kw, sem = np.zeros(len(numbers)), np.zeros(len(numbers))
        kw[at_keyword], sem[at_semantic] = keyword.scores, normalised
        w = self.keyword_weight
        fused = w * kw + (1.0 - w) * sem
        chunks = np.full(len(numbers), -1, dtype=np.int64)
        chunks[at_semantic] = semantic.chunks
        chunks[at_keyword] = keyword.chunks  # the keyword chunk contains the query terms: the better snippet
        ids = catalog.ids
        numbers, fused = self.crosslingual.fuse_arrays(
            numbers, fused, parsed.text, lambda found: {d for d in catalog.filter_ids(filters, found) if constraint.admits(d)},
            ids, catalog.number, catalog.mask(filters) if filters.restricts() else None,
        )
        chunks = np.concatenate([chunks, np.full(len(numbers) - len(chunks), -1, dtype=np.int64)])
        order = _by_score(catalog, numbers, fused)
        return Ranked(numbers[order], round4(fused[order]), chunks[order])

    def _keyword_numbers(self, parsed: ParsedQuery, filters: Filters, constraint: Constraint, catalog: Catalog) -> Ranked:
        numbers, scores, chunks = self._best(self._keyword_fetch(parsed.match()), filters, None, catalog, constraint)
        order = _by_score(catalog, numbers, scores)
        top = float(scores[order[0]]) if len(order) and scores[order[0]] > 0 else 1.0
        return Ranked(numbers[order], round4(np.maximum(0.0, scores[order] / top)), chunks[order])

    def _semantic_numbers(self, text: str, filters: Filters, constraint: Constraint, catalog: Catalog) -> Ranked:
        fetch = self._dense_fetch(None, text)
        if self.prf_docs > 0:
            fetch = self._feedback(fetch)
        numbers, scores, chunks = self._best(fetch, filters, dense_floor(self.embedder.name), catalog, constraint)
        order = _by_score(catalog, numbers, scores)
        return Ranked(numbers[order], round4(np.minimum(1.0, scores[order])), chunks[order])

    def _best(
        self, fetch: Callable[[int], Hits], filters: Filters, floor: float | None, catalog: Catalog, constraint: Constraint,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_candidates` as arrays over the catalog: document numbers, best chunk scores, those chunks."""
        pool = POOL
        ids = catalog.ids
        while True:
            chunks, scores = fetch(pool)
            saturated = len(chunks) >= pool
            if floor is not None:
                kept = scores >= floor
                if not kept.all():
                    saturated = False
                    chunks, scores = chunks[kept], scores[kept]
            numbers, best, owned = catalog.best_arrays(chunks, scores, filters)
            if constraint.allowed is not None or constraint.excluded:
                kept = np.fromiter((constraint.admits(ids[n]) for n in numbers.tolist()), bool, len(numbers))
                numbers, best, owned = numbers[kept], best[kept], owned[kept]
            if len(numbers) >= MIN_DOCUMENTS or not saturated or pool >= MAX_POOL:
                return numbers, best, owned
            pool *= 4

    def _newest_first(self, ids: list[str]) -> list[str]:
        """The ids by publication date, newest first, undated last, ties in their given order."""
        catalog = self.catalog.get()
        if catalog is not None:
            dates = {d: catalog.published[catalog.number[d]] for d in ids if d in catalog.number}
        else:
            dates = self.store.published_dates(ids)
        order = {d: i for i, d in enumerate(ids)}
        dated = sorted((d for d in ids if dates.get(d)), key=lambda d: (dates[d], -order[d]), reverse=True)
        return dated + [d for d in ids if not dates.get(d)]

    def _keyword(self, parsed: ParsedQuery, filters: Filters, constraint: Constraint | None = None) -> Ranking:
        if parsed.empty:
            return Ranking()
        match = parsed.match()
        best = self._candidates(self._keyword_fetch(match), filters, floor=None, constraint=constraint)
        ids = ranked(best)
        top = best[ids[0]][0] if ids and best[ids[0]][0] > 0 else 1.0
        return Ranking(ids, {d: round(max(0.0, best[d][0] / top), 4) for d in ids}, {d: best[d][1] for d in ids})

    def _semantic(self, text: str, filters: Filters, constraint: Constraint | None = None) -> Ranking:
        fetch = self._dense_fetch(None, text)
        if self.prf_docs > 0:
            fetch = self._feedback(fetch)
        best = self._candidates(fetch, filters, floor=dense_floor(self.embedder.name), constraint=constraint)
        ids = ranked(best)
        return Ranking(ids, {d: round(min(1.0, best[d][0]), 4) for d in ids}, {d: best[d][1] for d in ids})

    def _feedback(self, fetch: Callable[[int], Hits]) -> Callable[[int], Hits]:
        """Rocchio feedback: the query vector plus `prf_weight` times the mean of its `prf_docs` nearest chunks."""
        first = fetch(self.prf_docs)
        blobs = self.store.chunk_embeddings(first[0].tolist())
        if not blobs:
            return fetch
        mean = np.vstack([np.frombuffer(b, dtype=np.float32) for b in blobs.values()]).mean(axis=0)
        vector = fetch.vector + self.prf_weight * mean  # type: ignore[attr-defined]
        return self._dense_fetch(vector / float(np.linalg.norm(vector)))

    def _dense_fetch(self, vector: np.ndarray | None, text: str = "") -> Callable[[int], Hits]:
        """A function k -> the k nearest chunks, for a vector or a query text (IndexNotBuilt when unusable)."""
        index, manifest = self.live.get()
        if vector is None:
            embedder = self.embedder
            if manifest.get("model") != embedder.name or manifest.get("dim") != embedder.dim:
                raise IndexNotBuilt(
                    f"the index was built with {manifest.get('model')} but search embeds with {embedder.name}: "
                    "run `ssehub index --rebuild`"
                )
            vector = self._query_vector(embedder, text)
        elif manifest.get("dim") != vector.shape[0]:
            raise IndexNotBuilt("the index and the stored embeddings differ in dimension: run `ssehub index --rebuild`")
        query = np.ascontiguousarray(vector[None, :], dtype=np.float32)

        def fetch(k: int) -> Hits:
            scores, ids = index.search(query, k)
            found = ids[0] >= 0
            return ids[0][found].astype(np.int64), scores[0][found].astype(np.float64)

        fetch.vector = query[0]  # type: ignore[attr-defined]
        return fetch

    def _candidates(
        self, fetch: Callable[[int], Hits], filters: Filters, floor: float | None, min_documents: int = MIN_DOCUMENTS,
        pool: int | None = None, constraint: Constraint | None = None,
    ) -> dict[str, tuple[float, int]]:
        """Document -> (best chunk score, chunk) among the best chunks, after filters; widens the pool as documented."""
        pool = pool or POOL
        while True:
            found = fetch(pool)
            hits = list(zip(found[0].tolist(), found[1].tolist(), strict=True))
            saturated = len(hits) >= pool
            if floor is not None:
                kept = [h for h in hits if h[1] >= floor]
                saturated = saturated and len(kept) == len(hits)
                hits = kept
            catalog = self.catalog.get()
            if catalog is not None:
                best = catalog.best(hits, filters)
            else:
                best = best_per_document(hits, self.store.chunk_documents([c for c, _ in hits]))
                allowed = self.store.filter_ids(filters, list(best))
                best = {d: v for d, v in best.items() if d in allowed}
            if constraint is not None:
                best = {d: v for d, v in best.items() if constraint.admits(d)}
            if len(best) >= min_documents or not saturated or pool >= MAX_POOL:
                return best
            pool *= 4

    def _keyword_fetch(self, match: str) -> Callable[[int], Hits]:
        """A function k -> the k best keyword chunks; the pool does not depend on filters or page, so the next page,
        a facet click or an export reuses it (FTS5 scores every matching chunk: most of a keyword search's time)."""
        version = self.store.data_version()

        def fetch(k: int) -> Hits:
            def run() -> Hits:
                ids, scores = self.keyword.chunk_arrays(match, k)  # arrays: a fraction of the memory of tuples
                ids.setflags(write=False)  # shared by every request for this query
                scores.setflags(write=False)
                return ids, scores

            # only the usual pool size is kept: a widened pool (up to MAX_POOL) would hold ~16x the memory
            return self._cache.get(("keyword", version, match, k), run) if k <= POOL else run()

        return fetch

    def _filter_ids(self, filters: Filters, ids: list[str] | None) -> set[str]:
        """The ids of searchable documents passing the filters, among `ids` (None: among all)."""
        catalog = self.catalog.get()
        if catalog is not None and ids is None:
            ids = catalog.ids
        return catalog.filter_ids(filters, ids) if catalog is not None else self.store.filter_ids(filters, ids)

    def _query_vector(self, embedder: Embedder, text: str) -> np.ndarray:
        """The query's embedding, from a small LRU cache (encoding is most of a semantic search's CPU)."""

        def encode() -> np.ndarray:
            vector = embedder.encode([text], kind="query")[0]
            vector.setflags(write=False)  # shared by every request for this query
            return vector

        return self._cache.get(("vector", embedder.name, text), encode)

    # -- output -----------------------------------------------------------------------------------

    def _fold_attachments(self, ids: list[str]) -> list[str]:
        """The ranking with a page and its own attachment (its PDF) in one slot: the better ranked of the two stays,
        the other is listed among its locations (see `_hits`)."""
        catalog = self.catalog.get()
        parents = catalog.attachment_parents(ids) if catalog is not None else None
        if parents is None:
            parents = self.store.attachment_parents(ids)
        if not parents:
            return ids
        children: dict[str, set[str]] = {}
        for child, parent in parents.items():
            children.setdefault(parent, set()).add(child)
        seen: set[str] = set()
        out: list[str] = []
        for doc_id in ids:
            if parents.get(doc_id) in seen or not seen.isdisjoint(children.get(doc_id, ())):
                continue
            seen.add(doc_id)
            out.append(doc_id)
        return out

    def _hits(
        self, ids: list[str], scores: dict[str, float], text_of: Callable[[str], str], marks: Collection[str]
    ) -> list[dict[str, Any]]:
        """Search hits in the CONTRACT's shape, in the given order (documents gone meanwhile are skipped).

        Each hit lists `locations`, the other places its content is found (Store.other_locations): the document's other
        URLs, where near-duplicates were folded into it, and its page or attachments, one of which a search folds into it.
        """
        brief = self.store.documents_brief(ids)
        catalog = self.catalog.get()
        found = [d for d in ids if d in brief]
        locations = self.store.other_locations(catalog.maybe_linked(found) if catalog is not None else found)
        out: list[dict[str, Any]] = []
        marker = Marker(marks)  # one for the page: its passages share most words, each is looked up once
        for doc_id in ids:
            row = brief.get(doc_id)
            if row is None:
                continue
            hit = {name: row[name] for name in HIT_FIELDS}
            hit["snippet"] = snippet(text_of(doc_id), marker)
            hit["score"] = scores.get(doc_id)
            hit["locations"] = locations.get(doc_id, [])
            out.append(hit)
        return out
