"""The Searcher: result sets, filters, facets, paging, snippets, similar documents and index reloads."""

from __future__ import annotations

import time

import pytest

from conftest import SEARCH_DOCS, SearchCorpus, make_search_corpus
from searchapi.search import Searcher
from ssehub.errors import IndexNotBuilt, NotFound
from ssehub.store import Filters

HIT_KEYS = {"id", "title", "url", "source", "lang", "published", "type", "authors", "sdgs", "snippet", "score", "locations"}
META = {
    d[0]: {"source": d[1], "lang": d[2], "type": d[3], "year": d[4] and int(d[4][:4]), "sdgs": set(d[5])} for d in SEARCH_DOCS
}
GONE = {"hidden-1", "gone-1"}


@pytest.fixture
def searcher(search_corpus: SearchCorpus) -> Searcher:
    return Searcher(search_corpus.store, search_corpus.embedder, search_corpus.settings.index_dir)


def every_page(searcher: Searcher, q: str | None, filters: Filters, mode: str, limit: int = 7) -> tuple[list[dict], dict]:
    """All hits of a search, page by page, and the first page's response."""
    first = page = searcher.search(q, filters, mode=mode, limit=limit)
    hits = list(page["results"])
    while page["next_cursor"]:
        page = searcher.search(q, filters, mode=mode, limit=limit, cursor=page["next_cursor"])
        assert page["total"] == first["total"] and page["facets"] == first["facets"]
        hits += page["results"]
    return hits, first


def facet_counts(ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"sdg": {}, "lang": {}, "source": {}, "type": {}, "year": {}}
    for doc_id in ids:
        meta = META[doc_id]
        for name in ("lang", "source", "type", "year"):
            if meta[name]:
                out[name][str(meta[name])] = out[name].get(str(meta[name]), 0) + 1
        for sdg in meta["sdgs"]:
            out["sdg"][str(sdg)] = out["sdg"].get(str(sdg), 0) + 1
    return out


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("q", ["cooperatives", "energy cooperatives climate", "solidarity economy region"])
def test_paging_gives_each_document_once_and_facets_count_the_whole_set(searcher: Searcher, q: str, mode: str) -> None:
    hits, first = every_page(searcher, q, Filters(), mode)
    ids = [h["id"] for h in hits]
    assert len(ids) == len(set(ids)) == first["total"] > 7
    assert not GONE & set(ids)
    assert first["facets"] == facet_counts(ids)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(set(h) == HIT_KEYS for h in hits)


def test_keyword_ranks_the_matching_document_first(searcher: Searcher) -> None:
    result = searcher.search("community land trusts", Filters(), mode="keyword")
    assert result["results"][0]["id"] == "housing-1" and result["results"][0]["score"] == 1.0
    assert "<mark>land</mark> <mark>trusts</mark>" in result["results"][0]["snippet"]
    assert result["query"] == "community land trusts"
    assert searcher.search("zzzunknownword", Filters(), mode="keyword")["total"] == 0


def test_semantic_and_hybrid_find_the_document(searcher: Searcher) -> None:
    for mode in ("semantic", "hybrid"):
        assert searcher.search("renewable energy cooperatives", Filters(), mode=mode)["results"][0]["id"] == "energy-1"


@pytest.mark.parametrize(
    "filters",
    [Filters(sdg=[8]), Filters(sdg=[5, 7]), Filters(lang=["fr"]), Filters(source=["ripess"]),
     Filters(type=["report", "case-study"]), Filters(year_from=2019, year_to=2021), Filters(sdg=[8, 11], lang=["en"]), Filters(source=["unsse"], year_to=2015)],
)
def test_filters_or_within_and_across(searcher: Searcher, filters: Filters) -> None:
    def passes(doc_id: str) -> bool:
        m = META[doc_id]
        return (
            (not filters.sdg or bool(m["sdgs"] & set(filters.sdg))) and (not filters.lang or m["lang"] in filters.lang)
            and (not filters.source or m["source"] in filters.source) and (not filters.type or m["type"] in filters.type)
            and (filters.year_from is None or (m["year"] or 0) >= filters.year_from)
            and (filters.year_to is None or (m["year"] is not None and m["year"] <= filters.year_to))
        )

    unfiltered = {h["id"] for h in every_page(searcher, "cooperatives solidarity", Filters(), "keyword")[0]}
    hits, first = every_page(searcher, "cooperatives solidarity", filters, "keyword")
    ids = {h["id"] for h in hits}
    assert ids == {d for d in unfiltered if passes(d)} and ids
    assert first["facets"] == facet_counts(list(ids))
    browsed = {h["id"] for h in every_page(searcher, None, filters, "hybrid")[0]}
    assert browsed == {d for d in META if d not in GONE and passes(d)}


def test_year_from_after_year_to_is_an_empty_result(searcher: Searcher) -> None:
    result = searcher.search("cooperatives", Filters(year_from=2022, year_to=2010))
    assert result["total"] == 0 and result["results"] == [] and result["next_cursor"] is None


