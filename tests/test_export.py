"""GET /api/export: whole result sets in CSV, BibTeX, RIS and JSON lines, each read back by a standard parser."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.export import bibtex_entries, csv_lines, latex, ris_records

TRICKY = {"id": "odd:1/ü", "title": "50% of {braces} & $money_#1 ~ ^ \\ \"quotes\", commas\nnewline",
          "authors": ["Ana & Bo", "Centre for Research and Action", "=cmd()"], "published": "2020-02-03", "lang": "en",
          "type": "report", "source": "unsse", "url": "https://x.example/a b?q=1%20&r={x}#frag",
          "sdgs": [{"sdg": 5, "score": 0.9}], "score": 0.5, "abstract": "Line one\r\nline two\ttab \x07bell"}


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def all_ids(client: TestClient, params: dict) -> list[str]:
    """Every id of a search, paged through with the cursor as a client would."""
    params, ids = dict(params, limit=7), []
    while True:
        body = client.get("/api/search", params=params).json()
        ids += [h["id"] for h in body["results"]]
        if not body["next_cursor"]:
            return ids
        params["cursor"] = body["next_cursor"]


@pytest.mark.parametrize("params", [{}, {"q": "cooperatives solidarity", "mode": "keyword"}, {"q": "economy"}, {"sdg": [8, 1]}])
def test_csv_holds_the_whole_result_set_in_order(client: TestClient, params: dict) -> None:
    r = client.get("/api/export", params=params | {"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="ssehub-export.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = all_ids(client, params)
    assert [row["id"] for row in rows] == expected and int(r.headers["x-total-count"]) == len(expected)
    assert len(expected) > 0


def test_export_goes_past_the_first_page_of_100(search_corpus: SearchCorpus, client: TestClient) -> None:
    for i in range(130):
        search_corpus.store.upsert_document(__import__("ssehub.models", fromlist=["Document"]).Document(
            id=f"bulk-{i:03d}", source_id="bulk", text=f"Bulk note {i} on mutual aid.", title=f"Bulk {i}"))
    lines = client.get("/api/export", params={"format": "jsonl", "source": "bulk"}).text.splitlines()
    assert len(lines) == 130 and len({json.loads(x)["id"] for x in lines}) == 130


def test_csv_fields_and_formula_guard() -> None:
    text = "".join(csv_lines([TRICKY]))
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["title"] == '50% of {braces} & $money_#1 ~ ^ \\ "quotes", commas newline'
    assert row["authors"] == "Ana & Bo; Centre for Research and Action; =cmd()" and row["sdgs"] == "5" and row["year"] == "2020"
    (guarded,) = list(csv.DictReader(io.StringIO("".join(csv_lines([TRICKY | {"title": "=HYPERLINK(1)"}])))))
    assert guarded["title"] == "'=HYPERLINK(1)"


def test_bibtex_parses_with_bibtexparser(client: TestClient) -> None:
    bibtexparser = pytest.importorskip("bibtexparser", reason="bibtexparser is not installed")
    text = client.get("/api/export", params={"format": "bibtex", "q": "cooperatives", "mode": "keyword"}).text
    db = bibtexparser.loads(text)
    expected = all_ids(client, {"q": "cooperatives", "mode": "keyword"})
    assert len(db.entries) == len(expected) and len({e["ID"] for e in db.entries}) == len(expected)
    coop = next(e for e in db.entries if e["ID"] == "coop-2")
    assert coop["ENTRYTYPE"] == "techreport" and coop["title"] == "Les coopératives de femmes" and coop["year"] == "2019"
    assert coop["keywords"] == "SDG 8, SDG 5" and coop["author"] == "A. Author"


def test_bibtex_escapes_special_characters() -> None:
    bibtexparser = pytest.importorskip("bibtexparser", reason="bibtexparser is not installed")
    text = "".join(bibtex_entries([TRICKY, TRICKY | {"type": "article"}]))
    db = bibtexparser.loads(text)
    first, second = db.entries
    assert first["ID"] == "odd_1_u" and second["ID"] == "odd_1_u_2" and second["ENTRYTYPE"] == "misc"
    assert first["title"] == latex(TRICKY["title"])
    for special in "&%$#_{}~^":  # every special character is escaped, so LaTeX reads it as text
        assert re.search(r"(?<!\\)" + re.escape(special), first["title"].replace(r"\textasciitilde{}", "").replace(
            r"\textasciicircum{}", "").replace(r"\textbackslash{}", "").replace("\\" + special, "")) is None, special
    assert first["author"] == r"Ana \& Bo and {Centre for Research and Action} and =cmd()"
    assert "{" not in first["url"] and r"r=\%7Bx\%7D\#frag" in first["url"] and " " not in first["url"]


def test_ris_parses_with_rispy_and_a_strict_reader(client: TestClient) -> None:
    text = client.get("/api/export", params={"format": "ris", "sdg": 8}).text
    records, current = [], None
    for line in text.splitlines():  # strict: every non-blank line is `XX  - value`, records run TY .. ER
        if not line:
            continue
        m = re.fullmatch(r"([A-Z][A-Z0-9])  - (.*)", line)
        assert m, repr(line)
        tag, value = m.groups()
        if tag == "TY":
            assert current is None
            current = {"TY": value}
        elif tag == "ER":
            records.append(current)
            current = None
        else:
            current.setdefault(tag, []).append(value)
    assert current is None and [r["ID"][0] for r in records] == all_ids(client, {"sdg": 8})
    rispy = pytest.importorskip("rispy", reason="rispy is not installed")
    parsed = rispy.loads(text)
    assert len(parsed) == len(records) and parsed[0]["type_of_reference"] == "RPRT"
    tricky = rispy.loads("".join(ris_records([TRICKY])))[0]
    assert tricky["title"] == TRICKY["title"].replace("\n", " ") and tricky["abstract"] == "Line one line two tab bell"
    assert tricky["authors"] == TRICKY["authors"] and tricky["keywords"] == ["SDG 5"] and tricky["date"] == "2020/02/03/"


def test_jsonl_line_by_line(client: TestClient) -> None:
    r = client.get("/api/export", params={"format": "jsonl", "lang": "fr"})
    records = [json.loads(line) for line in r.text.splitlines()]
    assert [x["id"] for x in records] == all_ids(client, {"lang": "fr"})
    assert all(x["lang"] == "fr" and "abstract" in x and "snippet" not in x for x in records)


def test_export_errors(client: TestClient, tmp_path) -> None:
    assert client.get("/api/export", params={"format": "docx"}).status_code == 422
    assert client.get("/api/export", params={"sdg": 99}).status_code == 422
