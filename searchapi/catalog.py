"""An in-memory, read-only copy of what search filters and counts on (chunk owners, document attributes, SDG tags).

At 100k passages, asking SQLite per query which document owns each candidate chunk, which candidates pass the
filters and how the result set spreads over the facets cost ~100 ms of a ~200 ms search; as numpy arrays the same
answers take about a millisecond. The copy is rebuilt when the store's data version changes (any commit, by any
process); until a rebuild is done a search is answered from SQLite, so results never lag behind a write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from searchapi.versioned import Versioned
from ssehub.store import FACETS, Filters

SYNC_REBUILD_MAX = 50_000  # documents: a copy this small rebuilds in the request (~0.1 s); larger ones in the background
MAX_SDG = 63  # bit positions of the per-document SDG mask


@dataclass
class Column:
    """A text column as integer codes into its sorted distinct values (code -1: NULL)."""

    codes: np.ndarray
    values: list[str]

    @classmethod
    def of(cls, raw: Sequence[str | None]) -> Column:
        values = sorted({v for v in raw if v is not None})
        code = {v: i for i, v in enumerate(values)}
        return cls(np.fromiter((code.get(v, -1) if v is not None else -1 for v in raw), np.int32, len(raw)), values)

    def matching(self, wanted: Iterable[str]) -> np.ndarray:
        """Codes of the wanted values that occur."""
        pos = {v: i for i, v in enumerate(self.values)}
        return np.array([pos[w] for w in wanted if w in pos], dtype=np.int32)


class Catalog:
    """The arrays, indexed by document number (documents) or chunk id (owners)."""

    def __init__(self, rows: Mapping[str, list[tuple]], version: int) -> None:
        docs = rows["documents"]
        self.version = version
        self.ids: list[str] = [r[0] for r in docs]
        self.number = {d: i for i, d in enumerate(self.ids)}
        self.searchable = np.fromiter((bool(r[1]) for r in docs), bool, len(docs))
        self.lang = Column.of([r[2] for r in docs])
        self.source = Column.of([r[3] for r in docs])
        self.type = Column.of([r[4] for r in docs])
        self.has_year = np.fromiter((r[5] is not None for r in docs), bool, len(docs))
        self.year = np.fromiter((int(r[5]) if r[5] is not None else 0 for r in docs), np.int64, len(docs))
        self.published: list[str | None] = [r[6] for r in docs]
        self.sdgs = np.zeros(len(docs), dtype=np.uint64)
        tags = [(n, int(sdg)) for doc_id, sdg in rows["sdgs"] if (n := self.number.get(doc_id)) is not None]
        if any(not 0 <= sdg <= MAX_SDG for _, sdg in tags):
            raise ValueError("an SDG number does not fit the mask")
        if tags:
            numbers, sdgs = np.array(tags, dtype=np.int64).T
            np.bitwise_or.at(self.sdgs, numbers, np.left_shift(np.uint64(1), sdgs.astype(np.uint64)))
        chunks = rows["chunks"]
        chunk_ids = np.fromiter((c[0] for c in chunks), np.int64, len(chunks))
        self.owner = np.full(int(chunk_ids.max(initial=0)) + 1, -1, dtype=np.int32)
        self.owner[chunk_ids] = np.fromiter((self.number.get(c[1], -1) for c in chunks), np.int32, len(chunks))
        # Browse order, as the store's ORDER BY published IS NULL, published DESC, id (reverse sorts stay stable).
        dated = sorted((i for i, p in enumerate(self.published) if p is not None), key=lambda i: self.ids[i])
        dated.sort(key=lambda i: self.published[i], reverse=True)
        undated = sorted((i for i, p in enumerate(self.published) if p is None), key=lambda i: self.ids[i])
        self.order = np.array(dated + undated, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def mask(self, filters: Filters) -> np.ndarray:
        """Searchable documents passing the filters (Filters.where, as arrays)."""
        keep = self.searchable.copy()
        for column, wanted in ((self.lang, filters.lang), (self.source, filters.source), (self.type, filters.type)):
            if wanted:
                keep &= np.isin(column.codes, column.matching(wanted))
        if filters.year_from is not None:
            keep &= self.has_year & (self.year >= filters.year_from)
        if filters.year_to is not None:
            keep &= self.has_year & (self.year <= filters.year_to)
        if filters.sdg:
            bits = np.uint64(0)
            for s in filters.sdg:
                if 0 <= s <= MAX_SDG:
                    bits |= np.uint64(1 << s)
            keep &= (self.sdgs & bits) != 0
        return keep

    def owners(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Document numbers of the chunks (-1: a chunk the store does not hold, e.g. from a stale index)."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        out = np.full(len(ids), -1, dtype=np.int32)
        inside = (ids >= 0) & (ids < len(self.owner))
        out[inside] = self.owner[ids[inside]]
        return out

    def best(self, hits: Sequence[tuple[int, float]], filters: Filters) -> dict[str, tuple[float, int]]:
        """fusion.best_per_document of the chunk hits, kept to documents passing the filters: the same result, no SQL."""
        owners = self.owners([c for c, _ in hits]).tolist()
        keep = self.mask(filters)
        best: dict[str, tuple[float, int]] = {}
        for (chunk_id, score), n in zip(hits, owners, strict=True):
            if n < 0 or not keep[n]:
                continue
            doc = self.ids[n]
            if doc not in best or score > best[doc][0]:
                best[doc] = (score, chunk_id)
        return best

    def filter_ids(self, filters: Filters, ids: Iterable[str]) -> set[str]:
        """Store.filter_ids over given ids."""
        keep = self.mask(filters)
        return {d for d in ids if (n := self.number.get(d)) is not None and keep[n]}

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int, np.ndarray]:
        """Store.browse: (ids of the page, total), plus the document numbers of the whole set (for the facets)."""
        keep = self.mask(filters)
        ordered = self.order[keep[self.order]]
        return [self.ids[i] for i in ordered[offset : offset + limit]], len(ordered), ordered

    def numbers(self, ids: Iterable[str]) -> np.ndarray:
        """Document numbers of known ids (unknown ones skipped), each once."""
        return np.unique(np.fromiter((n for d in ids if (n := self.number.get(d)) is not None), np.int64))

    def facets(self, numbers: np.ndarray) -> dict[str, dict[str, int]]:
        """Store.facets over a set of document numbers: the same counts in the same order."""
        out: dict[str, dict[str, int]] = {}
        for name, column in (("lang", self.lang), ("source", self.source), ("type", self.type)):
            codes = column.codes[numbers]
            counts = np.bincount(codes[codes >= 0], minlength=len(column.values))
            pairs = [(column.values[c], int(n)) for c, n in enumerate(counts) if n and column.values[c] != ""]
            out[name] = dict(sorted(pairs, key=lambda p: (-p[1], p[0])))
        years, counts = np.unique(self.year[numbers][self.has_year[numbers]], return_counts=True)
        out["year"] = {str(y): int(n) for y, n in sorted(zip(years.tolist(), counts.tolist()), key=lambda p: (-p[1], p[0]))}
        bits = np.unpackbits(self.sdgs[numbers].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little").sum(axis=0)
        out["sdg"] = {str(s): int(bits[s]) for s in range(MAX_SDG + 1) if bits[s]}
        return {name: out[name] for name in FACETS}


class LiveCatalog(Versioned[Catalog]):
    """The catalog of the store's current data version, or None while a rebuild is pending (then ask SQLite)."""

    thread_name = "ssehub-catalog"
    what = "search catalog"

    def build(self, version: int) -> Catalog:
        """The search catalog, read from the store now."""
        return Catalog(self.store.catalog_rows(), version)

    def sync_max(self) -> int:
        """SYNC_REBUILD_MAX, read at call time (tests lower it)."""
        return SYNC_REBUILD_MAX