def test_browse_without_query_is_newest_first(searcher: Searcher) -> None:
    hits, first = every_page(searcher, None, Filters(), "hybrid", limit=5)
    dates = [h["published"] for h in hits]
    assert first["total"] == len(META) - len(GONE) == len(hits)
    assert dates[-1] is None and dates[:-1] == sorted(dates[:-1], reverse=True)
    assert all(h["score"] is None for h in hits) and first["query"] == ""
    # A browse cursor does not depend on the mode.
    assert searcher.search("", Filters(), mode="keyword", limit=5, cursor=first["next_cursor"])["results"] == hits[5:10]


def test_cursor_from_another_search_or_garbage_is_refused(searcher: Searcher) -> None:
    page = searcher.search("cooperatives", Filters(), mode="keyword", limit=3)
    with pytest.raises(ValueError, match="cursor"):
        searcher.search("housing", Filters(), mode="keyword", limit=3, cursor=page["next_cursor"])
    with pytest.raises(ValueError, match="cursor"):
        searcher.search("cooperatives", Filters(lang=["en"]), mode="keyword", limit=3, cursor=page["next_cursor"])
    with pytest.raises(ValueError, match="cursor"):
        searcher.search("cooperatives", Filters(), mode="keyword", cursor="not-a-cursor")


def test_hidden_and_withdrawn_never_appear(searcher: Searcher) -> None:
    for mode in ("keyword", "semantic", "hybrid"):
        ids = {h["id"] for h in every_page(searcher, "hidden withdrawn cooperative report curator", Filters(), mode)[0]}
        assert ids and not GONE & ids
    assert searcher.similar("hidden-1")["results"] == []
    assert not GONE & {h["id"] for h in searcher.similar("coop-1", 50)["results"]}


def test_snippet_is_escaped(searcher: Searcher) -> None:
    hit = searcher.search("governance script", Filters(), mode="keyword")["results"][0]
    assert hit["id"] == "script-1" and "<script>" not in hit["snippet"]
    assert "&lt;<mark>script</mark>&gt;" in hit["snippet"] and hit["title"] == "Escaping <b>markup</b>"  # titles are text


def test_similar_excludes_itself(searcher: Searcher) -> None:
    results = searcher.similar("filler-03", 5)["results"]
    assert len(results) == 5 and "filler-03" not in {h["id"] for h in results}
    assert results[0]["id"].startswith("filler-") and all(set(h) == HIT_KEYS for h in results)
    with pytest.raises(NotFound):
        searcher.similar("no-such-doc")


def test_without_index_keyword_and_browse_work_and_semantic_says_so(tmp_path) -> None:
    corpus = make_search_corpus(tmp_path / "data", index=False)
    searcher = Searcher(corpus.store, corpus.embedder, corpus.settings.index_dir)
    hybrid, keyword = (searcher.search("housing", Filters(), mode=m) for m in ("hybrid", "keyword"))
    assert hybrid["results"] == keyword["results"] and hybrid["total"] == keyword["total"] > 0
    assert searcher.search(None, Filters())["total"] == len(META) - len(GONE)
    with pytest.raises(IndexNotBuilt, match="ssehub index"):
        searcher.search("housing", Filters(), mode="semantic")
    assert searcher.index_manifest() is None
    # The index appears while the searcher lives: the next request uses it.
    corpus.rebuild_index()
    assert searcher.search("renewable energy", Filters(), mode="semantic")["results"][0]["id"] == "energy-1"
    corpus.store.close()


def test_a_new_index_is_picked_up(search_corpus: SearchCorpus, searcher: Searcher) -> None:
    before = searcher.index_manifest()
    assert "tidal-1" not in {h["id"] for h in searcher.search("tidal lagoon", Filters(), mode="semantic")["results"]}
    search_corpus.add("tidal-1", "unsse", "en", "report", "2024-01-01", [14], "Tidal lagoon cooperative",
                      ["A tidal lagoon cooperative produces marine energy for fishing villages."])
    time.sleep(0.01)  # a distinct manifest mtime even on coarse clocks
    search_corpus.rebuild_index()
    assert searcher.index_manifest()["built_at"] > before["built_at"]
    assert searcher.search("tidal lagoon", Filters(), mode="semantic")["results"][0]["id"] == "tidal-1"


def test_bad_mode_and_limit_are_value_errors(searcher: Searcher) -> None:
    with pytest.raises(ValueError, match="mode"):
        searcher.search("x", Filters(), mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        searcher.search("x", Filters(), limit=0)


def test_pool_widens_when_filters_leave_too_few(searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    import searchapi.search as search_module

    full = {h["id"] for h in every_page(searcher, "cooperatives", Filters(lang=["fr"]), "keyword")[0]}
    monkeypatch.setattr(search_module, "POOL", 3)
    monkeypatch.setattr(search_module, "MIN_DOCUMENTS", 100)
    widened = {h["id"] for h in every_page(searcher, "cooperatives", Filters(lang=["fr"]), "keyword")[0]}
    assert widened == full and len(full) > 3
    monkeypatch.setattr(search_module, "MAX_POOL", 3)  # no widening allowed: only the top 3 chunks' documents
    assert searcher.search("cooperatives", Filters(lang=["fr"]), mode="keyword")["total"] < len(full)
