"""Round 2 of the users' audit, searching: a store never indexed, a query of exclusions alone, a parameter given twice,
and a CSV export for Excel. Each test failed on the code before it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SEARCH_DOCS, SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.search import Searcher
from ssehub.cli import cli
from ssehub.embed import HashingEmbedder
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.sources import SourceConfig
from ssehub.store import Filters, Store

MODES = ("hybrid", "semantic", "keyword")
ENV = {"SSEHUB_MODEL_PATH": "hashing"}


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def _store(data: Path, docs: int) -> Settings:
    """A store of `docs` harvested-like documents (no chunks, never indexed) under data."""
    settings = Settings(data_dir=data, model_path="hashing")
    store = Store(settings.store_path)
    for doc_id, source, lang, kind, published, _, title, paragraphs in SEARCH_DOCS[:docs]:
        store.upsert_document(Document(id=doc_id, source_id=source, text="\n\n".join(paragraphs), title=title,
                                       url=f"https://example.org/{doc_id}", lang=lang, published=published, type=kind))
    store.close()
    return settings


def test_a_store_never_indexed_says_so_in_every_mode(tmp_path: Path) -> None:
    """Harvested, not yet indexed: hybrid and keyword answered 200 with 0 documents while semantic answered 409 'run
    ssehub index'. Every mode (and the export, and the CLI) now names the reason; browsing lists the documents."""
    settings = _store(tmp_path / "data", 5)
    with TestClient(create_app(settings, embedder=HashingEmbedder())) as c:
        for mode in MODES:
            answer = c.get("/api/search", params={"q": "cooperatives", "mode": mode})
            assert answer.status_code == 409 and "run `ssehub index`" in answer.json()["detail"], (mode, answer.text)
        assert c.get("/api/export", params={"q": "cooperatives", "format": "csv"}).status_code == 409
        assert c.get("/api/search").json()["total"] == 5  # browsing needs no index
    for mode in MODES:
        result = CliRunner(env=ENV).invoke(cli, ["--data", str(settings.data_dir), "search", "cooperatives", "--mode", mode])
        assert result.exit_code == 1 and "none is indexed yet" in result.output and "run `ssehub index`" in result.output


def test_an_empty_store_finds_nothing_in_every_mode(tmp_path: Path) -> None:
    """No document at all: nothing to index and nothing to find. Hybrid and keyword answered 200 with 0 documents, and
    semantic 409 (no index file); all three now answer the empty result."""
    settings = _store(tmp_path / "data", 0)
    with TestClient(create_app(settings, embedder=HashingEmbedder())) as c:
        answers = [c.get("/api/search", params={"q": "cooperatives", "mode": mode}) for mode in MODES]
    assert [a.status_code for a in answers] == [200] * 3 and all(a.json()["total"] == 0 for a in answers)
    assert answers[0].json() == answers[1].json() == answers[2].json()


def test_exclusions_alone_browse_everything_without_them(client: TestClient, search_corpus: SearchCorpus) -> None:
    """`-cooperative` found nothing. It means everything without that word: the browse list, newest first, less the
    documents with it (as `author:x` alone lists that author's documents), in every mode, paged by its cursor."""
    store = search_corpus.store
    every = client.get("/api/search", params={"limit": 100}).json()
    with_word = store.keyword_documents('"cooperative" OR "en_cooper" OR "fr_cooper" OR "es_cooper" OR "pt_cooper"')
    want = [h["id"] for h in every["results"] if h["id"] not in with_word]
    assert 0 < len(want) < every["total"]
    for mode in MODES:
        body = client.get("/api/search", params={"q": "-cooperative", "mode": mode, "limit": 100}).json()
        assert [h["id"] for h in body["results"]] == want and body["total"] == len(want)
        assert all(h["score"] is None for h in body["results"])
    page1 = client.get("/api/search", params={"q": "-cooperative", "limit": 1}).json()
    page2 = client.get("/api/search", params={"q": "-cooperative", "limit": 1, "cursor": page1["next_cursor"]}).json()
    assert [h["id"] for h in page1["results"] + page2["results"]] == want[:2]
    # filters apply; the SQLite path (no catalog) gives the same answer
    slow = Searcher(store, search_corpus.embedder, search_corpus.settings.index_dir)
    slow.catalog.get = lambda: None  # type: ignore[method-assign]
    fast = Searcher(store, search_corpus.embedder, search_corpus.settings.index_dir)
    for filters in (Filters(), Filters(lang=["en"]), Filters(source=["ripess"], year_from=2018)):
        assert fast.search("-cooperative -solidarity", filters, limit=100) == slow.search("-cooperative -solidarity", filters, limit=100)
    assert fast.search("-cooperative", Filters(), limit=100)["results"] == body["results"]


