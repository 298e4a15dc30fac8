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


def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique of integers by sorting: numpy 2.4's hashing np.unique took 2-380 ms on 1k-100k integers here, a sort
    well under 2 ms."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


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
        # Rank arrays for array rankings (searchapi/search.py): each id's place in id order (the tie-break of every
        # ranking), and each date's place among the dates (-1: undated, as "" or NULL), for sorting by date.
        self.id_rank = np.empty(len(docs), dtype=np.int64)
        self.id_rank[sorted(range(len(docs)), key=self.ids.__getitem__)] = np.arange(len(docs))
        dates = sorted({p for p in self.published if p})
        date_pos = {p: i for i, p in enumerate(dates)}
        self.date_rank = np.fromiter((date_pos[p] if p else -1 for p in self.published), np.int64, len(docs))
        # Links of search hits (Store.catalog_snapshot), when read: attachment -> page, and every document that has an
        # attachment, a page or another URL. None: not read, ask the store.
        self.active: int | None = rows["active"][0][0] if "active" in rows else None  # Store.counts's documents
        self.chunks = len(chunks)
        self.parents: dict[str, str] | None = None
        self.linked: frozenset[str] | None = None
        self.parent_number: np.ndarray | None = None  # attachment number -> its page's number (-1: none)
        self.children: dict[int, list[int]] = {}  # page number -> its attachments' numbers
        if "parents" in rows and "copies" in rows:
            self.parents = {child: parent for child, parent in rows["parents"]}
            self.linked = frozenset(self.parents) | frozenset(self.parents.values()) | frozenset(r[0] for r in rows["copies"])
            self.parent_number = np.full(len(docs), -1, dtype=np.int64)
            for child, parent in self.parents.items():
                c, p = self.number.get(child), self.number.get(parent)
                if c is not None and p is not None:
                    self.parent_number[c] = p
                    self.children.setdefault(p, []).append(c)
        self.has_children = np.zeros(len(docs), dtype=bool)
        self.has_children[list(self.children)] = True

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
        if not hits:
            return {}
        chunks = np.fromiter((c for c, _ in hits), np.int64, len(hits))
        scores = np.fromiter((s for _, s in hits), np.float64, len(hits))
        order, starts = self._best_rows(chunks, scores, filters)
        if not len(order):
            return {}
        first = order[starts][np.argsort(np.minimum.reduceat(order, starts))]  # documents in order of their first hit
        owners = self.owner[chunks[first]]
        ids = self.ids
        return {ids[n]: (s, c) for n, s, c in zip(owners.tolist(), scores[first].tolist(), chunks[first].tolist(), strict=True)}

    def best_arrays(self, chunks: np.ndarray, scores: np.ndarray, filters: Filters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`best` as arrays (document numbers, best chunk scores, chunk ids), documents in no particular order."""
        if len(scores) > 1 and not (scores[1:] > scores[:-1]).any():
            # Hits best first (as vector and keyword pools come): a document's first hit is its best, the earliest of
            # equal ones, so one stable sort by document finds what `_best_rows`'s three-key sort does, in its order.
            owners = self.owners(chunks)
            at = np.flatnonzero(owners >= 0)
            at = at[self.mask(filters)[owners[at]]]
            by_document = np.argsort(owners[at], kind="stable")
            grouped = owners[at][by_document]
            first = at[by_document][np.r_[True, grouped[1:] != grouped[:-1]]] if len(at) else at
        else:
            order, starts = self._best_rows(chunks, scores, filters)
            first = order[starts]
        return self.owner[chunks[first]].astype(np.int64), scores[first], chunks[first]

    def _best_rows(self, chunks: np.ndarray, scores: np.ndarray, filters: Filters) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the hits of documents passing the filters, grouped by document with each one's best hit (the
        earliest among equal scores) first, and where each group starts."""
        owners = self.owners(chunks)
        at = np.flatnonzero(owners >= 0)
        at = at[self.mask(filters)[owners[at]]]
        # As a loop keeping the first maximum: sorted by document, then score descending, then position, the first row
        # of each document.
        order = at[np.lexsort((at, -scores[at], owners[at]))]
        return order, np.flatnonzero(np.r_[True, owners[order][1:] != owners[order][:-1]]) if len(order) else order

    def attachment_parents(self, ids: Iterable[str]) -> dict[str, str] | None:
        """Store.attachment_parents, or None when the links were not read."""
        if self.parents is None:
            return None
        return {d: p for d in ids if (p := self.parents.get(d)) is not None} if self.parents else {}

    def fold(self, numbers: np.ndarray) -> np.ndarray | None:
        """Search._fold_attachments over a ranking's document numbers (a page and its own attachment in one slot, the
        better ranked kept): the positions kept, or None when the links were not read. Only linked documents can fold,
        so the loop visits those alone."""
        if self.parent_number is None:
            return None
        everything = np.arange(len(numbers))
        if not self.children:
            return everything
        parent = self.parent_number
        at = np.flatnonzero((parent[numbers] >= 0) | self.has_children[numbers])
        if not len(at):
            return everything
        seen: set[int] = set()
        drop = []
        for i, n in zip(at.tolist(), numbers[at].tolist(), strict=True):
            if int(parent[n]) in seen or not seen.isdisjoint(self.children.get(n, ())):
                drop.append(i)
            else:
                seen.add(n)
        return np.delete(everything, drop) if drop else everything

    def newest_first(self, numbers: np.ndarray) -> np.ndarray:
        """The order (positions) of the documents by publication date, newest first, undated last, ties in their given
        order (Searcher._newest_first)."""
        keys = self.date_rank[numbers]
        dated = np.flatnonzero(keys >= 0)
        return np.concatenate([dated[np.lexsort((dated, -keys[dated]))], np.flatnonzero(keys < 0)])

    def maybe_linked(self, ids: Iterable[str]) -> list[str]:
        """The ids that may have other locations (Store.other_locations is empty for the rest): all when unknown."""
        return list(ids) if self.linked is None else [d for d in ids if d in self.linked]

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
        ids = ids if isinstance(ids, list) else list(ids)
        try:  # a ranking's ids all come from this catalog: one C-level map
            numbers = np.fromiter(map(self.number.__getitem__, ids), np.int64, len(ids))
        except KeyError:
            numbers = np.fromiter((n for d in ids if (n := self.number.get(d)) is not None), np.int64)
        return distinct(numbers)

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
        return Catalog(self.store.catalog_snapshot(), version)

    def sync_max(self) -> int:
        """SYNC_REBUILD_MAX, read at call time (tests lower it)."""
        return SYNC_REBUILD_MAX

    def settled(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a rebuild in progress (background, or the warm-up's); whether none runs now."""
        if self._building.acquire(timeout=timeout):
            self._building.release()
            return True
        return False
