"""Query features of the search box: phrases, -exclusion, title: and author:, date order, typos, fusion and e5 prefixes."""

from __future__ import annotations

import pytest
from conftest import SearchCorpus

from searchapi.fusion import convex, minmax
from searchapi.query import parse
from searchapi.search import Searcher
from searchapi.typo import corrections, distance
from ssehub.models import Chunk, Document
from ssehub.store import Filters


@pytest.fixture
def searcher(search_corpus: SearchCorpus) -> Searcher:
    store = search_corpus.store
    store.upsert_document(Document(id="authored-1", source_id="unsse", text="Fair trade coffee cooperatives in Honduras.",
                                   title="Coffee value chains", url="https://example.org/a1", lang="en",
                                   published="2016-01-01", authors=["Ana Silva", "Jorge Pérez"], type="report"))
    search_corpus.add("authored-2", "unsse", "en", "report", "2024-02-02", [8], "Fair trade and cooperatives",
                      ["Fair trade premiums reach cooperatives of small producers."])
    return Searcher(store, search_corpus.embedder, search_corpus.settings.index_dir)


def ids(result: dict) -> list[str]:
    return [h["id"] for h in result["results"]]


def test_parser_separates_operators() -> None:
    p = parse('"land trusts" housing -rent -"energy poverty" title:cooperative author:"Ana Silva" author:Pérez')
    assert p.phrases == (("land", "trusts"),) and p.titles == (("cooperative",),)
    assert p.excluded == (("rent",), ("energy", "poverty")) and p.authors == ("Ana Silva", "Pérez")
    assert p.terms == ("land", "trusts", "housing", "cooperative")
    # Each phrase, title: item or -term holds in any language: its tagged stems per language, or its plain words.
    assert [r.split(" OR ")[-1] for r in p.required()] == ['"land trusts")', '"cooperative")']
    assert p.required()[0].startswith('("en_land en_trust" OR ') and p.required()[1].startswith('title : ("en_cooper" OR ')
    assert p.exclusions() == ['("en_rent" OR "fr_rent" OR "es_rent" OR "pt_rent" OR "rent")',
                              ('("en_energi en_poverti" OR "fr_energy fr_poverty" OR "es_energy es_poverty" OR '
                               '"pt_energy pt_poverty" OR "energy poverty")')]
    assert p.text == "land trusts housing cooperative"
    plain = parse("co-op worker cooperatives")  # a hyphen inside a word is not an exclusion
    assert not plain.constrained and plain.text == "co-op worker cooperatives"


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_quoted_phrase_is_required(searcher: Searcher, mode: str) -> None:
    found = ids(searcher.search('"land trusts"', mode=mode, limit=100))
    assert found == ["housing-1"]
    # The same words unquoted match more documents (any of them, in any order).
    assert len(ids(searcher.search("land trusts cooperatives", mode="keyword", limit=100))) > 1


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_minus_term_excludes_documents(searcher: Searcher, mode: str) -> None:
    every = set(ids(searcher.search("cooperative housing", mode=mode, limit=100)))
    without = set(ids(searcher.search("cooperative housing -trusts", mode=mode, limit=100)))
    assert "housing-1" in every and "housing-1" not in without and without
    assert not {"coop-1", "coop-2"} & set(ids(searcher.search('cooperatives -"decent work" -femmes', mode=mode, limit=100)))


def test_title_field_matches_titles_only(searcher: Searcher) -> None:
    found = set(ids(searcher.search("title:energy", mode="keyword", limit=100)))
    assert found == {"energy-1"}
    # "housing" is in the text of housing-1 and its title; "rents" only in a text.
    assert ids(searcher.search("title:rents", mode="keyword")) == []


def test_author_field_lists_the_authors_documents(searcher: Searcher) -> None:
    assert ids(searcher.search("author:silva", mode="keyword")) == ["authored-1"]
    assert ids(searcher.search('author:"Jorge Pérez"', mode="hybrid")) == ["authored-1"]
    assert ids(searcher.search("author:nobody")) == []
    assert searcher.search("-cooperatives")["total"] > 0  # browsing, less the documents with the word


def test_sort_by_date_orders_the_same_set_newest_first(searcher: Searcher) -> None:
    relevance = searcher.search("cooperatives", mode="hybrid", limit=100)
    by_date = searcher.search("cooperatives", mode="hybrid", limit=100, sort="date")
    assert set(ids(relevance)) == set(ids(by_date)) and by_date["total"] == relevance["total"]
    dates = [h["published"] for h in by_date["results"] if h["published"]]
    assert dates == sorted(dates, reverse=True) and ids(by_date) != ids(relevance)
    page = searcher.search("cooperatives", mode="hybrid", limit=5, sort="date")
    with pytest.raises(ValueError):  # a cursor is bound to its sort order
        searcher.search("cooperatives", mode="hybrid", limit=5, cursor=page["next_cursor"])
    with pytest.raises(ValueError):
        searcher.search("cooperatives", sort="popularity")  # type: ignore[arg-type]


