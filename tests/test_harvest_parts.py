"""Harvester parts added for the API kinds and duplicates: MinHash near-duplicates, WordPress fragments, OAI and WP helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.dedup import NearDuplicates, signature, similarity
from harvester.extract import ExtractionError, extract_fragment, html_to_plain
from harvester.spiders.oai import dc_language, dc_type
from harvester.spiders.wordpress import api_root, content_links
from harvester.work import Analyser, analyse
from ssehub.models import Document, normalize_url
from ssehub.store import Store

TEXT = (
    "Community land trusts separate the ownership of land from the ownership of the homes built on it. The trust holds the "
    "land for ever and leases it to households at a low ground rent. Resale prices are capped by a formula written into the "
    "lease, so each home stays affordable for the next family instead of following the market. Studies of two hundred trusts "
    "find very few foreclosures, stable neighbourhoods and strong participation of residents in their governance."
)


def test_minhash_separates_near_duplicates_from_related_texts() -> None:
    base = signature(TEXT)
    reposted = signature("Read more. " + TEXT + " Share this post.")  # shingle Jaccard 0.94
    related = signature(TEXT[: len(TEXT) // 2] + " Energy cooperatives sell wind power to members and invest the surplus locally.")
    assert base is not None and similarity(base, base) == 1.0
    assert similarity(base, reposted) >= 0.85 > similarity(base, related)
    edited = TEXT.replace("very few", "few")  # shingle Jaccard 0.85: the estimate stays within its error of it
    assert abs(similarity(base, signature(edited)) - 0.85) < 0.06
    assert signature("Too short to compare.") is None
    assert (signature(TEXT) == base).all()  # stable: signatures are stored and compared across runs


def test_near_duplicates_resolve_through_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    near = NearDuplicates(store)
    store.upsert_document(Document(id="a-1", source_id="a", text=TEXT, url="http://a/1"))
    near.remember("a-1", signature(TEXT))
    match = near.find(signature(TEXT + " Posted again by a partner network."), exclude="b-1")
    assert match is not None and match.document_id == "a-1" and match.similarity >= 0.85
    assert near.find(signature("Worker cooperatives " * 3 + TEXT[200:400] + " in Mondragon employ " * 5)) is None
    assert near.find(signature(TEXT), exclude="a-1") is None  # a document is no duplicate of itself
    store.withdraw_document("a-1")
    assert near.find(signature(TEXT)) is None  # withdrawn documents are not matched
    store.add_location("a-1", "http://a/1", "a")
    store.add_location("a-1", "http://b/copy", "b")
    assert [loc["url"] for loc in store.locations("a-1")] == ["http://a/1", "http://b/copy"]
    store.close()


def test_tracking_parameters_do_not_make_another_document() -> None:
    url = "https://ripess.org/2021/03/monnaies-locales/"
    assert normalize_url(url + "?utm_source=newsletter&utm_medium=email#comments") == normalize_url(url)
    assert normalize_url(url + "?fbclid=abc") == normalize_url(url)
    assert normalize_url(url + "?lang=en") != normalize_url(url)  # a translation is another document


def test_fragment_keeps_every_paragraph_and_drops_widgets() -> None:
    html = (
        "<p>First paragraph about <strong>cooperative</strong> banks.</p><ul><li>one member</li><li>one vote</li></ul>"
        "<script>track()</script><div class='sharedaddy'><h3>Share this:</h3><a href='#'>Twitter</a></div>"
        "<p>Second paragraph with&nbsp;an entity &amp; a line<br>break.</p>"
    )
    text = extract_fragment(html).text
    assert text.splitlines() == [
        "First paragraph about cooperative banks.", "one member", "one vote", "Second paragraph with an entity & a line", "break.",
    ]
    with pytest.raises(ExtractionError):
        extract_fragment("<p>  </p><script>x()</script>")
    assert html_to_plain("L&#8217;essor <em>des</em> monnaies") == "L’essor des monnaies"


def test_analyse_uses_the_fallback_text_and_reports_the_failure() -> None:
    result = analyse(b"%PDF-1.4 broken", "", "", "application/pdf", "http://x/a.pdf", fallback="Una descripción " * 10)
    assert result.found is not None and result.reason == "bad_pdf" and result.lang == "es"
    assert analyse(b"%PDF-1.4 broken", "", "", "application/pdf", "http://x/a.pdf").found is None


def test_analyser_runs_in_a_worker_process() -> None:
    import asyncio

    analyser = Analyser(1)
    try:
        result = asyncio.run(analyser.run(f"<p>{TEXT}</p>".encode(), "fragment", "utf-8", "", "http://x/p"))
    finally:
        analyser.close()
    assert result.found is not None and result.lang == "en" and result.signature is not None


@pytest.mark.parametrize(
    ("values", "lang"), [(["eng"], "en"), (["fre"], "fr"), (["en-GB"], "en"), (["Spanish"], "es"), (["pt_BR"], "pt"), ([], ""), (["und-x"], "")]
)
def test_dublin_core_language(values: list[str], lang: str) -> None:
    assert dc_language(values) == lang


def test_dublin_core_type_and_wordpress_helpers() -> None:
    assert dc_type(["info:eu-repo/semantics/workingPaper"]) == "working-paper"
    assert dc_type(["Text", "Report"]) == "report" and dc_type(["Dataset"]) == ""
    assert api_root("https://unsse.org/") == "https://unsse.org/wp-json/"
    assert api_root("https://example.org/blog") == "https://example.org/blog/wp-json/"
    assert api_root("https://example.org/wp-json/wp/v2/posts") == "https://example.org/wp-json/"
    assert content_links('<p><a href="/f/a.pdf" type="application/pdf">a</a></p>', "https://x.org/p/") == [
        ("https://x.org/f/a.pdf", "application/pdf")
    ]
