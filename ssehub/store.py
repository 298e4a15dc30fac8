"""The store: one SQLite file, the only module that writes SQL. Every stage meets here."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ssehub.errors import NotFound, StoreError
from ssehub.filelock import held
from ssehub.migrations import migrations
from ssehub.models import Chunk, Document
from ssehub.sources import SourceConfig

FACETS = ("sdg", "lang", "source", "type", "year")


def now() -> str:
    """UTC timestamp in ISO form."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def year_of(published: str | None) -> int | None:
    """The year of an ISO date (or None)."""
    if published and len(published) >= 4 and published[:4].isdigit():
        return int(published[:4])
    return None


@dataclass
class Filters:
    """Search filters: OR within one field, AND across fields (CONTRACT section 4)."""

    sdg: list[int] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None

    def __post_init__(self) -> None:
        # Languages, source ids and types are stored in lower case, so `lang=EN` means en (it found nothing); sorted and
        # without repeats, so one filter has one form (a cursor of `lang=EN` pages `lang=en`).
        self.lang, self.source, self.type = (sorted({v.lower() for v in vs}) for vs in (self.lang, self.source, self.type))

    def restricts(self) -> bool:
        """Whether any filter is set (without one, every searchable document passes)."""
        return bool(self.sdg or self.lang or self.source or self.type) or self.year_from is not None or self.year_to is not None

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition on `documents d` and its parameters."""
        clauses = ["d.status = 'active'", "d.hidden = 0"]
        params: list[Any] = []
        for column, values in (("lang", self.lang), ("source_id", self.source), ("type", self.type)):
            if values:
                clauses.append(f"d.{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if self.year_from is not None:
            clauses.append("d.year >= ?")
            params.append(self.year_from)
        if self.year_to is not None:
            clauses.append("d.year <= ?")
            params.append(self.year_to)
        if self.sdg:
            clauses.append(
                f"d.id IN (SELECT t.document_id FROM effective_tags t WHERE t.sdg IN ({','.join('?' * len(self.sdg))}))"
            )
            params.extend(self.sdg)
        return " AND ".join(clauses), params


# Manual tags replace the tagger's for a document that has them.
EFFECTIVE_TAGS = """
CREATE TEMP VIEW IF NOT EXISTS effective_tags AS
SELECT t.document_id, t.sdg, t.score, t.evidence, t.targets, t.origin
FROM sdg_tags t JOIN documents d ON d.id = t.document_id
WHERE (d.manual_sdgs IS NULL AND t.origin = 'auto') OR (d.manual_sdgs IS NOT NULL AND t.origin = 'manual')
"""


class Store:
    """SQLite store in WAL mode; safe to share between threads: each thread reads and writes through a
    connection of its own (one sqlite3 connection stepped by two threads corrupts its statements), and
    writes within this process are serialised."""

    def __init__(self, path: Path | str, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no store at {self.path}: run `ssehub harvest` or `ssehub import` first")
        self._lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[Database] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect(migrate=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from None
        self._local.db = db

    def _connect(self, migrate: bool = False) -> Database:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        db = Database(conn)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        if migrate:
            with self._lock, held(self.path.with_name(self.path.name + ".lock")):  # two processes opening a new store: one migrates
                migrations.apply(db)
        db.execute(EFFECTIVE_TAGS)
        with self._lock:
            self._connections.append(db)
        return db

    @property
    def db(self) -> Database:
        """This thread's connection to the store (opened on first use)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def close(self) -> None:
        """Close every connection this store opened (callers first stop their own background readers: closing a
        connection another thread is reading from crashes the process)."""
        with self._lock:
            for db in self._connections:
                db.conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work: all of it is written, or none."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield
                return
            _begin_immediate(conn)
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # -- sources ---------------------------------------------------------------------------

    def upsert_source(self, src: SourceConfig, origin: str = "yaml") -> None:
        """Record a source (its whole config as JSON)."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO sources (id, name, kind, url, config, origin, enabled, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET name=excluded.name, kind=excluded.kind, url=excluded.url,
                   config=excluded.config, enabled=excluded.enabled""",
                [src.id, src.name, src.kind, src.url, src.model_dump_json(), origin, int(src.enabled), now()],
            )

    def sources(self) -> list[dict[str, Any]]:
        """All recorded sources with their document count and last run."""
        rows = self._rows(
            """SELECT s.id, s.name, s.kind, s.url, s.origin, s.enabled,
                      (SELECT COUNT(*) FROM documents d WHERE d.source_id = s.id AND d.status = 'active') AS documents
               FROM sources s ORDER BY s.id"""
        )
        for row in rows:
            row["last_run"] = self.last_run(row["id"])
        return rows

    def source_ids(self) -> set[str]:
        """Ids of recorded sources."""
        return {r["id"] for r in self._rows("SELECT id FROM sources")}

    # -- pages (what the harvester fetched, for conditional requests) ----------------------

    def page(self, url: str) -> dict[str, Any] | None:
        """The last fetch of a URL."""
        return self._one("SELECT * FROM pages WHERE url = ?", [url])

    def pages_of(self, source_id: str) -> dict[str, dict[str, Any]]:
        """Every fetched page of a source, by URL."""
        return {r["url"]: r for r in self._rows("SELECT * FROM pages WHERE source_id = ?", [source_id])}

    def record_page(self, url: str, source_id: str, **fields: Any) -> None:
        """Insert or update what is known of a fetched URL (status, etag, last_modified, content_hash, ...)."""
        fields = {"fetched_at": now(), **fields}
        cols = ", ".join(["url", "source_id", *fields])
        marks = ", ".join("?" * (len(fields) + 2))
        updates = ", ".join(f"{k}=excluded.{k}" for k in ["source_id", *fields])
        with self.transaction():
            self.db.execute(
                f"INSERT INTO pages ({cols}) VALUES ({marks}) ON CONFLICT(url) DO UPDATE SET {updates}",
                [url, source_id, *fields.values()],
            )

    # -- documents -------------------------------------------------------------------------

    def upsert_document(self, doc: Document) -> str:
        """Store a document; returns 'new', 'updated' or 'unchanged' (same content hash)."""
        h = doc.hash
        with self.transaction():
            old = self._one("SELECT hash, status FROM documents WHERE id = ?", [doc.id])
            if old and old["hash"] == h and old["status"] == "active":
                return "unchanged"
            values = {
                "source_id": doc.source_id, "url": doc.url, "title": doc.title, "text": doc.text,
                "lang": doc.lang, "published": doc.published, "year": year_of(doc.published),
                "authors": json.dumps(doc.authors, ensure_ascii=False), "type": doc.type,
                "parent_id": doc.parent_id, "licence": doc.licence,
                "extra": json.dumps(doc.extra, ensure_ascii=False), "hash": h, "status": "active",
                "updated_at": now(),
            }
            if old:
                sets = ", ".join(f"{k} = ?" for k in values)
                self.db.execute(f"UPDATE documents SET {sets} WHERE id = ?", [*values.values(), doc.id])
                return "updated"
            values |= {"id": doc.id, "created_at": values["updated_at"]}
            cols = ", ".join(values)
            self.db.execute(f"INSERT INTO documents ({cols}) VALUES ({','.join('?' * len(values))})", list(values.values()))
            return "new"

    def withdraw_document(self, doc_id: str) -> bool:
        """Mark a document gone upstream: kept with its history, out of search. True if it was active."""
        with self.transaction():
            cur = self.db.execute(
                "UPDATE documents SET status = 'withdrawn', updated_at = ? WHERE id = ? AND status = 'active'", [now(), doc_id]
            )
            return cur.rowcount > 0

    def child_documents(self, parent_id: str) -> list[dict[str, Any]]:
        """Attachments of a document (id, url, status), e.g. the PDFs a page links to."""
        return self._rows("SELECT id, url, status FROM documents WHERE parent_id = ? ORDER BY id", [parent_id])

    def document(self, doc_id: str) -> dict[str, Any]:
        """One document with all fields, decoded, and its effective SDG tags."""
        row = self._one("SELECT * FROM documents WHERE id = ?", [doc_id])
        if row is None:
            raise NotFound(f"no document {doc_id!r}")
        return self._decode(row) | {"sdgs": self.tags([doc_id]).get(doc_id, [])}

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for key in ("authors", "extra", "manual_sdgs"):
            if key in row and isinstance(row[key], str):
                row[key] = json.loads(row[key])
        if "hidden" in row:
            row["hidden"] = bool(row["hidden"])
        return row

    def documents_brief(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Search-hit fields of several documents, by id, with their effective SDG tags."""
        out: dict[str, dict[str, Any]] = {}
        tags: dict[str, list[dict[str, Any]]] = {}
        for batch in _batches(list(ids), 500):
            marks = ",".join("?" * len(batch))
            # `tags` without the evidence and targets a hit does not show (decoding each tag's targets JSON was most of it)
            for doc_id, sdg, score in self.db.execute(
                f"SELECT document_id, sdg, score FROM effective_tags WHERE document_id IN ({marks}) ORDER BY score DESC, sdg",
                batch,
            ).fetchall():
                tags.setdefault(doc_id, []).append({"sdg": sdg, "score": score})
            for row in self._rows(
                f"""SELECT id, title, url, source_id AS source, lang, published, type, authors, parent_id
                    FROM documents WHERE id IN ({marks})""",
                batch,
            ):
                row["authors"] = json.loads(row["authors"])
                row["sdgs"] = tags.get(row["id"], [])
                out[row["id"]] = row
        return out

    def documents_to_index(self, rebuild: bool = False) -> list[dict[str, Any]]:
        """Active documents whose content changed since they were last indexed (all of them with rebuild)."""
        cond = "" if rebuild else "AND (indexed_hash IS NULL OR indexed_hash != hash)"
        return [
            self._decode(r)
            for r in self._rows(
                f"SELECT id, title, text, lang, hash, manual_sdgs FROM documents WHERE status = 'active' {cond} ORDER BY id"
            )
        ]

    def inactive_indexed_documents(self) -> list[str]:
        """Withdrawn documents that still have chunks."""
        return [
            r["id"]
            for r in self._rows(
                "SELECT DISTINCT d.id FROM documents d JOIN chunks c ON c.document_id = d.id WHERE d.status != 'active'"
            )
        ]

    def mark_indexed(self, doc_id: str, doc_hash: str) -> None:
        """Remember which content version of a document the index holds."""
        with self.transaction():
            self.db.execute("UPDATE documents SET indexed_hash = ? WHERE id = ?", [doc_hash, doc_id])

    def index_state(self) -> tuple[bool, bool]:
        """(whether any active document is stored, whether anything was ever indexed: a chunk or an indexed document).

        Two EXISTS look-ups, so a search may ask it when it found nothing: documents stored but never indexed are a
        state to name ("run `ssehub index`"), not an empty answer."""
        one = lambda sql: bool(self.db.execute(sql).fetchone()[0])
        stored = one("SELECT EXISTS (SELECT 1 FROM documents WHERE status = 'active')")
        indexed = one("SELECT EXISTS (SELECT 1 FROM chunks)") or one(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE indexed_hash IS NOT NULL)")
        return stored, indexed

    def set_hidden(self, doc_id: str, hidden: bool) -> None:
        """Hide a document from search, or restore it."""
        with self.transaction():
            if self.db.execute("UPDATE documents SET hidden = ? WHERE id = ?", [int(hidden), doc_id]).rowcount == 0:
                raise NotFound(f"no document {doc_id!r}")

    # -- chunks, embeddings and the keyword index -------------------------------------------

    def chunks_of(self, doc_id: str) -> list[dict[str, Any]]:
        """Chunks of a document in order (without embeddings)."""
        return self._rows("SELECT id, seq, text, hash, model FROM chunks WHERE document_id = ? ORDER BY seq", [doc_id])

    def embeddings_by_hash(self, hashes: Iterable[str], model: str) -> dict[str, bytes]:
        """Stored embeddings of chunk texts already embedded with this model (any document)."""
        out: dict[str, bytes] = {}
        for batch in _batches(list(set(hashes)), 500):
            for row in self._rows(
                f"""SELECT hash, embedding FROM chunks WHERE model = ? AND embedding IS NOT NULL
                    AND hash IN ({','.join('?' * len(batch))})""",
                [model, *batch],
            ):
                out[row["hash"]] = row["embedding"]
        return out

    def replace_chunks(self, doc_id: str, title: str, chunks: Sequence[Chunk], embeddings: Sequence[bytes], model: str) -> None:
        """Replace a document's chunks, their embeddings and keyword entries in one transaction."""
        with self.transaction():
            self._delete_chunks(doc_id)
            for chunk, emb in zip(chunks, embeddings, strict=True):
                cur = self.db.execute(
                    "INSERT INTO chunks (document_id, seq, text, hash, embedding, model) VALUES (?, ?, ?, ?, ?, ?)",
                    [doc_id, chunk.seq, chunk.text, chunk.hash, emb, model],
                )
                self.db.execute(
                    "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
                    [cur.lastrowid, *self._analysed(doc_id, title, chunk.text)],
                )

    def _delete_chunks(self, doc_id: str) -> None:
        self.db.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE document_id = ?)", [doc_id])
        self.db.execute("DELETE FROM chunks WHERE document_id = ?", [doc_id])

    def delete_chunks(self, doc_id: str) -> None:
        """Drop a document's chunks and keyword entries; the index then holds no version of it (indexed_hash NULL).

        A withdrawn document's chunks are dropped by `ssehub index`; when its page came back with the same text (a
        404 for a while, an exclude pattern removed), the document was active again but never re-indexed (its
        indexed_hash still matched), so no search found it."""
        with self.transaction():
            self._delete_chunks(doc_id)
            self.db.execute("UPDATE documents SET indexed_hash = NULL WHERE id = ?", [doc_id])

    def iter_embeddings(self, batch: int = 10000) -> Iterator[tuple[list[int], list[bytes]]]:
        """(chunk ids, embedding blobs) of every embedded chunk, in batches, by id."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL AND id > ? ORDER BY id LIMIT ?", [last, batch]
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[0] for r in rows], [r[1] for r in rows]

    def keyword_chunks(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, score) for an FTS5 MATCH expression, best first; score = -bm25 (higher is better).

        Title matches weigh twice the body's.
        """
        try:
            rows = self.db.execute(
                "SELECT rowid, -bm25(chunks_fts, 2.0, 1.0) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s DESC LIMIT ?",
                [match, limit],
            ).fetchall()
        except sqlite3.OperationalError as exc:
            raise ValueError(f"bad keyword query: {exc}") from None
        return [(r[0], r[1]) for r in rows]

    def _pairs(self, sql: str, keys: Iterable[Any], params: Sequence[Any] = ()) -> dict[Any, Any]:
        """First column -> second of `sql` run over `keys` in batches of 500 (SQLite's bound-parameter limit), its
        `{keys}` standing for each batch's placeholders and `params` bound before them."""
        out: dict[Any, Any] = {}
        for batch in _batches(list(keys), 500):
            query = sql.format(keys=",".join("?" * len(batch)))
            out.update((r[0], r[1]) for r in self.db.execute(query, [*params, *batch]).fetchall())
        return out

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunk id -> {document_id, seq, text}."""
        out: dict[int, dict[str, Any]] = {}
        for batch in _batches(list(chunk_ids), 500):
            for row in self._rows(
                f"SELECT id, document_id, seq, text FROM chunks WHERE id IN ({','.join('?' * len(batch))})", batch
            ):
                out[row["id"]] = row
        return out

    def chunk_documents(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """Chunk id -> document id, without the texts (for ranking large candidate pools)."""
        return self._pairs("SELECT id, document_id FROM chunks WHERE id IN ({keys})", chunk_ids)

    def document_embeddings(self, doc_id: str) -> list[bytes]:
        """Embedding blobs of a document's embedded chunks, in order."""
        rows = self.db.execute(
            "SELECT embedding FROM chunks WHERE document_id = ? AND embedding IS NOT NULL ORDER BY seq", [doc_id]
        ).fetchall()
        return [r[0] for r in rows]

    def text_heads(self, ids: Sequence[str], chars: int = 600) -> dict[str, str]:
        """The first `chars` characters of each document's text, by id."""
        return self._pairs("SELECT id, substr(text, 1, ?) FROM documents WHERE id IN ({keys})", ids, [chars])

    # -- filters, browsing and facets --------------------------------------------------------

    def filter_ids(self, filters: Filters, ids: Sequence[str] | None = None) -> set[str]:
        """Ids of searchable documents passing the filters (restricted to `ids` when given)."""
        where, params = filters.where()
        if ids is None:
            return {r[0] for r in self.db.execute(f"SELECT d.id FROM documents d WHERE {where}", params).fetchall()}
        out: set[str] = set()
        for batch in _batches(list(ids), 500):
            sql = f"SELECT d.id FROM documents d WHERE {where} AND d.id IN ({','.join('?' * len(batch))})"
            out.update(r[0] for r in self.db.execute(sql, [*params, *batch]).fetchall())
        return out

    def browse(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int]:
        """Filtered documents, newest first: (ids of the page, total)."""
        where, params = filters.where()
        total = self.db.execute(f"SELECT COUNT(*) FROM documents d WHERE {where}", params).fetchone()[0]
        rows = self.db.execute(
            f"""SELECT d.id FROM documents d WHERE {where}
                ORDER BY d.published IS NULL, d.published DESC, d.id LIMIT ? OFFSET ?""",
            [*params, limit, offset],
        ).fetchall()
        return [r[0] for r in rows], total

    def facets(self, ids: Iterable[str] | None = None, filters: Filters | None = None) -> dict[str, dict[str, int]]:
        """Exact counts per SDG, language, source, type and year over a set of documents.

        Either the given ids, or every document passing `filters`.
        """
        # facet_ids is a temp table of this thread's own connection: no lock needed, and none held on this hot path.
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS facet_ids (id TEXT PRIMARY KEY)")
        db.execute("DELETE FROM facet_ids")
        if ids is None:
            where, params = (filters or Filters()).where()
            db.execute(f"INSERT INTO facet_ids SELECT d.id FROM documents d WHERE {where}", params)
        else:
            db.conn.executemany("INSERT OR IGNORE INTO facet_ids VALUES (?)", [(i,) for i in ids])
        out: dict[str, dict[str, int]] = {}
        # One pass over the documents for the four columns (one pass each read every document's row four times: 71 ms
        # of a 1M-passage search while the catalog is rebuilt), counted here in the order SQL's GROUP BY ... ORDER BY
        # COUNT(*) DESC, value gave (text values compare as SQLite's BINARY collation does: by code point).
        columns = ("lang", "source", "type", "year")
        counts: list[dict[Any, int]] = [{} for _ in columns]
        for row in db.execute(
            # Driven by facet_ids (CROSS JOIN fixes the order): the planner otherwise scans all documents.
            "SELECT d.lang, d.source_id, d.type, d.year FROM facet_ids f CROSS JOIN documents d ON d.id = f.id"
        ):
            for value, counted in zip(row, counts, strict=True):
                if value is not None and value != "":
                    counted[value] = counted.get(value, 0) + 1
        for name, counted in zip(columns, counts, strict=True):
            # SQLite orders numbers before text; within a type, by value
            ordered = sorted(counted.items(), key=lambda kv: (-kv[1], isinstance(kv[0], str), kv[0]))
            out[name] = {str(k): n for k, n in ordered}
        rows = db.execute(
            """SELECT t.sdg, COUNT(DISTINCT t.document_id) FROM effective_tags t WHERE t.document_id IN facet_ids
               GROUP BY t.sdg ORDER BY t.sdg"""  # IN, not JOIN: a join scanned every tag (perf issue 7)
        ).fetchall()
        out["sdg"] = {str(k): n for k, n in rows}
        db.execute("DELETE FROM facet_ids")
        return {name: out[name] for name in FACETS}

    # -- SDG tags ---------------------------------------------------------------------------

    def set_auto_tags(self, doc_id: str, tags: Sequence[dict[str, Any]]) -> None:
        """Replace the tagger's tags of a document: [{sdg, score, evidence, targets}]."""
        with self.transaction():
            self.db.execute("DELETE FROM sdg_tags WHERE document_id = ? AND origin = 'auto'", [doc_id])
            for t in tags:
                self.db.execute(
                    "INSERT INTO sdg_tags (document_id, sdg, score, evidence, targets, origin) VALUES (?, ?, ?, ?, ?, 'auto')",
                    [doc_id, int(t["sdg"]), float(t["score"]), t.get("evidence", ""), json.dumps(t.get("targets", []))],
                )

    def set_manual_tags(self, doc_id: str, sdgs: Sequence[int] | None) -> None:
        """A curator's tags, which win over the tagger's; None returns to the tagger's."""
        with self.transaction():
            if self._one("SELECT id FROM documents WHERE id = ?", [doc_id]) is None:
                raise NotFound(f"no document {doc_id!r}")
            self.db.execute("DELETE FROM sdg_tags WHERE document_id = ? AND origin = 'manual'", [doc_id])
            manual = None if sdgs is None else json.dumps(sorted(set(sdgs)))
            self.db.execute("UPDATE documents SET manual_sdgs = ? WHERE id = ?", [manual, doc_id])
            for sdg in sorted(set(sdgs or [])):
                self.db.execute(
                    "INSERT INTO sdg_tags (document_id, sdg, score, evidence, origin) VALUES (?, ?, 1.0, 'set by a curator', 'manual')",
                    [doc_id, sdg],
                )

    def tags(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Effective SDG tags of documents, best first: id -> [{sdg, score, evidence, targets, origin}]."""
        out: dict[str, list[dict[str, Any]]] = {}
        for batch in _batches(list(ids), 500):
            for row in self._rows(
                f"""SELECT document_id, sdg, score, evidence, targets, origin FROM effective_tags
                    WHERE document_id IN ({','.join('?' * len(batch))}) ORDER BY score DESC, sdg""",
                batch,
            ):
                row["targets"] = json.loads(row["targets"])
                out.setdefault(row.pop("document_id"), []).append(row)
        return out

    def sdg_counts(self) -> dict[int, int]:
        """Searchable documents per SDG."""
        rows = self.db.execute(
            """SELECT t.sdg, COUNT(DISTINCT t.document_id) FROM effective_tags t JOIN documents d ON d.id = t.document_id
               WHERE d.status = 'active' AND d.hidden = 0 GROUP BY t.sdg"""
        ).fetchall()
        return {int(k): n for k, n in rows}

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, sources: Sequence[str], kind: str = "harvest") -> int:
        """Open a run record; returns its id."""
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO runs (kind, sources, started_at) VALUES (?, ?, ?)", [kind, json.dumps(list(sources)), now()]
            )
            return int(cur.lastrowid)

    def update_run(self, run_id: int, counts: dict[str, Any], status: str | None = None) -> None:
        """Save a run's counts (and status: running, finished, failed, interrupted)."""
        with self.transaction():
            finished = now() if status and status != "running" else None
            self.db.execute(
                "UPDATE runs SET counts = ?, status = COALESCE(?, status), finished_at = COALESCE(?, finished_at) WHERE id = ?",
                [json.dumps(counts), status, finished, run_id],
            )

    def add_run_error(self, run_id: int, source_id: str, url: str, reason: str, detail: str = "") -> None:
        """Log one failed URL of a run."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO run_errors (run_id, source_id, url, reason, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, source_id, url, reason, detail[:2000], now()],
            )

    def run(self, run_id: int) -> dict[str, Any]:
        """One run with its counts and errors."""
        row = self._one("SELECT * FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise NotFound(f"no run {run_id}")
        row["sources"] = json.loads(row["sources"])
        row["counts"] = json.loads(row["counts"])
        row["errors"] = self._rows("SELECT source_id, url, reason, detail, at FROM run_errors WHERE run_id = ? ORDER BY id", [run_id])
        return row

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest runs first, without their error lists."""
        rows = self._rows("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit])
        for row in rows:
            row["sources"] = json.loads(row["sources"])
            row["counts"] = json.loads(row["counts"])
        return rows

    def last_run(self, source_id: str) -> dict[str, Any] | None:
        """The newest harvest run that covered a source."""
        row = self._one(
            """SELECT r.id, r.started_at, r.finished_at, r.status, r.counts FROM runs r, json_each(r.sources) j
               WHERE j.value = ? ORDER BY r.id DESC LIMIT 1""",
            [source_id],
        )
        if row:
            row["counts"] = json.loads(row["counts"])
        return row

    # -- meta and status --------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored setting of the index (model name, dimension, ...)."""
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store an index setting."""
        with self.transaction():
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])

    def counts(self) -> dict[str, int]:
        """Counts of sources, documents, chunks and tagged documents."""
        one = lambda sql: self.db.execute(sql).fetchone()[0]
        return {
            "sources": one("SELECT COUNT(*) FROM sources"),
            "documents": one("SELECT COUNT(*) FROM documents WHERE status = 'active'"),
            "withdrawn": one("SELECT COUNT(*) FROM documents WHERE status != 'active'"),
            "hidden": one("SELECT COUNT(*) FROM documents WHERE hidden = 1"),
            "indexed": one("SELECT COUNT(*) FROM documents WHERE status = 'active' AND indexed_hash = hash"),
            "chunks": one("SELECT COUNT(*) FROM chunks"),
            "tagged": one("SELECT COUNT(DISTINCT document_id) FROM effective_tags"),
        }


    # ==== curator and API section (owner: searchapi issue 6; others add above this line) =================

    def delete_source(self, source_id: str) -> bool:
        """Forget a source's record (its documents stay, under the same source id). True if it existed."""
        with self.transaction():
            return self.db.execute("DELETE FROM sources WHERE id = ?", [source_id]).rowcount > 0

    def hidden_documents(self, limit: int = 200) -> list[dict[str, Any]]:
        """Documents a curator hid, most recently changed first: id, title, url, source, published."""
        return self._rows(
            """SELECT id, title, url, source_id AS source, published, updated_at FROM documents
               WHERE hidden = 1 ORDER BY updated_at DESC, id LIMIT ?""",
            [limit],
        )

    def runs_between(self, after_id: int, before_id: int | None, kind: str) -> list[dict[str, Any]]:
        """Runs of a kind with after_id < id < before_id (open-ended without before_id), oldest first."""
        rows = self._rows(
            "SELECT * FROM runs WHERE kind = ? AND id > ? AND (? IS NULL OR id < ?) ORDER BY id",
            [kind, after_id, before_id, before_id],
        )
        for row in rows:
            row["sources"] = json.loads(row["sources"])
            row["counts"] = json.loads(row["counts"])
        return rows

    def next_run_id(self, run_id: int, kind: str) -> int | None:
        """The id of the next run of a kind after run_id, or None."""
        row = self._one("SELECT MIN(id) AS id FROM runs WHERE kind = ? AND id > ?", [kind, run_id])
        return row["id"] if row else None

    def run_error_counts(self, run_ids: Sequence[int]) -> dict[int, int]:
        """Number of failed URLs per run."""
        return self._pairs("SELECT run_id, COUNT(*) FROM run_errors WHERE run_id IN ({keys}) GROUP BY run_id", run_ids)

    def feed_documents(self, sdg: int, limit: int) -> list[dict[str, Any]]:
        """The newest searchable documents tagged with a goal, with the fields an Atom entry needs."""
        ids, _ = self.browse(Filters(sdg=[sdg]), 0, limit)
        if not ids:
            return []
        rows = {r["id"]: self._decode(r) for r in self._rows(
            f"""SELECT id, title, url, source_id AS source, lang, published, authors, type, updated_at,
                       substr(text, 1, 1000) AS summary
                FROM documents WHERE id IN ({','.join('?' * len(ids))})""",
            ids,
        )}
        tags = self.tags(ids)
        return [rows[i] | {"sdgs": [t["sdg"] for t in tags.get(i, [])]} for i in ids if i in rows]

    # ==== end of curator and API section ====================================================================


    # ==== harvester section (owner: harvester; locations, near-duplicates, harvest state, run processes) ====

    def add_location(self, doc_id: str, url: str, source_id: str) -> None:
        """Record that a document is found at a URL (of a source); a URL belongs to one document."""
        stamp = now()
        with self.transaction():
            self.db.execute(
                """INSERT INTO locations (url, document_id, source_id, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(url) DO UPDATE SET document_id = excluded.document_id, source_id = excluded.source_id,
                   last_seen = excluded.last_seen""",
                [url, doc_id, source_id, stamp, stamp],
            )

    def location(self, url: str) -> dict[str, Any] | None:
        """The document a URL is a location of."""
        return self._one("SELECT * FROM locations WHERE url = ?", [url])

    def remove_location(self, url: str) -> None:
        """Forget a URL as a location (its page is gone upstream)."""
        with self.transaction():
            self.db.execute("DELETE FROM locations WHERE url = ?", [url])

    def locations(self, doc_id: str) -> list[dict[str, Any]]:
        """Every place a document is found at, its own URL first: [{url, source_id, first_seen, last_seen}]."""
        return self._rows(
            """SELECT l.url, l.source_id, l.first_seen, l.last_seen FROM locations l
               LEFT JOIN documents d ON d.id = l.document_id
               WHERE l.document_id = ? ORDER BY l.url != d.url, l.first_seen, l.url""",
            [doc_id],
        )

    def set_document_location(self, doc_id: str, url: str, source_id: str) -> None:
        """Make another location a document's main URL (its first one went away)."""
        with self.transaction():
            self.db.execute("UPDATE documents SET url = ?, source_id = ?, updated_at = ? WHERE id = ?", [url, source_id, now(), doc_id])

    def set_minhash(self, doc_id: str, signature: bytes, band_keys: Sequence[int]) -> None:
        """Replace a document's MinHash signature and its LSH band keys."""
        with self.transaction():
            self.db.execute("DELETE FROM minhash_bands WHERE document_id = ?", [doc_id])
            self.db.execute(
                "INSERT INTO minhashes (document_id, signature) VALUES (?, ?) ON CONFLICT(document_id) DO UPDATE SET signature = excluded.signature",
                [doc_id, signature],
            )
            self.db.conn.executemany("INSERT OR IGNORE INTO minhash_bands (key, document_id) VALUES (?, ?)", [(k, doc_id) for k in band_keys])

    def minhash_candidates(self, band_keys: Sequence[int], exclude: str = "") -> dict[str, bytes]:
        """Signatures of active documents sharing at least one LSH band key (near-duplicate candidates)."""
        if not band_keys:
            return {}
        rows = self.db.execute(
            f"""SELECT m.document_id, m.signature FROM minhashes m JOIN documents d ON d.id = m.document_id
                WHERE d.status = 'active' AND m.document_id != ? AND m.document_id IN
                (SELECT document_id FROM minhash_bands WHERE key IN ({','.join('?' * len(band_keys))}))""",
            [exclude, *band_keys],
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def harvest_state(self, source_id: str, key: str) -> str | None:
        """A value the harvester keeps per source between runs (e.g. the incremental watermark `since`)."""
        row = self._one("SELECT value FROM harvest_state WHERE source_id = ? AND key = ?", [source_id, key])
        return row["value"] if row else None

    def set_harvest_state(self, source_id: str, key: str, value: str) -> None:
        """Keep a per-source harvester value."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO harvest_state (source_id, key, value) VALUES (?, ?, ?) ON CONFLICT(source_id, key) DO UPDATE SET value = excluded.value",
                [source_id, key, value],
            )

    def set_run_process(self, run_id: int, pid: int, host: str) -> None:
        """Note which process runs a run, so a run whose process died can be told from a live one."""
        with self.transaction():
            self.db.execute("UPDATE runs SET pid = ?, host = ? WHERE id = ?", [pid, host, run_id])

    def interrupt_stale_runs(self, host: str | None = None, alive: Callable[[int], bool] | None = None) -> list[int]:
        """Mark `interrupted` the runs still `running` on `host` (this machine's by default) whose process is gone
        (`process_alive` by default); returns their ids."""
        host = socket.gethostname() if host is None else host
        alive = process_alive if alive is None else alive
        with self.transaction():
            rows = self._rows("SELECT id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL", [host])
            stale = [r["id"] for r in rows if not alive(r["pid"])]
            for run_id in stale:
                self.db.execute("UPDATE runs SET status = 'interrupted', finished_at = ? WHERE id = ?", [now(), run_id])
        return stale

    def run_errors(self, run_id: int, limit: int = 5) -> list[dict[str, Any]]:
        """The first errors of a run."""
        return self._rows("SELECT url, reason, detail FROM run_errors WHERE run_id = ? ORDER BY id LIMIT ?", [run_id, limit])

    # ==== end of harvester section ====

    # ==== search section (owner: search issue 5; constraints, typo vocabulary, date order) ====

    def keyword_documents(self, match: str, limit: int | None = None) -> set[str]:
        """Ids of documents with at least one chunk matching an FTS5 expression (for required and excluded terms); all
        of them unless `limit` says how many are enough (a typo check asks for one). They were cut at 100,000, so in a
        library of more a common excluded word (`-cooperative`) let the rest through, and a common phrase lost results."""
        try:
            rows = self.db.execute(
                """SELECT DISTINCT c.document_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid
                   WHERE chunks_fts MATCH ? LIMIT ?""",
                [match, -1 if limit is None else limit],
            ).fetchall()
        except sqlite3.OperationalError as exc:
            raise ValueError(f"bad keyword query: {exc}") from None
        return {r[0] for r in rows}

    def author_documents(self, name: str) -> set[str]:
        """Ids of documents one of whose authors contains `name` (case-insensitive, ASCII case only in SQLite)."""
        rows = self.db.execute(
            "SELECT DISTINCT d.id FROM documents d, json_each(d.authors) a WHERE lower(a.value) LIKE ? ESCAPE '\\'",
            ["%" + name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"],
        ).fetchall()
        return {r[0] for r in rows}

    def vocabulary(self, first: str, min_length: int, max_length: int) -> list[tuple[str, int]]:
        """(term, chunks holding it) of the keyword index's terms starting with `first`, within a length range."""
        rows = self.db.execute(
            "SELECT term, doc FROM chunks_vocab WHERE term >= ? AND term < ? AND length(term) BETWEEN ? AND ?",
            [first, first + "\uffff", min_length, max_length],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def term_counts(self, terms: Collection[str]) -> dict[str, int]:
        """Term -> chunks holding it, for the given terms that the keyword index holds (typo corrections)."""
        return self._pairs("SELECT term, doc FROM chunks_vocab WHERE term IN ({keys})", terms)

    def published_dates(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Document id -> published date (ISO string or None)."""
        return self._pairs("SELECT id, published FROM documents WHERE id IN ({keys})", ids)

    def chunk_embeddings(self, chunk_ids: Sequence[int]) -> dict[int, bytes]:
        """Chunk id -> embedding blob, for the chunks that have one."""
        return self._pairs("SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL AND id IN ({keys})", chunk_ids)

    def _analysed(self, doc_id: str, title: str, text: str) -> tuple[str, str]:
        """A chunk's (title, text) as the keyword index holds them: stemmed in its document's language (ssehub/analyze.py)."""
        from ssehub.analyze import analyse

        row = self.db.execute("SELECT lang FROM documents WHERE id = ?", [doc_id]).fetchone()
        lang = row[0] if row else ""
        return analyse(title, lang), analyse(text, lang)

    @staticmethod
    def _analysed_rows(documents: Sequence[dict[str, Any]], chunks: Sequence[tuple[Any, ...]]) -> list[tuple[int, str, str]]:
        """chunks_fts rows (rowid, title, text) of bulk-loaded chunks (id, document_id, seq, title, text, ...)."""
        from ssehub.analyze import analyse

        langs = {d["id"]: d.get("lang", "") for d in documents}
        return [(c[0], analyse(c[3], langs.get(c[1], "")), analyse(c[4], langs.get(c[1], ""))) for c in chunks]

    def attachment_parents(self, ids: Sequence[str]) -> dict[str, str]:
        """Attachment id -> its page's id, for the documents among `ids` that are linked to a page."""
        out: dict[str, str] = {}
        for batch in _batches(list(ids), 500):
            sql = f"SELECT id, parent_id FROM documents WHERE parent_id IS NOT NULL AND id IN ({','.join('?' * len(batch))})"
            out.update((r[0], r[1]) for r in self.db.execute(sql, batch).fetchall())
        return out

    def other_locations(self, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Document id -> the other places its content is found, for search hits: [{url, source, id, relation}].

        relation "copy": another URL of the same document (near-duplicates are folded into one document at harvest);
        "attachment": a searchable document linked to this page (its PDF); "page": the page this attachment belongs to.
        """
        out: dict[str, list[dict[str, Any]]] = {d: [] for d in ids}
        searchable = "status = 'active' AND hidden = 0"
        for batch in _batches(list(ids), 500):
            marks = ",".join("?" * len(batch))
            queries = (
                ("copy", f"""SELECT l.document_id, l.document_id, l.url, l.source_id FROM locations l
                             JOIN documents d ON d.id = l.document_id WHERE l.document_id IN ({marks}) AND l.url != d.url
                             ORDER BY l.first_seen, l.url"""),
                ("attachment", f"SELECT parent_id, id, url, source_id FROM documents WHERE parent_id IN ({marks}) AND {searchable} ORDER BY id"),
                ("page", f"""SELECT c.id, p.id, p.url, p.source_id FROM documents c JOIN documents p ON p.id = c.parent_id
                             WHERE c.id IN ({marks}) AND p.{searchable.replace(' AND ', ' AND p.')}"""),
            )
            for relation, sql in queries:
                for owner, doc_id, url, source in self.db.execute(sql, batch).fetchall():
                    out[owner].append({"url": url, "source": source, "id": doc_id, "relation": relation})
        return out

    def active_heads(self, chars: int) -> list[tuple[str, str, str, str]]:
        """(id, lang, title, first `chars` characters of the text) of every active document, by id (cross-language vectors)."""
        rows = self.db.execute(
            "SELECT id, lang, title, substr(text, 1, ?) FROM documents WHERE status = 'active' ORDER BY id", [chars]
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # ==== end of search section ====

    # ==== performance section (owner: performance issue 7; bench bulk loading, index sizing) ====

    def embedding_count(self) -> int:
        """Number of chunks with an embedding: the size the vector index is built for."""
        return int(self.db.execute("SELECT COUNT(*) FROM chunks WHERE embedding IS NOT NULL").fetchone()[0])

    def bulk_load(
        self, documents: Sequence[dict[str, Any]], chunks: Sequence[tuple[int, str, int, str, str, bytes, str]],
        tags: Sequence[tuple[str, int, float]] = (), keyword_rows: Sequence[tuple[int, str, str]] | None = None,
    ) -> None:
        """Insert many new documents, chunks (id, document_id, seq, title, text, embedding, model) and auto tags at once.

        For benchmarks and bulk imports of fresh data: no upsert, no per-document transaction, executemany throughout
        (replace_chunks one document at a time is ~10x slower at a million chunks). Chunk hashes are the text's.
        `keyword_rows` (rowid, title, text), when given, are the chunks' keyword rows already analysed by the caller.
        """
        from ssehub.models import content_hash

        stamp = now()
        with self.transaction():
            self.db.conn.executemany(
                """INSERT INTO documents (id, source_id, url, title, text, lang, published, year, type, hash, indexed_hash,
                                          created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(d["id"], d["source_id"], d.get("url", ""), d.get("title", ""), d["text"], d.get("lang", ""),
                  d.get("published"), year_of(d.get("published")), d.get("type", "other"), content_hash(d["text"]),
                  content_hash(d["text"]), stamp, stamp) for d in documents],
            )
            self.db.conn.executemany(
                "INSERT INTO chunks (id, document_id, seq, text, hash, embedding, model) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(c[0], c[1], c[2], c[4], content_hash(c[4]), c[5], c[6]) for c in chunks],
            )
            rows = self._analysed_rows(documents, chunks) if keyword_rows is None else keyword_rows
            self.db.conn.executemany("INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)", rows)
            self.db.conn.executemany(
                "INSERT INTO sdg_tags (document_id, sdg, score, origin) VALUES (?, ?, ?, 'auto')", [tuple(t) for t in tags]
            )

    _version_lock = threading.Lock()  # not self._lock: a search must not wait for another thread's write transaction

    def data_version(self) -> int:
        """A number that changes whenever any connection (this process or another) commits to the store.

        PRAGMA data_version ignores the asking connection's own commits, so it is asked on a connection of its own
        that never writes; cheap enough to ask on every search. Inside `pinned_version` this thread gets the pinned
        number without asking.
        """
        pinned = getattr(self._local, "version", None)
        return pinned if pinned is not None else self._asked_version()

    def _asked_version(self) -> int:
        with self._version_lock:
            db = getattr(self, "_version_db", None)
            try:
                if db is not None:
                    return int(db.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.ProgrammingError:  # closed by `close`: the store is being reopened
                pass
            db = self._version_db = self._connect()
            return int(db.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def pinned_version(self, version: int | None = None) -> Iterator[int]:
        """Answer `data_version` in this thread with one number for the block (`version`, or the current one): a search
        asks it ~6 times (catalog, keyword engine, keyword pool); one answer also keeps its parts on one version. The
        asks go through one lock and a SQLite call that releases the GIL: with 32 searches at once, each ask was a wait
        and a thread hand-off. Nested blocks keep the outer number."""
        outer = getattr(self._local, "version", None)
        if outer is not None:
            yield outer
            return
        self._local.version = self.data_version() if version is None else version
        try:
            yield self._local.version
        finally:
            self._local.version = None

    def catalog_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """One consistent snapshot of what search filters and counts on, for an in-memory copy (searchapi/catalog.py).

        documents: (id, searchable, lang, source_id, type, year, published); chunks: (id, document_id);
        sdgs: (document_id, sdg) of the effective tags.
        """
        db = self.db
        own = not db.conn.in_transaction
        if own:
            db.execute("BEGIN")  # a read transaction: the three reads see the same commit
        try:
            docs = db.execute(
                "SELECT id, status = 'active' AND hidden = 0, lang, source_id, type, year, published FROM documents"
            ).fetchall()
            chunks = db.execute("SELECT id, document_id FROM chunks").fetchall()
            sdgs = db.execute("SELECT document_id, sdg FROM effective_tags").fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        return {"documents": docs, "chunks": chunks, "sdgs": sdgs}

    # ==== end of performance section ====

    # ==== keyword engine section (issue 7: an in-memory bm25 over chunks_fts, searchapi/keyword.py) ====

    def keyword_rows(self) -> tuple[str, list[tuple[int, str, str]]]:
        """The keyword table's CREATE statement (its tokenizer) and every row (rowid, title, text) as indexed, analysed."""
        db = self.db
        own = not db.conn.in_transaction
        if own:
            db.execute("BEGIN")  # one snapshot: the rows and the statement agree
        try:
            schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()[0]
            rows = db.execute("SELECT rowid, title, text FROM chunks_fts").fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        return schema, rows

    @staticmethod
    def fts_tokens(schema: str, texts: Sequence[str]) -> list[list[str]]:
        """The tokens FTS5 makes of each text under the keyword table's tokenizer (an in-memory copy of the table)."""
        mem = sqlite3.connect(":memory:")
        try:
            mem.execute(schema)
            mem.execute("CREATE VIRTUAL TABLE tokens_of USING fts5vocab(chunks_fts, 'instance')")
            mem.executemany("INSERT INTO chunks_fts (rowid, title, text) VALUES (?, '', ?)", list(enumerate(texts, 1)))
            out: list[list[str]] = [[] for _ in texts]
            for term, doc in mem.execute("SELECT term, doc FROM tokens_of ORDER BY doc, offset"):
                out[doc - 1].append(term)
            return out
        finally:
            mem.close()

    # ==== end of keyword engine section ====

    # --- search at scale (session 3) ---

    def bulk_load_analysed(
        self, documents: Sequence[dict[str, Any]], chunks: Sequence[tuple[int, str, int, str, str, bytes, str]],
        tags: Sequence[tuple[str, int, float]], keyword_rows: Sequence[tuple[int, str, str]],
    ) -> None:
        """`bulk_load` with the chunks' keyword rows (rowid, title, text) already analysed by the caller (the bench's
        synthetic corpus analyses each distinct word once instead of every word of a million passages)."""
        self.bulk_load(documents, chunks, tags, keyword_rows)

    def keyword_stamp(self) -> str:
        """A fingerprint of the keyword table's content: its schema, FTS5's structure record (whose cookie grows with
        every write to the table) and its averages record (row and token totals). Equal stamps, equal bm25 inputs."""
        import hashlib

        db = self.db
        own = not db.conn.in_transaction
        if own:
            db.execute("BEGIN")  # one snapshot of the three
        try:
            schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()
            blocks = db.execute("SELECT id, block FROM chunks_fts_data WHERE id IN (1, 10) ORDER BY id").fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        digest = hashlib.sha256((schema[0] if schema else "").encode())
        for rowid, block in blocks:
            digest.update(b"%d:%d:" % (rowid, len(block)) + bytes(block))
        return digest.hexdigest()[:32]

    def catalog_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """`catalog_rows` plus, in the same read transaction, the documents that search hits have links for:
        parents: (attachment id, its page's id); copies: (document id,) of documents with another URL in `locations`;
        active: [(number of active documents,)] (`counts()["documents"]`, which /health reports)."""
        db = self.db
        own = not db.conn.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            rows = self.catalog_rows()
            rows["parents"] = db.execute("SELECT id, parent_id FROM documents WHERE parent_id IS NOT NULL").fetchall()
            rows["copies"] = db.execute(
                "SELECT DISTINCT l.document_id FROM locations l JOIN documents d ON d.id = l.document_id WHERE l.url != d.url"
            ).fetchall()
            rows["active"] = db.execute("SELECT COUNT(*) FROM documents WHERE status = 'active'").fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        return rows

    # --- end of search at scale (session 3) ---


def _begin_immediate(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """BEGIN IMMEDIATE, retried while another statement of this connection holds an older snapshot.

    SQLite answers that case (SQLITE_BUSY_SNAPSHOT) at once, without calling the busy handler, so the
    busy timeout alone does not make a curator write wait for a search that is still reading.
    """
    import time

    deadline = time.monotonic() + wait
    pause = 0.005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def process_alive(pid: int) -> bool:
    """Whether a process of this machine exists (someone else's counts: it is alive, only not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