def test_typos_find_the_indexed_word(searcher: Searcher, search_corpus: SearchCorpus) -> None:
    assert distance("coper", "cooper") == 1 and distance("hosuing", "housing") == 1 and distance("abc", "xyz") == 3
    fixed = corrections(["coperative", "hosuing", "cooperatives", "zzzzqqq", "of"], search_corpus.store)
    assert fixed == {"coperative": ("cooperative",), "hosuing": ("housing",)}  # words one edit away
    # A typo whose stem is far from the right word's ("cooperatve" stems to "cooperatv", three edits from "cooper")
    # is undone on the word: it finds what the right word finds, not only the documents of the language whose stem
    # happened to be near.
    assert corrections(["cooperatve"], search_corpus.store) == {"cooperatve": ("cooperative",)}
    # A query's later terms skip the word reading (its cost bounds a query of many unknown words): stems alone.
    assert corrections(["coperative", "cooperatve"], search_corpus.store, by_word=False) == {"coperative": ("en_cooper",)}
    right = ids(searcher.search("cooperative", mode="keyword", limit=100))
    assert ids(searcher.search("cooperatve", mode="keyword", limit=100)) == right and len(right) > 5
    hits = searcher.search("coperative", mode="keyword", limit=100)
    assert hits["total"] > 5 and "<mark>" in hits["results"][0]["snippet"]
    assert "housing-1" in ids(searcher.search("comunity land trusst", mode="keyword"))[:1]
    assert searcher.search("zzzzqqq", mode="keyword")["total"] == 0


def test_snippet_marks_the_corrected_and_matched_terms(searcher: Searcher) -> None:
    hit = searcher.search('"land trusts" affordable', mode="hybrid")["results"][0]
    assert hit["id"] == "housing-1" and "<mark>affordable</mark>" in hit["snippet"] and "<mark>land</mark>" in hit["snippet"]


def test_convex_fusion_weighs_normalised_scores() -> None:
    assert minmax({"a": 0.5, "b": 0.25, "c": 0.2}, low=0.25) == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert minmax({"a": 2.0, "b": 1.0}) == {"a": 1.0, "b": 0.0}
    fused = convex({"a": 1.0, "b": 0.5}, {"b": 1.0, "c": 0.9}, weight=0.3)
    assert fused == pytest.approx({"a": 0.3, "b": 0.85, "c": 0.63})
    assert max(fused, key=fused.get) == "b"  # found by both rankings


def test_hybrid_scores_stay_in_range_and_filters_apply(searcher: Searcher) -> None:
    res = searcher.search("cooperatives climate energy", Filters(lang=["en"]), mode="hybrid", limit=100)
    assert res["results"][0]["id"] == "energy-1"
    assert all(0 <= h["score"] <= 1 and h["lang"] == "en" for h in res["results"])


def test_dense_feedback_moves_the_query_and_keeps_the_set_valid(searcher: Searcher) -> None:
    plain = searcher.search("renewable energy", mode="semantic", limit=100)
    searcher.prf_docs, searcher.prf_weight = 2, 1.0
    fed = searcher.search("renewable energy", mode="semantic", limit=100)
    assert fed["results"][0]["id"] == "energy-1"
    assert [h["score"] for h in fed["results"]] != [h["score"] for h in plain["results"]]
    assert all(0 <= h["score"] <= 1 for h in fed["results"])


def _attach(corpus: SearchCorpus, doc_id: str, parent: str, title: str, text: str) -> None:
    """A PDF attachment of a page: a document of its own, linked to the page."""
    corpus.store.upsert_document(Document(id=doc_id, source_id="unsse", text=text, title=title, lang="en", type="report",
                                          url=f"https://example.org/{doc_id}.pdf", parent_id=parent))
    vectors = corpus.embedder.encode([f"{title}\n{text}"])
    corpus.store.replace_chunks(doc_id, title, [Chunk(doc_id, 0, text)], [vectors[0].tobytes()], corpus.embedder.name)


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_a_page_and_its_attachment_take_one_slot(searcher: Searcher, search_corpus: SearchCorpus, mode: str) -> None:
    search_corpus.add("page-1", "unsse", "en", "news", "2022-09-15", [13], "Policy brief on a just transition",
                      ["A new policy brief on the just transition and worker cooperatives in coal regions."])
    _attach(search_corpus, "brief-1", "page-1", "The just transition (Policy Brief No. 7)",
            "The just transition needs worker cooperatives in coal regions: the policy brief in full.")
    search_corpus.rebuild_index()
    result = searcher.search("just transition coal regions", mode=mode, limit=100)
    found = ids(result)
    assert len({"page-1", "brief-1"} & set(found)) == 1 and result["total"] == len(found)
    kept = next(h for h in result["results"] if h["id"] in {"page-1", "brief-1"})
    other = ({"page-1", "brief-1"} - {kept["id"]}).pop()
    relation = "attachment" if kept["id"] == "page-1" else "page"
    assert {"id": other, "url": f"https://example.org/{other}" + (".pdf" if other == "brief-1" else ""),
            "source": "unsse", "relation": relation} in kept["locations"]
    assert sum(result["facets"]["source"].values()) == result["total"]  # the facets count the folded set
    # Alone in a result set, an attachment is not folded away, and still names its page.
    alone = searcher.search('"policy brief in full"', mode="keyword")["results"]
    assert [h["id"] for h in alone] == ["brief-1"] and alone[0]["locations"][0]["relation"] == "page"


def test_hits_list_the_other_locations_of_their_document(searcher: Searcher, search_corpus: SearchCorpus) -> None:
    store = search_corpus.store
    store.add_location("housing-1", "https://mirror.example.net/clt.html", "ripess")
    hits = {h["id"]: h for h in searcher.search("community land trusts", mode="keyword", limit=100)["results"]}
    assert hits["housing-1"]["locations"] == [
        {"url": "https://mirror.example.net/clt.html", "source": "ripess", "id": "housing-1", "relation": "copy"}
    ]
    assert all(h["locations"] == [] for d, h in hits.items() if d != "housing-1")
    assert all("locations" in h for h in searcher.search(None, limit=5)["results"])  # browsing shows them too
