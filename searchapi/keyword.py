"""An in-memory bm25 over the keyword index: FTS5's scores for OR-ed single-word queries without scanning every match.

FTS5 computes bm25() for every row matching any query word before it can sort (144 ms of a 210 ms hybrid search at
100k passages). Here each (word, chunk) contribution is computed once, exactly as SQLite's fts5_aux.c does it with
column weights title 2.0 and text 1.0 (frequency = sum of weight x hits per column, document length = tokens of the
row over all columns, avgdl over all rows, k1 = 1.2, b = 0.75, idf = log((N - n + 0.5) / (n + 0.5)) clamped to 1e-6),
and stored as a term -> chunks sparse matrix (CSR by term, plain numpy); a query sums its words' rows and keeps the
best with argpartition. Ties: FTS5's order among equal scores is unspecified; here it is score desc, chunk id asc,
and at the pool's boundary the lowest chunk ids of the tied score are kept.

Only the shape `ParsedQuery.match()` produces with plain forms ("a" OR "b" ...) is answered here; anything else
(phrases, operators, words FTS5 would split or fold) goes to FTS5, as does any search while no engine of the store's
current data version exists (built like the catalog: in the request when small, in a background thread when large).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Collection, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from searchapi import saved
from searchapi.catalog import distinct
from searchapi.typo import SortedTerms
from searchapi.versioned import Versioned
from ssehub.analyze import LANGUAGES, TAG
from ssehub.store import Store

log = logging.getLogger(__name__)
SYNC_REBUILD_MAX = 2_000  # chunks rebuilt in the request; 10k took 1.3 s, too long to add to the first search after a write
# Engines of at least this many chunks are saved beside the index and loaded from there (numpy mmap) at the next start:
# building one reads and counts every row (11 s at 100k passages, ~2 min at 1M), loading it takes well under a second.
SAVE_MIN = 20_000
ARRAYS = ("rowids", "indptr", "rows", "values")
K1, B = 1.2, 0.75  # fts5_aux.c's constants
WEIGHTS = (2.0, 1.0)  # title, text: Store.keyword_chunks's bm25(chunks_fts, 2.0, 1.0)
BATCH = 4096  # rows counted at a time: bounds the memory of the token lists
# Words FTS5 keeps as they are (unicode61 folds nothing in lower-case ASCII, '_' is a token char): rows are split
# at whitespace (as unicode61 does) and words or query forms outside this alphabet are tokenized by FTS5 itself.
TOKEN = re.compile(r"[a-z0-9_]+")
FORM = re.compile(r'"([^"]+)"')
_NONE = (np.zeros(0, np.int64), np.zeros(0, np.float64))  # no chunk matches
SAMPLE = 32  # rows of a dense score array sampled to estimate the score of the pool's last chunk (1M passages: 16 -> 32
# 2.27 -> 1.95 ms a top-1000, 64 1.84 but 2 of 100 queries then fell back to every match)


def plain_forms(match: str) -> list[str] | None:
    """The quoted strings of an OR of quoted strings, in order (duplicates kept, as FTS5 scores each phrase), or None
    for any other MATCH expression."""
    parts = match.split(" OR ")
    forms = []
    for part in parts:
        m = FORM.fullmatch(part)
        if m is None:
            return None
        forms.append(m.group(1))
    return forms


class KeywordEngine:
    """bm25 contributions by term: chunk rows `rows[indptr[t]:indptr[t+1]]` get `values[...]` for term t."""

    stamp = ""  # the keyword table's fingerprint (Store.keyword_stamp) when known: equal stamps, equal engines

    def __init__(self, schema: str, table: list[tuple[int, str, str]], version: int) -> None:
        self.version = version
        self.schema = schema
        n = len(table)
        self.rowids = np.fromiter((r[0] for r in table), np.int64, n)
        vocab: dict[str, int] = {}
        odd: dict[str, list[str]] = {}  # non-plain words -> FTS5's tokens of them
        lengths = np.zeros(n, dtype=np.int64)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for start in range(0, n, BATCH):
            batch = table[start : start + BATCH]
            columns = [c.split() if c else [] for _, title, text in batch for c in (title, text)]  # title, text, ...
            columns = self._fix_odd(schema, columns, vocab, odd)
            tokens = list(chain.from_iterable(columns))
            for w in dict.fromkeys(tokens):
                if w not in vocab:
                    vocab[w] = len(vocab)
            counts = np.fromiter(map(len, columns), np.int64, len(columns))
            lengths[start : start + len(batch)] = counts.reshape(-1, 2).sum(axis=1)
            terms = np.fromiter(map(vocab.__getitem__, tokens), np.int64, len(tokens))
            local = np.repeat(np.arange(len(columns)) // 2, counts)
            pairs, inverse = np.unique(terms * len(batch) + local, return_inverse=True)
            freq = np.bincount(inverse, weights=np.repeat(np.tile(WEIGHTS, len(batch)), counts), minlength=len(pairs))
            parts.append((pairs // len(batch), pairs % len(batch) + start, freq))
        term = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        row = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        freq = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
        order = np.argsort(term, kind="stable")  # by term, then row (each batch's pairs are row-ascending per term)
        term, row, freq = term[order], row[order], freq[order]
        df = np.bincount(term, minlength=len(vocab))
        self.indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        avgdl = float(lengths.sum()) / n if n else 1.0
        idf = np.log((n - df + 0.5) / (df + 0.5))
        idf[idf <= 0.0] = 1e-6
        norm = K1 * (1 - B + B * lengths[row] / avgdl)
        self.values = (idf[term] * (freq * (K1 + 1.0)) / (freq + norm)).astype(np.float32)
        self.rows = row.astype(np.int32)
        self.vocab = vocab
        self._odd = odd

    @staticmethod
    def _fix_odd(schema: str, columns: list[list[str]], vocab: dict[str, int], odd: dict[str, list[str]]) -> list[list[str]]:
        """The columns' words as FTS5's tokens: words outside the plain alphabet (rare: the analysis folds and stems)
        are tokenized by FTS5 itself, once each."""
        distinct = dict.fromkeys(chain.from_iterable(columns))
        fresh = [w for w in distinct if w not in vocab and w not in odd and not TOKEN.fullmatch(w)]
        if fresh:
            odd.update(zip(fresh, Store.fts_tokens(schema, fresh), strict=True))
        if not odd or not any(w in odd for w in distinct):
            return columns
        return [[t for w in col for t in odd.get(w, (w,))] if any(w in odd for w in col) else col for col in columns]

    def __len__(self) -> int:
        return len(self.rowids)

    def has_any(self, forms: Sequence[str]) -> bool | None:
        """Whether any of the forms is an indexed term (typo.Vocabulary); None for forms FTS5 would tokenize itself."""
        if not all(TOKEN.fullmatch(f) for f in forms):
            return None
        return any(f in self.vocab for f in forms)

    def terms(self, first: str, min_length: int, max_length: int) -> list[tuple[str, int]]:
        """Store.vocabulary from memory (typo.Vocabulary): terms starting with `first` in a length range, with their
        chunk counts."""
        return self._sorted_terms().terms(first, min_length, max_length)

    def has_prefix(self, prefix: str) -> bool:
        """Whether an indexed term starts with `prefix` in some language or untagged (typo.Vocabulary)."""
        sorted_terms = self._sorted_terms()
        return any(sorted_terms.has_prefix(f"{lang}{TAG}{prefix}") for lang in LANGUAGES) or sorted_terms.has_prefix(prefix)

    def _sorted_terms(self) -> SortedTerms:
        sorted_terms = self.__dict__.get("_sorted")
        if sorted_terms is None:  # built on the first typo of this engine; two racing threads build the same
            counts = np.diff(self.indptr).tolist()
            sorted_terms = self._sorted = SortedTerms(dict(zip(self.vocab, counts, strict=True)))
        return sorted_terms

    def counts(self, forms: Collection[str]) -> dict[str, int]:
        """Store.term_counts from memory (typo.Vocabulary): chunks holding each of the forms that is indexed."""
        indptr, vocab = self.indptr, self.vocab
        return {f: int(indptr[t + 1] - indptr[t]) for f in forms if (t := vocab.get(f)) is not None}

    def at(self, version: int) -> KeywordEngine:
        """The same engine (shared arrays) for a later data version whose keyword table is unchanged."""
        out = copy.copy(self)
        out.version = version
        return out

    def save(self, folder: Path) -> Path:
        """Write the engine under `folder` for `load` (its stamp names it)."""
        meta = {"schema": self.schema, "vocab": list(self.vocab), "odd": self._odd}
        return saved.save(folder, "keyword", self.stamp, {name: getattr(self, name) for name in ARRAYS}, meta)

    @classmethod
    def load(cls, folder: Path, stamp: str, version: int) -> KeywordEngine | None:
        """The engine saved under `folder` for this stamp (arrays memory-mapped), or None."""
        found = saved.load(folder, "keyword", stamp, ARRAYS)
        if found is None:
            return None
        arrays, meta = found
        engine = cls.__new__(cls)
        engine.version, engine.schema, engine.stamp = version, meta["schema"], stamp
        for name in ARRAYS:
            # plain ndarray views of the mapped files: slicing an np.memmap runs Python (__getitem__, __array_finalize__),
            # ~60 times a query (0.84 -> 0.76 ms a top-1000 at 100k passages)
            setattr(engine, name, np.asarray(arrays[name]))
        engine.vocab = {w: i for i, w in enumerate(meta["vocab"])}
        engine._odd = dict(meta["odd"])
        return engine

    def mapped_files(self) -> list[Path]:
        """The files its arrays are memory-mapped from (`load`); none for an engine built in memory."""
        bases = (getattr(getattr(self, name), "base", None) for name in ARRAYS)
        return [Path(b.filename) for b in bases if isinstance(b, np.memmap) and b.filename]

    def top(self, match: str, limit: int) -> list[tuple[int, float]] | None:
        """Store.keyword_chunks's answer (score desc, chunk id asc), or None when the expression is not plain forms."""
        found = self.top_arrays(match, limit)
        return None if found is None else list(zip(found[0].tolist(), found[1].tolist(), strict=True))

    def top_arrays(self, match: str, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
        """`top` as arrays: chunk ids (int64) and scores (float64)."""
        forms = plain_forms(match)
        if forms is None:
            return None
        odd = [f for f in forms if f not in self._odd and not TOKEN.fullmatch(f)]
        if odd:
            self._odd.update(zip(odd, Store.fts_tokens(self.schema, odd), strict=True))  # racing threads agree
        tokens = [self._odd.get(f, [f]) for f in forms]
        if any(len(t) != 1 for t in tokens):
            return None  # a phrase (or nothing) to FTS5: only single words are scored here
        forms = [t[0] for t in tokens]
        if limit <= 0:
            return _NONE
        spans = [(self.indptr[t], self.indptr[t + 1]) for f in forms if (t := self.vocab.get(f)) is not None]
        if not spans:
            return _NONE
        # concatenated straight into the types bincount works in (intp, float64), so it does not convert a copy of each
        total = sum(int(hi - lo) for lo, hi in spans)
        rows = np.concatenate([self.rows[lo:hi] for lo, hi in spans], out=np.empty(total, np.intp))
        values = np.concatenate([self.values[lo:hi] for lo, hi in spans], out=np.empty(total, np.float64))
        # bincount adds the postings one by one in this order (form by form, from 0.0), so each score is the same double
        # as a `scores[rows] += values` per form gives; one C loop, 5-10% faster at 1M passages
        scores = np.bincount(rows, weights=values, minlength=len(self.rowids))
        # every matching row scores > 0 (idf >= 1e-6), so the matches are the non-zero entries
        if len(rows) < len(scores) // 64:
            cand = distinct(rows)
        else:
            cand = self._best_rows(scores, limit)
        sc = scores[cand]
        if len(cand) > limit:
            kth = np.partition(sc, len(sc) - limit)[len(sc) - limit]
            keep = sc >= kth  # every row tied at the boundary, so the tie-break below decides, not argpartition
            cand, sc = cand[keep], sc[keep]
        ids = self.rowids[cand]
        order = np.lexsort((ids, -sc))[:limit]
        return ids[order], sc[order]


    @staticmethod
    def _best_rows(scores: np.ndarray, limit: int) -> np.ndarray:
        """Rows of a dense score array that include the best `limit` matches and every row tied with the last.

        Rows at or above a floor that at least `limit` rows reach: the floor is estimated from every SAMPLE-th row
        and checked, else it is any positive score (every match: idf >= 1e-6). Collecting and partitioning every match
        (~40% of a 1M corpus for a common query) to keep the best thousand was most of a search's keyword time.
        """
        sample = scores[::SAMPLE]
        sample = sample[sample > 0]
        rank = 2 * -(-limit // SAMPLE)  # about twice `limit` rows expected at or above the sample's rank-th best
        if len(sample) > rank:
            found = np.flatnonzero(scores >= np.partition(sample, len(sample) - rank)[len(sample) - rank])
            if len(found) >= limit:
                return found
        return np.flatnonzero(scores > 0)  # 7x faster than testing != 0 on floats; no score is negative


class LiveKeyword(Versioned[KeywordEngine]):
    """The engine of the store's current data version, or FTS5 while none is ready (searchapi/versioned.py).

    A commit that leaves the keyword table as it was (tags, curator edits, harvest bookkeeping) keeps the engine: its
    stamp is compared first. With a `folder`, large engines are saved there and the next process loads them.
    """

    thread_name = "ssehub-keyword"
    what = "keyword engine"

    def __init__(self, store: Store, folder: Path | None = None) -> None:
        super().__init__(store)
        self.folder = folder

    def build(self, version: int) -> KeywordEngine:
        """The keyword engine: the current one when its table is unchanged, else a saved one, else read from the store."""
        stamp = self.store.keyword_stamp()
        current = self._value
        if current is not None and current.stamp == stamp:
            return current.at(version)
        if self.folder is not None:
            try:
                loaded = KeywordEngine.load(self.folder, stamp, version)
            except Exception:  # a damaged or foreign file: build afresh (and overwrite it)
                log.exception("cannot load the saved keyword engine from %s", self.folder)
                loaded = None
            if loaded is not None:
                log.info("keyword engine loaded from %s (%d chunks)", self.folder, len(loaded))
                return loaded
        engine = KeywordEngine(*self.store.keyword_rows(), version)
        engine.stamp = stamp
        if self.folder is not None and len(engine) >= SAVE_MIN and stamp == self.store.keyword_stamp():
            try:
                engine.save(self.folder)
            except OSError as exc:  # a read-only folder: serve it anyway
                log.warning("cannot save the keyword engine to %s: %s", self.folder, exc)
        return engine

    def sync_max(self) -> int:
        """SYNC_REBUILD_MAX, read at call time (tests lower it)."""
        return SYNC_REBUILD_MAX

    def chunks(self, match: str, limit: int) -> list[tuple[int, float]]:
        """Store.keyword_chunks, from the engine when it is fresh and the expression is plain forms."""
        ids, scores = self.chunk_arrays(match, limit)
        return list(zip(ids.tolist(), scores.tolist(), strict=True))

    def chunk_arrays(self, match: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """`chunks` as arrays: chunk ids (int64) and scores (float64)."""
        engine = self.get()
        found = engine.top_arrays(match, limit) if engine is not None else None
        if found is not None:
            return found
        hits = self.store.keyword_chunks(match, limit)
        return np.array([c for c, _ in hits], dtype=np.int64), np.array([s for _, s in hits], dtype=np.float64)
