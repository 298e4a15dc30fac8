"""`ssehub backup` and `ssehub restore`: a consistent copy of the store through SQLite's online backup API.

What is copied: the store alone (`ssehub.db`: sources, pages, documents, chunks with their embeddings, SDG tags, runs).
The FAISS files under `index/` are not: they are derived from the embeddings in the store, and `ssehub index` after a
restore rebuilds them without embedding anything again. A restore removes the old index files, so a server can never
pair a restored store with an index of other chunk ids.

The backup runs while harvests, index runs and the server write: SQLite copies one snapshot (a WAL reader blocks
no writer), written to a temporary file that is checked and then renamed into place.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from ssehub.ann import INDEX_FILE, MANIFEST_FILE
from ssehub.errors import StoreError
from ssehub.settings import Settings

log = logging.getLogger(__name__)
REQUIRED_TABLES = {"documents", "chunks", "sources", "sdg_tags", "runs", "meta", "_sqlite_migrations"}


def check_store_file(path: Path) -> dict[str, int]:
    """Counts of a store file, or StoreError when it is not a sound ssehub store."""
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise StoreError(f"{path}: not an SQLite database, so not an ssehub backup")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not REQUIRED_TABLES <= tables or not conn.execute(
                    "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'ssehub' LIMIT 1").fetchone():
                raise StoreError(f"{path}: an SQLite database, but not an ssehub store (missing {sorted(REQUIRED_TABLES - tables)})")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{path}: the database is damaged ({check})")
            return {
                "documents": conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
                "chunks": conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
                "sources": conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0],
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot be read as an ssehub store: {exc}") from None


def _copy(source: Path, dest: Path) -> None:
    """SQLite online backup of `source` into a fresh `dest` (one step: a single consistent snapshot)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()


def _replace(source: Path, dest: Path) -> dict[str, int]:
    """Copy `source` to a temporary file beside `dest`, check it, then rename it over `dest`; StoreError when the
    system refuses (a read-only or full folder, a locked store) rather than sqlite3's bare 'unable to open database
    file'."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        _copy(source, tmp)
        counts = check_store_file(tmp)
        os.replace(tmp, dest)
    except (sqlite3.Error, OSError) as exc:
        _discard(tmp)
        raise StoreError(f"cannot copy {source} to {dest} ({exc}): check that {dest.parent} is writable and has room, "
                         "and that no other command holds the store") from None
    except BaseException:
        _discard(tmp)
        raise
    return counts


def _discard(tmp: Path) -> None:
    """Remove a partial copy, if the folder lets us."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def backup(settings: Settings, dest: Path, force: bool = False) -> dict[str, Any]:
    """Write a consistent copy of the store to `dest` (refuses to overwrite a file without `force`); returns its counts."""
    store = settings.store_path
    if not store.is_file():
        raise StoreError(f"no store at {store}: nothing to back up")
    if dest.exists() and not force:
        raise StoreError(f"{dest} exists: choose another file or pass --force to overwrite it")
    if dest.resolve() == store.resolve():
        raise StoreError(f"{dest} is the store itself: choose another file")
    counts = _replace(store, dest)
    log.info("backed up %s to %s: %s", store, dest, counts)
    return {"file": str(dest), "bytes": dest.stat().st_size, **counts}


def restore(settings: Settings, source: Path, force: bool = False) -> dict[str, Any]:
    """Replace the store with a backup (refuses to replace a store that has documents without `force`).

    Stop `ssehub serve` and harvests first: a process that has the old store open keeps reading it. The old
    index files are removed; `ssehub index` rebuilds them from the restored embeddings.
    """
    counts = check_store_file(source)
    store = settings.store_path
    if store.is_file() and not force and check_store_file(store)["documents"] > 0:
        raise StoreError(f"{store} holds documents: pass --force to replace it with {source} (back it up first)")
    for suffix in ("-wal", "-shm"):  # a stale WAL beside the new file would be replayed into it
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    _replace(source, store)
    for name in (MANIFEST_FILE, INDEX_FILE):  # manifest first: a server never sees a manifest without its index
        (settings.index_dir / name).unlink(missing_ok=True)
    log.info("restored %s from %s: %s", store, source, counts)
    return {"file": str(store), **counts}
