"""End to end: the WordPress REST and OAI-PMH fixture sites harvested three times by `ssehub harvest` in a subprocess.

Run 1 harvests everything; run 2 changes nothing (and asks only for changes); before run 3 posts and records are
edited, deleted and added in the fixture data files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ssehub.demo.server import SiteGroup
from ssehub.store import Store
from tests.test_harvest import Phase, snapshot, ssehub_harvest

pytestmark = pytest.mark.timeout(240)

SOURCES = """\
sources:
  - id: ripess
    kind: wordpress
    url: {wordpress}/
    delay: 0
  - id: repo
    kind: oai-pmh
    url: {oai}/oai
    set: sse
    delay: 0
"""
FUTURE = "2099-01-01T00:00:00"


@dataclass
class Harvests:
    urls: dict[str, str]
    phases: list[Phase]
    locations: dict[str, list[dict[str, Any]]]  # document id -> locations, after run 1


def edit_sites(root: Path) -> None:
    """Between runs 2 and 3: post 11 edited, post 14 deleted, post 16 added; record 2 edited, 5 deleted, 8 added."""
    posts_file = root / "wordpress/_wp/posts.json"
    posts = [p for p in json.loads(posts_file.read_text()) if p["id"] != 14]
    post = next(p for p in posts if p["id"] == 11)
    post["content"] = post["content"].replace("quatre-vingts territoires", "cent territoires")
    post["modified"] = FUTURE
    posts.append({**post, "id": 16, "slug": "cafes-cooperatifs", "path": "/2099/01/cafes-cooperatifs/", "translations": {},
                  "title": "Les cafés coopératifs", "content": "<p>Les cafés coopératifs de village rouvrent des lieux de "
                  "rencontre là où le dernier commerce a fermé, avec des habitants devenus sociétaires.</p>"})
    posts_file.write_text(json.dumps(posts, ensure_ascii=False))
    records_file = root / "oai/_oai/records.json"
    records = json.loads(records_file.read_text())
    by_id = {r["identifier"]: r for r in records}
    by_id["oai:repo:2"].update(datestamp=FUTURE[:10])
    by_id["oai:repo:2"]["dc"]["title"] = ["Les coopératives d'activité et d'emploi (édition révisée)"]
    by_id["oai:repo:5"].update(datestamp=FUTURE[:10], deleted=True)
    records.append({"identifier": "oai:repo:8", "datestamp": FUTURE[:10], "sets": ["sse"], "dc": {
        "title": ["Time banks in Japan"], "creator": ["Miller, Ethan"], "date": ["2024"], "language": ["eng"],
        "type": ["article"], "identifier": ["https://journals.example.org/article/88"],
        "description": ["Time banks in Japan began in the nineteen seventies with women caring for elderly neighbours and "
                        "now count thousands of members who exchange hours of help instead of money."]}})
    records_file.write_text(json.dumps(records, ensure_ascii=False))


@pytest.fixture(scope="module")
def harvests(tmp_path_factory: pytest.TempPathFactory, fixture_sites_copier: Callable[[Path], Path]) -> Iterator[Harvests]:
    tmp = tmp_path_factory.mktemp("harvest_api")
    root = fixture_sites_copier(tmp / "sites")
    group = SiteGroup({name: root / name for name in ("wordpress", "oai")})
    try:
        urls = group.start()
        sources = tmp / "sources.yaml"
        sources.write_text(SOURCES.format(**urls), encoding="utf-8")
        data = tmp / "data"
        phases, locations = [], {}
        for i in range(3):
            if i == 2:
                edit_sites(root)
            marks = {name: len(s.hits) for name, s in group.servers.items()}
            output = ssehub_harvest(data, sources)
            phases.append(snapshot(data, group, marks, 0.0, output))
            if i == 0:
                store = Store(data / "ssehub.db")
                locations = {doc_id: store.locations(doc_id) for doc_id in phases[0].docs}
                store.close()
        yield Harvests(urls, phases, locations)
    finally:
        group.close()


def doc(phase: Phase, path: str) -> dict[str, Any]:
    matches = [d for d in phase.docs.values() if urlsplit(d["url"]).path == path]
    assert len(matches) == 1, f"{path}: {len(matches)} documents"
    return matches[0]


def requests_of(phase: Phase, site: str) -> list[tuple[str, dict[str, list[str]]]]:
    return [(urlsplit(p).path, parse_qs(urlsplit(p).query)) for p, _, _ in phase.hits[site]]


def test_wordpress_posts_pages_custom_types_and_translations(harvests: Harvests) -> None:
    first = harvests.phases[0]
    # Every location on the WordPress site (the land-trust post may belong to the OAI copy that was met first).
    paths = sorted(urlsplit(loc["url"]).path for locs in harvests.locations.values() for loc in locs
                   if loc["source_id"] == "ripess")
    assert paths == [
        "/2021/03/monnaies-locales/", "/2022/06/digest-mai-2022/", "/2023/02/cantines-solidaires-lyon/", "/a-propos/",
        "/en/2021/03/local-currencies/", "/en/2023/05/community-land-trusts/", "/publications/document-de-travail-4/",
        "/wp-content/uploads/2022/05/digest-mai-2022.pdf",
    ]
    fr, en = doc(first, "/2021/03/monnaies-locales/"), doc(first, "/en/2021/03/local-currencies/")
    assert fr["id"] != en["id"] and (fr["lang"], en["lang"]) == ("fr", "en")  # a translation is a document of its own
    assert fr["title"] == "L’essor des monnaies locales complémentaires"  # entities of title.rendered decoded
    assert (fr["published"], fr["authors"], fr["type"]) == ("2021-03-04", ["Équipe RIPESS"], "article")
    # content.rendered is the text: every paragraph, without share buttons or scripts, and no page was fetched for it.
    assert "fonds de garantie" in fr["text"] and "quatre-vingts territoires" in fr["text"]
    assert "Partager" not in fr["text"] and "trackShare" not in fr["text"] and "Twitter" not in fr["text"]
    assert doc(first, "/a-propos/")["type"] == "page"
    assert doc(first, "/publications/document-de-travail-4/")["type"] == "working-paper"
    # Authors the listing does not embed come from /users/{id}, asked once per author; a hidden user (401) is no failure.
    assert doc(first, "/2023/02/cantines-solidaires-lyon/")["authors"] == ["Jason Nardi"]
    assert doc(first, "/2022/06/digest-mai-2022/")["authors"] == ["Jason Nardi"]
    assert doc(first, "/publications/document-de-travail-4/")["authors"] == []
    pdf = doc(first, "/wp-content/uploads/2022/05/digest-mai-2022.pdf")
    assert pdf["parent_id"] == doc(first, "/2022/06/digest-mai-2022/")["id"] and pdf["lang"] == "fr"
    requested = requests_of(first, "wordpress")
    assert not any(path.startswith(("/20", "/en/", "/a-propos")) for path, _ in requested)
    assert ("/wp-json/wp/v2/types", {}) in requested
    listings = [(path, q) for path, q in requested if path.startswith("/wp-json/wp/v2/posts")]
    assert all(q["per_page"] == ["100"] and "_embed" in q and "modified_after" not in q for _, q in listings)
    # Three French posts at two per page (the site's cap): page 2 followed from X-WP-TotalPages; English listed apart.
    assert sorted((q["page"][0], q.get("lang", [""])[0]) for _, q in listings) == [("1", ""), ("1", "en"), ("2", "")]
    assert not any(path.startswith("/wp-json/wp/v2/media") or path.startswith("/wp-json/wp/v2/blocks") for path, _ in requested)
    users = sorted(path for path, _ in requested if path.startswith("/wp-json/wp/v2/users/"))
    assert users == ["/wp-json/wp/v2/users/3", "/wp-json/wp/v2/users/4"]  # user 2 is embedded
    assert first.runs["ripess"]["status"] == "finished" and first.runs["ripess"]["counts"]["failed"] == 0


def test_oai_records_sets_tokens_and_full_text(harvests: Harvests) -> None:
    first = harvests.phases[0]
    repo = {d["title"]: d for d in first.docs.values() if d["source_id"] == "repo"}
    assert "Quantum dots" not in repo  # another set
    landing = repo["Platform cooperatives and the gig economy"]
    # Dublin Core metadata, the landing page's text, and its attached PDF as a child document.
    assert landing["authors"] == ["Scholz, Trebor", "Schneider, Nathan"] and landing["type"] == "working-paper"
    assert "venture-funded firms" in landing["text"] and landing["published"] == "2022-11-03" and landing["lang"] == "en"
    assert repo["Statistical annex"]["parent_id"] == landing["id"]
    # A same-site PDF identifier gives the text; the DC title beats the PDF's own ("scan_0042"); language from the text.
    report = doc(first, "/records/2.html")
    assert report["title"] == "Les coopératives d'activité et d'emploi" and "deux cents entrepreneurs" in report["text"]
    assert report["lang"] == "fr"
    # Off-site identifier: the description is the text. Broken PDF: counted, and the description kept.
    spanish = repo["Finanzas solidarias en América Latina"]
    assert spanish["url"] == "https://doi.example.org/10.1234/fin-sol" and spanish["lang"] == "es" and "morosidad" in spanish["text"]
    assert "public subsidies arrive late" in repo["Mutual health insurance in Senegal"]["text"]
    counts = first.runs["repo"]["counts"]
    assert counts["failed_by_reason"] == {"bad_pdf": 1}
    requested = requests_of(first, "oai")
    listings = [q for path, q in requested if path == "/oai"]
    assert listings[0] == {"verb": ["ListRecords"], "metadataPrefix": ["oai_dc"], "set": ["sse"]}
    assert len(listings) == 3 and all(list(q) == ["verb", "resumptionToken"] for q in listings[1:])
    assert not any("journals.example.org" in path or "doi.example.org" in path for path, _ in requested)


def test_same_text_on_two_sites_is_one_document_with_two_locations(harvests: Harvests) -> None:
    first = harvests.phases[0]
    clt = [d for d in first.docs.values() if "Community land trusts separate" in d["text"]]
    assert len(clt) == 1
    urls = sorted(urlsplit(loc["url"]).path for loc in harvests.locations[clt[0]["id"]])
    assert urls == ["/en/2023/05/community-land-trusts/", "/files/clt-report.pdf"]
    assert {loc["source_id"] for loc in harvests.locations[clt[0]["id"]]} == {"ripess", "repo"}
    assert harvests.locations[clt[0]["id"]][0]["url"] == clt[0]["url"]  # the document's own URL first
    assert clt[0]["source_id"] in {"ripess", "repo"}  # whichever harvest met the text first owns it
    assert sum(r["counts"]["near_duplicates"] for r in first.runs.values()) == 1


def test_second_harvest_asks_only_for_changes(harvests: Harvests) -> None:
    first, second = harvests.phases[0], harvests.phases[1]
    assert second.docs == first.docs
    for source in ("ripess", "repo"):
        counts = second.runs[source]["counts"]
        assert counts["new"] == counts["updated"] == counts["withdrawn"] == counts["failed"] == 0, source
    wp = requests_of(second, "wordpress")
    content = [q for path, q in wp if path == "/wp-json/wp/v2/posts" and "_embed" in q]
    ids = [q for path, q in wp if path == "/wp-json/wp/v2/posts" and "_fields" in q]
    assert content and all(q["modified_after"][0] < first.runs["ripess"]["started_at"][:19] for q in content)
    assert ids and all("modified_after" not in q for q in ids)  # the id listing tells deletions
    assert not any(path.startswith("/wp-content/") for path, _ in wp)
    oai = requests_of(second, "oai")
    assert [path for path, _ in oai if path != "/robots.txt"] == ["/oai"]  # noRecordsMatch: nothing else fetched
    assert oai[-1][1]["from"][0] < first.runs["repo"]["started_at"][:10]


def test_third_harvest_updates_withdraws_and_adds(harvests: Harvests) -> None:
    second, third = harvests.phases[1], harvests.phases[2]
    fr = doc(third, "/2021/03/monnaies-locales/")
    assert fr["id"] == doc(second, "/2021/03/monnaies-locales/")["id"] and "cent territoires" in fr["text"]
    assert doc(third, "/2023/02/cantines-solidaires-lyon/")["status"] == "withdrawn"
    assert doc(third, "/2099/01/cafes-cooperatifs/")["status"] == "active"
    counts = third.runs["ripess"]["counts"]
    assert (counts["new"], counts["updated"], counts["withdrawn"], counts["failed"]) == (1, 1, 1, 0)
    report = doc(third, "/records/2.html")
    assert report["title"].endswith("(édition révisée)") and report["id"] == doc(second, "/records/2.html")["id"]
    deleted = next(d for d in third.docs.values() if d["title"] == "Social enterprises in rural Ireland")
    assert deleted["status"] == "withdrawn"  # an OAI deleted record: kept in the store, out of search
    assert any(d["title"] == "Time banks in Japan" for d in third.docs.values())
    counts = third.runs["repo"]["counts"]
    assert (counts["new"], counts["updated"], counts["withdrawn"]) == (1, 1, 1)
    unchanged = {i for i, d in third.docs.items() if d == second.docs.get(i)}
    assert len(unchanged) == len(second.docs) - 4  # 11, 14 and records 2 and 5 changed; nothing else was touched
