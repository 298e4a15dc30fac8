"""`ssehub import`: good lines kept, bad lines reported with their number and skipped."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ssehub.errors import ImportFormatError
from ssehub.importer import import_jsonl
from ssehub.models import document_id
from ssehub.store import Store


def write_lines(path, lines: list[object]) -> None:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")


def test_import_keeps_good_lines_and_reports_bad_ones(tmp_path) -> None:
    f = tmp_path / "in.jsonl"
    write_lines(f, [
        {"id": "1", "text": "Mutual health insurance in Senegal.", "title": "Mutuals", "lang": "en",
         "published": "2020-03-01", "authors": ["A. Diallo"], "type": "report"},
        "{not json",
        {"id": "2"},
        {"id": "3", "text": "x", "published": "2020-13-45"},
        {"id": "4", "text": "x", "authors": "not a list"},
        {"id": 5, "text": "Numeric ids are fine."},
        {"id": "1", "text": "same id twice"},
        [1, 2],
    ])
    store = Store(tmp_path / "s.db")
    report = import_jsonl(store, f, "lib")
    assert (report.read, report.new, report.skipped) == (8, 2, 6)
    assert [e.split(":")[0] for e in report.errors] == ["line 2", "line 3", "line 4", "line 5", "line 7", "line 8"]
    doc = store.document(document_id("lib", "1"))
    assert doc["authors"] == ["A. Diallo"] and doc["year"] == 2020 and doc["source_id"] == "lib"
    assert "lib" in store.source_ids()
    again = import_jsonl(store, f, "lib")
    assert (again.new, again.unchanged) == (0, 2)


def test_import_rejects_bad_source_id_and_missing_file(tmp_path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(ImportFormatError):
        import_jsonl(store, tmp_path / "none.jsonl", "lib")
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(ImportFormatError):
        import_jsonl(store, tmp_path / "a.jsonl", "Bad-Id")


def test_cli_import_exit_code_and_messages(tmp_path) -> None:
    f = tmp_path / "in.jsonl"
    write_lines(f, [{"id": "a", "text": "Fair trade."}, "oops"])
    cmd = [sys.executable, "-m", "ssehub", "--data", str(tmp_path / "d"), "import", str(f), "--source", "lib"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "line 2:" in out.stderr and "new 1" in out.stdout and "skipped 1" in out.stdout
    bad = subprocess.run([*cmd[:-2], "--source", "BAD"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


def test_a_byte_order_mark_and_windows_line_ends_cost_no_line(tmp_path) -> None:
    """Excel and PowerShell write UTF-8 with a byte-order mark: the first line was refused ("Unexpected UTF-8 BOM
    (decode using utf-8-sig)") and its document lost. A BOM later in the file (files joined with `cat`) was an error
    of its line, and its document lost too: it is dropped wherever a line starts with one."""
    f = tmp_path / "bom.jsonl"
    first, second = {"id": "1", "text": "Première ligne, écrite par Excel."}, {"id": "2", "text": "Second line."}
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(first).encode() + b"\r\n" + json.dumps(second).encode() + b"\r\n"
                  + b"\xef\xbb\xbf" + json.dumps({"id": "3", "text": "x"}).encode() + b"\r\n")
    store = Store(tmp_path / "s.db")
    report = import_jsonl(store, f, "excel")
    assert (report.new, report.skipped) == (3, 0) and not report.errors
    assert store.document(document_id("excel", "3"))["text"] == "x"
    assert store.document(document_id("excel", "1"))["text"] == first["text"]


def test_tag_jsonl_reads_a_first_line_behind_a_byte_order_mark(tmp_path) -> None:
    """`ssehub tag --jsonl` refused the first line of a file with a BOM as `ssehub import` did."""
    from ssehub.tagging import _inputs

    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": 1, "text": "women cooperative"}\r\n{"id": 2, "text": "fair trade"}\r\n')
    assert [(i, t) for i, t, _ in _inputs(None, path)] == [(1, "women cooperative"), (2, "fair trade")]
