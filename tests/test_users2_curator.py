"""Round 2 of the users' audit, a curator's files: sources.yaml with the mistakes people make, and JSON lines from
mixed tools. Each problem names the line to fix; nothing is written from a file that is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssehub.cli import cli
from ssehub.importer import import_jsonl
from ssehub.models import document_id
from ssehub.store import Store

ENTRY = "  - id: {id}\n    kind: feed\n    url: https://example.org/{id}/feed\n"


@pytest.mark.parametrize(("extra", "says"), [
    ("    delay: fast\n", "source b: field delay: Input should be a valid number"),
    ("    dealy: 2\n", "source b: field dealy: unknown field"),
    ("    max_documents: 0\n", "source b: field max_documents: Input should be greater than or equal to 1"),
    ("    enabled: nope\n", "source b: field enabled: Input should be a valid boolean"),
    ("    exclude: ['(unclosed']\n", "source b: field exclude: '(unclosed' is not a valid regular expression"),
])
def test_a_bad_field_names_its_line(tmp_path: Path, extra: str, says: str) -> None:
    """A file of many sources has many `delay:` lines: the message named the source and the field, not the line."""
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n" + ENTRY.format(id="a") + ENTRY.format(id="b") + extra, encoding="utf-8")
    data = tmp_path / "data"
    for command in (["sources", "check"], ["harvest"]):
        result = CliRunner().invoke(cli, ["--data", str(data), "--sources", str(sources), *command])
        assert result.exit_code == 1 and says in result.output and "(line 8)" in result.output, result.output
    assert not data.exists()  # refused before anything is written


def test_a_duplicate_id_names_both_lines_and_tabs_say_to_use_spaces(tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n" + ENTRY.format(id="a") + ENTRY.format(id="b") + ENTRY.format(id="a"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--sources", str(sources), "sources", "check"])
    assert result.exit_code == 1 and "duplicate id 'a' (line 8; first at line 2): rename one" in result.output
    sources.write_text("sources:\n  - id: a\n    kind: feed\n\turl: https://example.org/feed\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--sources", str(sources), "sources", "check"])
    assert result.exit_code == 1 and "line 4" in result.output and "indent with spaces, not tabs" in result.output


def test_lines_from_mixed_tools_are_read_or_refused_with_what_to_do(tmp_path: Path) -> None:
    """Files joined with `cat` carry a byte-order mark at each join: that line's document was lost ("Unexpected UTF-8
    BOM"). A line in Latin-1 said "'utf-8' codec can't decode byte 0xe9 in position 24"; an unclosed string "Invalid
    control character" (the line end read as part of it)."""
    good = {"id": "1", "text": "Coopératives de femmes au Sénégal."}
    path = tmp_path / "joined.jsonl"
    path.write_bytes(b"\n".join([
        json.dumps(good, ensure_ascii=False).encode(),
        b"\xef\xbb\xbf" + json.dumps({"id": "2", "text": "From the second file."}).encode(),
        json.dumps({"id": "3", "text": "Café équitable"}, ensure_ascii=False).encode("latin-1"),
        b'{"id": "4", "text": "unclosed',
    ]) + b"\n")
    store = Store(tmp_path / "s.db")
    report = import_jsonl(store, path, "mixed")
    assert (report.new, report.skipped) == (2, 2)
    assert store.document(document_id("mixed", "2"))["text"] == "From the second file."
    assert report.errors[0].startswith("line 3: not UTF-8 text (byte 0xe9 at column 25): save the file as UTF-8")
    assert report.errors[1] == "line 4: not valid JSON: Unterminated string starting at column 21"
    again = import_jsonl(store, path, "mixed")  # nothing stored is lost or doubled by a second import
    assert (again.new, again.unchanged, again.skipped) == (0, 2, 2) and store.counts()["documents"] == 2
    store.close()


@pytest.mark.parametrize(("content", "says"), [
    ('[\n  {"id": "1", "text": "a"},\n  {"id": "2", "text": "b"}\n]\n', "a JSON array, not JSON lines"),
    ('[{"id": "1", "text": "a"}, {"id": "2", "text": "b"}]\n', "jq -c '.[]'"),
    ("id,text\n1,hello\n2,world\n", "none of its 3 lines could be imported"),
])
def test_a_file_of_no_usable_line_fails_and_writes_nothing(tmp_path: Path, content: str, says: str) -> None:
    """A JSON array ("export as JSON") or a CSV had every line refused one by one, then '0 new' and exit code 0, and
    an import-only source was created for nothing. It is now one error line, exit 1, and no source."""
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["--data", str(data), "import", str(path), "--source", "mylib"])
    assert result.exit_code == 1 and says in result.output and result.output.count("error: ") == 1, result.output
    store = Store(data / "ssehub.db")
    try:
        assert "mylib" not in store.source_ids() and store.counts()["documents"] == 0
    finally:
        store.close()
