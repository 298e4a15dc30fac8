"""Numbered schema migrations of the store (sqlite-utils Migrations); append, never edit."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("ssehub")


def _run(db: Database, script: str) -> None:
    """Run a script statement by statement, inside the migration's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m001_create_tables(db: Database) -> None:
    """Sources, pages, documents, chunks (with embeddings), SDG tags, runs and their errors."""
    _run(
        db,
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}',
            origin TEXT NOT NULL DEFAULT 'yaml', enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE TABLE pages (
            url TEXT PRIMARY KEY, source_id TEXT NOT NULL, document_id TEXT,
            status INTEGER, etag TEXT, last_modified TEXT, content_hash TEXT,
            fetched_at TEXT, error TEXT
        );
        CREATE INDEX pages_source ON pages(source_id);
        CREATE TABLE documents (
            id TEXT PRIMARY KEY, source_id TEXT NOT NULL, url TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '', text TEXT NOT NULL, lang TEXT NOT NULL DEFAULT '',
            published TEXT, year INTEGER, authors TEXT NOT NULL DEFAULT '[]',
            type TEXT NOT NULL DEFAULT 'other', parent_id TEXT, licence TEXT NOT NULL DEFAULT '',
            extra TEXT NOT NULL DEFAULT '{}', hash TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active', hidden INTEGER NOT NULL DEFAULT 0,
            manual_sdgs TEXT, indexed_hash TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE INDEX documents_source ON documents(source_id);
        CREATE INDEX documents_published ON documents(published);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT, document_id TEXT NOT NULL, seq INTEGER NOT NULL,
            text TEXT NOT NULL, hash TEXT NOT NULL, embedding BLOB, model TEXT,
            UNIQUE(document_id, seq)
        );
        CREATE INDEX chunks_hash ON chunks(hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, text, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TABLE sdg_tags (
            document_id TEXT NOT NULL, sdg INTEGER NOT NULL, score REAL NOT NULL,
            evidence TEXT NOT NULL DEFAULT '', targets TEXT NOT NULL DEFAULT '[]',
            origin TEXT NOT NULL DEFAULT 'auto', PRIMARY KEY (document_id, sdg, origin)
        );
        CREATE INDEX sdg_tags_sdg ON sdg_tags(sdg);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL DEFAULT 'harvest',
            sources TEXT NOT NULL DEFAULT '[]', started_at TEXT NOT NULL, finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running', counts TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE run_errors (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, source_id TEXT NOT NULL,
            url TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', at TEXT NOT NULL
        );
        CREATE INDEX run_errors_run ON run_errors(run_id);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


@migrations()
def m002_document_locations(db: Database) -> None:
    """Harvester: every URL a document is found at, MinHash signatures and LSH bands for near-duplicates,
    per-source harvest state (incremental watermarks), and the process that runs a harvest."""
    _run(
        db,
        """
        CREATE TABLE locations (
            url TEXT PRIMARY KEY, document_id TEXT NOT NULL, source_id TEXT NOT NULL,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL
        );
        CREATE INDEX locations_document ON locations(document_id);
        CREATE TABLE minhashes (document_id TEXT PRIMARY KEY, signature BLOB NOT NULL);
        CREATE TABLE minhash_bands (key INTEGER NOT NULL, document_id TEXT NOT NULL, PRIMARY KEY (key, document_id));
        CREATE INDEX minhash_bands_document ON minhash_bands(document_id);
        CREATE TABLE harvest_state (
            source_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source_id, key)
        );
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN host TEXT
        """
    )
    # Documents stored before this migration are found at their own URL.
    db.execute(
        """INSERT OR IGNORE INTO locations (url, document_id, source_id, first_seen, last_seen)
           SELECT url, id, source_id, created_at, updated_at FROM documents WHERE url != ''"""
    )


@migrations()
def m004_keyword_vocabulary(db: Database) -> None:
    """Search: the keyword index's vocabulary (term, documents, hits), for typo tolerance in the search box."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row')")


@migrations()
def m006_analysed_keyword_index(db: Database) -> None:
    """Search: the keyword index holds each word folded and stemmed in its document's language (ssehub/analyze.py)
    instead of FTS5's English `porter` for every language; rebuilt here from the stored chunk texts, no re-embedding."""
    from ssehub.analyze import analyse

    db.execute("DROP TABLE IF EXISTS chunks_vocab")
    db.execute("DROP TABLE IF EXISTS chunks_fts")
    # The text arrives analysed; unicode61 splits it at the spaces, keeps the `_` of language tags ("fr_cooper"),
    # and folds raw FTS5 queries as the analysis does.
    db.execute(
        """CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize = "unicode61 remove_diacritics 2 tokenchars '_'")"""
    )
    rows = db.execute(
        """SELECT c.id, coalesce(d.title, ''), coalesce(d.lang, ''), c.text FROM chunks c
           LEFT JOIN documents d ON d.id = c.document_id ORDER BY c.id"""
    )
    while batch := rows.fetchmany(2000):
        db.conn.executemany(
            "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
            [(cid, analyse(title, lang), analyse(text, lang)) for cid, title, lang, text in batch],
        )
    db.execute("CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row')")


@migrations()
def m007_documents_parent_index(db: Database) -> None:
    """Search: a page's attachments found by index (`Store.other_locations` for search hits, `child_documents`), not by
    scanning every document: 152 ms of CPU for a page of 10 hits at a million passages, 17 ms at 100k."""
    db.execute("CREATE INDEX IF NOT EXISTS documents_parent ON documents(parent_id)")
