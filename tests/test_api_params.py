"""Empty query parameters are "not given": what a plain HTML form sends for fields left blank."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SearchCorpus
from fastapi.testclient import TestClient

from searchapi.app import create_app
from searchapi.params import without_empty


@pytest.fixture
def client(search_corpus: SearchCorpus) -> Iterator[TestClient]:
    with TestClient(create_app(search_corpus.settings, embedder=search_corpus.embedder)) as c:
        yield c


def test_without_empty_keeps_every_other_part_byte_for_byte() -> None:
    assert without_empty(b"q=a%20b+c&year_from=&sdg=&sdg=5&&lang") == b"q=a%20b+c&sdg=5"
    assert without_empty(b"q=x%3D&cursor=ab%3D%3D") == b"q=x%3D&cursor=ab%3D%3D"  # '=' inside values stays
    assert without_empty(b"year_from=&year_to=") == b""


def test_blank_form_fields_answer_as_if_absent(client: TestClient) -> None:
    form = client.get("/api/search?q=cooperatives&sdg=&lang=&source=&type=&year_from=&year_to=&mode=&limit=&cursor=")
    assert form.status_code == 200, form.text  # was a 422 ("Input should be a valid integer")
    plain = client.get("/api/search?q=cooperatives")
    assert [h["id"] for h in form.json()["results"]] == [h["id"] for h in plain.json()["results"]]
    assert form.json()["total"] == plain.json()["total"] > 0
    with_one = client.get("/api/search?q=cooperatives&sdg=&sdg=8&year_to=")
    assert with_one.status_code == 200 and with_one.json()["total"] == client.get(
        "/api/search?q=cooperatives&sdg=8").json()["total"]
    export = client.get("/api/export?q=cooperatives&format=csv&year_from=")
    assert export.status_code == 200 and export.text.count("\n") == client.get(
        "/api/export?q=cooperatives&format=csv").text.count("\n")


def test_values_that_are_there_are_still_checked(client: TestClient) -> None:
    for query in ("year_from=abc", "sdg=18", "limit=0", "mode=fuzzy", "year_from=%20"):
        r = client.get(f"/api/search?q=x&{query}")
        assert r.status_code == 422 and r.json()["detail"], query
