"""A researcher scripting against the API and the CLI: filters as people type them, citation files their tools read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from ssehub.cli import cli


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    app = create_app(search_corpus.settings, embedder=search_corpus.embedder)
    with TestClient(app) as c:
        yield c


def _ids(body: dict) -> list[str]:
    return [h["id"] for h in body["results"]]


@pytest.mark.parametrize(("typed", "stored"), [
    ({"lang": "EN"}, {"lang": "en"}), ({"lang": ["Fr", "ES"]}, {"lang": ["fr", "es"]}),
    ({"source": "UNSSE"}, {"source": "unsse"}), ({"type": "Report"}, {"type": "report"}),
])
def test_filter_values_in_any_case_find_what_lower_case_finds(client: TestClient, typed: dict, stored: dict) -> None:
    """Language codes are case-insensitive (BCP 47) and ids and types are stored in lower case: `lang=EN` answered
    200 with 0 documents, so a script written with `EN` silently got nothing."""
    want = client.get("/api/search", params={"q": "cooperatives", "limit": 1, **stored}).json()
    got = client.get("/api/search", params={"q": "cooperatives", "limit": 1, **typed}).json()
    assert want["total"] > 1 and got["total"] == want["total"] and _ids(got) == _ids(want) and got["next_cursor"]
    assert got["facets"] == want["facets"]
    # the cursor of one spelling pages the other: both are the same search
    page2 = client.get("/api/search", params={"q": "cooperatives", "limit": 1, "cursor": got["next_cursor"], **stored})
    assert page2.status_code == 200 and not set(_ids(page2.json())) & set(_ids(want))
    export = client.get("/api/export", params={"q": "cooperatives", "format": "jsonl", **typed})
    assert export.headers["x-total-count"] == str(want["total"])


def test_cli_language_filter_in_any_case(search_corpus: SearchCorpus) -> None:
    args = ["--data", str(search_corpus.settings.data_dir), "search", "cooperatives", "--mode", "keyword", "--json"]
    env = {"SSEHUB_MODEL_PATH": "hashing"}
    lower = CliRunner(env=env).invoke(cli, [*args, "--lang", "fr"])
    upper = CliRunner(env=env).invoke(cli, [*args, "--lang", "FR"])
    assert lower.exit_code == upper.exit_code == 0, upper.output
    assert json.loads(lower.output)["total"] > 0 and json.loads(upper.output) == json.loads(lower.output)


def test_export_follows_sort_by_date(client: TestClient) -> None:
    """`sort` is a search parameter, and the export takes the search's parameters: sort=date was ignored, so a
    'newest first' export came in relevance order."""
    ids, cursor = [], None
    while True:
        page = client.get("/api/search", params={"q": "cooperatives", "sort": "date", "limit": 5, "cursor": cursor}).json()
        ids += _ids(page)
        if not (cursor := page["next_cursor"]):
            break
    lines = client.get("/api/export", params={"q": "cooperatives", "sort": "date", "format": "jsonl"}).text.splitlines()
    exported = [json.loads(line) for line in lines]
    assert [r["id"] for r in exported] == ids and len(ids) > 2
    dates = [r["published"] for r in exported if r["published"]]
    assert dates == sorted(dates, reverse=True)
    assert client.get("/api/export", params={"sort": "oldest"}).status_code == 422


def _bibtex_names(field: str) -> list[str]:
    """The names of an author field, split on ` and ` outside braces, as BibTeX does."""
    names, depth, start = [], 0, 0
    for i, c in enumerate(field):
        depth += (c == "{") - (c == "}")
        if depth == 0 and field.startswith(" and ", i):
            names.append(field[start:i])
            start = i + 5
    return [*names, field[start:]]


def test_bibtex_names_every_tool_can_split() -> None:
    """A harvested Author field can hold several people in one string ('Smith, J., Doe, K.'): BibTeX refuses a name
    with more than two commas ("Too many commas in name"), so it is written as one literal (braced) name."""
    import bibtexparser
    from bibtexparser.customization import splitname

    from searchapi.export import bibtex_entries

    record = {"id": "x1", "title": "Housing & land: 50% {draft}", "published": None, "type": "report", "source": "s",
              "authors": ["Smith, J., Doe, K., Roe, R.", "Müller, Anne-Sophie", "Ørsted and Sons Housing", "von Last, Jr, First"]}
    text = "".join(bibtex_entries([record]))
    entry = bibtexparser.loads(text).entries[0]
    names = [splitname(n) for n in _bibtex_names(entry["author"])]
    assert len(names) == 4 and names[0]["last"] == ["{Smith, J., Doe, K., Roe, R.}"]
    assert names[1] == {"first": ["Anne-Sophie"], "last": ["Müller"], "von": [], "jr": []}
    assert names[2]["last"] == ["{Ørsted and Sons Housing}"]
    assert names[3] == {"first": ["First"], "last": ["Last"], "von": ["von"], "jr": ["Jr"]}
    assert "year" not in entry and entry["title"] == r"Housing \& land: 50\% \{draft\}"


@pytest.mark.parametrize("args", [["status"], ["search", "cooperatives", "--mode", "keyword", "--json"]])
def test_output_piped_into_a_reader_that_stops_early_is_quiet(search_corpus: SearchCorpus, args: list[str]) -> None:
    """`ssehub status | head -4` printed "error: Broken pipe: check the path and its permissions": the reader left,
    no path is wrong. The command now stops quietly."""
    import subprocess
    import sys

    env = {**os.environ, "SSEHUB_MODEL_PATH": "hashing"}
    proc = subprocess.Popen([sys.executable, "-m", "ssehub", "--data", str(search_corpus.settings.data_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before the first line
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert stderr == "" and proc.returncode == 1


@pytest.mark.parametrize("doc_id", ["hidden-1", "gone-1", "no-such-document"])
def test_a_document_out_of_the_public_api_is_404_on_every_document_path(client: TestClient, doc_id: str) -> None:
    """A hidden or withdrawn document was 404 at /api/documents/{id} but 200 with no results at .../similar, which
    told a scraper that it exists."""
    for path in (f"/api/documents/{doc_id}", f"/api/documents/{doc_id}/similar"):
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"detail": f"no document {doc_id!r}"}, path
    assert client.get("/api/documents/coop-1/similar").json()["results"]


def test_a_body_past_the_limit_is_413_in_the_error_shape(client: TestClient) -> None:
    """The 413 was the plain text "Content Too Large": a script reading `detail` from every 4xx failed on it."""
    from searchapi.app import MAX_BODY_BYTES

    big = json.dumps({"text": "cooperative " * (MAX_BODY_BYTES // 12 + 10)})

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536].encode()

    for body in (big, chunks()):  # with a Content-Length, and chunked without one
        r = client.post("/api/tag", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers["content-type"] == "application/json"
        assert f"over {MAX_BODY_BYTES} bytes" in r.json()["detail"]
    assert client.post("/api/tag", json={"text": "women cooperatives"}).status_code == 200


def test_goal_names_in_a_language_code_of_any_case(client: TestClient) -> None:
    """`/api/sdgs?lang=FR` was a 422 while `lang=FR` filters a search."""
    fr = client.get("/api/sdgs", params={"lang": "fr"}).json()
    assert client.get("/api/sdgs", params={"lang": "FR"}).json() == fr and fr[0]["short"] == "Pas de pauvreté"
    assert client.get("/api/sdgs", params={"lang": "xx"}).status_code == 422


@pytest.mark.parametrize("command", [["serve"], ["demo"]])
def test_a_port_in_use_is_one_line_before_any_work(tmp_path, command: list[str]) -> None:
    """`ssehub serve` on a taken port printed "serving http://..." and then uvicorn's "ERROR: [Errno 98]", exit 3;
    `ssehub demo` found out only after harvesting and indexing."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--data", str(tmp_path / "data"), *command, "--port", str(port)])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use: stop the server listening there or pass another --port (SSEHUB_PORT)"]
    assert not (tmp_path / "data").exists()  # nothing was harvested or created