def test_cli_query_of_exclusions_alone(search_corpus: SearchCorpus) -> None:
    """`ssehub search -cooperative` was click's "No such option '-c'": it now says to put the query after `--`,
    which lists what the API lists."""
    data = ["--data", str(search_corpus.settings.data_dir)]
    refused = CliRunner(env=ENV).invoke(cli, [*data, "search", "-cooperative"])
    assert refused.exit_code == 2 and "ssehub search -- -cooperative" in refused.output
    found = CliRunner(env=ENV).invoke(cli, [*data, "search", "--json", "--", "-cooperative"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["total"] == Searcher(search_corpus.store, None, search_corpus.settings.index_dir).search(
        "-cooperative", mode="keyword")["total"] > 0


@pytest.mark.parametrize(("path", "query", "name"), [
    ("/api/search", "q=cooperatives&q=housing", "q"),
    ("/api/search", "q=cooperatives&limit=5&limit=50", "limit"),
    ("/api/search", "mode=keyword&q=x&mode=semantic", "mode"),
    ("/api/search", "year_from=2019&year_from=2020", "year_from"),
    ("/api/export", "format=csv&format=ris", "format"),
    ("/api/documents/coop-1/similar", "limit=2&limit=3", "limit"),
    ("/api/sdgs", "lang=fr&lang=es", "lang"),
])
def test_a_one_value_parameter_given_twice_is_a_422_naming_it(client: TestClient, path: str, query: str, name: str) -> None:
    """The last value won silently (`limit=5&limit=50` gave 50). Now a 422 in FastAPI's shape, naming the parameter
    and its values."""
    answer = client.get(f"{path}?{query}")
    assert answer.status_code == 422, answer.text
    errors = answer.json()["detail"]
    assert [e["loc"] for e in errors] == [["query", name]] and "give it once" in errors[0]["msg"]


def test_the_documented_repeatable_parameters_still_repeat(client: TestClient) -> None:
    """sdg, lang, source and type are OR-ed when repeated (the contract); an empty repeat counts as not given."""
    base = {"q": "cooperatives", "limit": 100}
    for name, values in (("sdg", [5, 8]), ("lang", ["en", "fr"]), ("source", ["unsse", "ripess"]), ("type", ["report", "article"])):
        both = client.get("/api/search", params={**base, name: values})
        one = [{h["id"] for h in client.get("/api/search", params={**base, name: v}).json()["results"]} for v in values]
        assert both.status_code == 200 and {h["id"] for h in both.json()["results"]} == one[0] | one[1]
    assert client.get("/api/search?q=&q=cooperatives&limit=3").json()["total"] == client.get(
        "/api/search", params={"q": "cooperatives"}).json()["total"]
    assert client.get("/api/export?format=jsonl&sdg=5&sdg=8").status_code == 200


def test_csv_for_excel_is_asked_for_and_plain_csv_is_unchanged(client: TestClient) -> None:
    """Excel shows 'coopÃ©ratives' for a CSV without a byte-order mark; scripts read the header as is. `bom=true` (the
    search page's CSV link) starts the file with one; without it the bytes are the same as before."""
    plain = client.get("/api/export", params={"q": "coopératives", "format": "csv"})
    excel = client.get("/api/export", params={"q": "coopératives", "format": "csv", "bom": "true"})
    assert plain.content.startswith(b"id,title,") and excel.content == b"\xef\xbb\xbf" + plain.content
    assert "coopératives".encode() in plain.content
    refused = client.get("/api/export", params={"q": "x", "format": "ris", "bom": "true"})
    assert refused.status_code == 400 and "format=csv only" in refused.json()["detail"]
    script = (Path(__file__).parent.parent / "searchapi" / "static" / "app.js").read_text()
    assert 'q.set("bom", "true")' in script  # the page's own link asks for it


def test_an_author_list_is_in_the_same_order_in_every_process(search_corpus: SearchCorpus) -> None:
    """`author:x` lists newest first; documents of one date came in a set's order, which follows the process's string
    hash seed: two `serve --workers 2` processes answered two orders, so a cursor's next page from the other one
    repeated or skipped documents. Ties now go by id, as in browsing (both search paths)."""
    for i in (5, 2, 7, 0, 3):
        search_corpus.add(f"tie-{i}", "unsse", "en", "report", "2031-01-01", [1], f"Tie {i}", [f"Solidarity tie {i}."])
    fast = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    slow = Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)
    slow.catalog.get = lambda: None  # type: ignore[method-assign]
    for searcher in (fast, slow):
        first = [h["id"] for h in searcher.search('author:"A. Author"', mode="keyword", limit=5)["results"]]
        assert first == ["tie-0", "tie-2", "tie-3", "tie-5", "tie-7"]


def test_an_exclusion_or_a_phrase_holds_however_many_documents_have_the_word(tmp_path: Path) -> None:
    """Documents with a query's word were looked up 100,000 at most, so in a larger library `-cooperative` let the
    rest through and `"cooperative"` dropped them from its results."""
    from searchapi.constraint import constraint_of
    from searchapi.query import parse

    n = 100_050
    store = Store(tmp_path / "ssehub.db")
    store.upsert_source(SourceConfig(id="big", name="big", kind="import"), origin="import")
    docs = [{"id": f"d{i}", "source_id": "big", "text": "social cooperative"} for i in range(n)]
    chunks = [(i + 1, f"d{i}", 0, "", "social cooperative", b"", "m") for i in range(n)]
    store.bulk_load(docs, chunks, keyword_rows=[(i + 1, "", "social cooperative") for i in range(n)])
    assert len(constraint_of(parse("housing -cooperative"), store).excluded) == n
    assert len(constraint_of(parse('"social cooperative"'), store).allowed or ()) == n
