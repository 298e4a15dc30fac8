"""`ssehub backup` / `ssehub restore`: a consistent copy taken while writers run, and a round trip that searches the same."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from test_reliability_crash import check_consistent, cli, hashing_env, write_jsonl

from searchapi.search import Searcher
from ssehub.backup import backup, check_store_file
from ssehub.embed import HashingEmbedder
from ssehub.errors import StoreError
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.store import Filters, Store

pytestmark = pytest.mark.timeout(120)
QUERIES = [("cooperative housing", "hybrid"), ("women credit", "keyword"), ("climate water", "semantic"), ("", "hybrid")]


def ssehub(data: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cli(data, *args), env=hashing_env(), capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 0) == ok, (proc.stdout, proc.stderr)
    return proc


def searches(data: Path) -> list[dict]:
    store = Store(data / "ssehub.db")
    try:
        searcher = Searcher(store, HashingEmbedder(), data / "index")
        return [searcher.search(q, Filters(), mode=m, limit=20) for q, m in QUERIES]
    finally:
        store.close()


def test_backup_and_restore_round_trip_gives_the_same_search_results(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ssehub(data, "import", str(write_jsonl(tmp_path / "docs.jsonl", 40)), "--source", "lib")
    ssehub(data, "index")
    before = searches(data)
    assert before[0]["total"] > 0
    copy = tmp_path / "backup.db"
    out = ssehub(data, "backup", str(copy)).stdout
    assert "40 documents" in out and copy.is_file()
    assert "exists" in ssehub(data, "backup", str(copy), ok=False).stderr  # no silent overwrite
    # Change the live store after the backup: the best hit of the first query gets other text, and is re-indexed.
    store = Store(data / "ssehub.db")
    store.upsert_document(Document(id=searches(data)[0]["results"][0]["id"], source_id="lib", text="overwritten"))
    store.close()
    ssehub(data, "index")
    assert searches(data) != before
    refused = ssehub(data, "restore", str(copy), ok=False).stderr
    assert "--force" in refused
    ssehub(data, "restore", str(copy), "--force")
    assert not (data / "index" / "manifest.json").exists()  # no index of other chunk ids is left to serve
    indexed = ssehub(data, "index").stdout
    assert "embedded 0" in indexed  # the FAISS file is rebuilt from the restored embeddings
    assert searches(data) == before
    check_consistent(data, expected_documents=40)


def test_restore_refuses_what_is_not_an_ssehub_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    for path, message in ((text, "not an SQLite database"), (other, "not an ssehub store"), (tmp_path / "none.db", "no such file")):
        assert message in ssehub(data, "restore", str(path), ok=False).stderr
    assert not (data / "ssehub.db").exists()


def test_backup_while_writers_run_is_a_consistent_snapshot(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_path="hashing")
    store = Store(settings.store_path)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        """Each document and its chunk in one transaction, as the indexer writes them."""
        own = Store(settings.store_path)
        i = 0
        while not stop.is_set():
            with own.transaction():
                own.upsert_document(Document(id=f"w{i}", source_id="t", text=f"text {i}"))
                own.db.execute("INSERT INTO chunks (document_id, seq, text, hash) VALUES (?, 0, ?, ?)", [f"w{i}", f"text {i}", str(i)])
            written.append(i)
            i += 1
        own.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = []
        for n in range(5):
            while len(written) < 50 * (n + 1):
                stop.wait(0.01)
            copies.append(backup(settings, tmp_path / f"copy{n}.db"))
    finally:
        stop.set()
        thread.join()
        store.close()
    for copy in copies:
        counts = check_store_file(Path(copy["file"]))
        assert counts["documents"] == counts["chunks"] > 0  # never a document without its chunk
    assert [c["documents"] for c in copies] == sorted(c["documents"] for c in copies)
    with pytest.raises(StoreError, match="exists"):
        backup(settings, tmp_path / "copy0.db")
