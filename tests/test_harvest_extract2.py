"""The second extractor: readability takes over where trafilatura finds nothing or very little, and only then."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harvester import extract
from harvester.extract import ExtractionError, extract_html

PARAS = [
    "Solidarity finance cooperatives in the Andes lend to farmers that commercial banks turn away, and their members "
    "decide together which loans to make and at what rate.",
    "Repayment rates stay high because borrowers know each other, meet every month and guarantee each other's loans, "
    "while the surplus goes back into a fund for the next harvest.",
    "A study of forty such cooperatives over ten years found that they survived two currency crises and kept lending "
    "when the regional banks stopped.",
]
PAGE = (
    "<html><head><title>Andean solidarity finance</title></head><body><nav><a href='/'>Home</a> <a href='/news'>News</a>"
    "</nav><div class='content'><p class='teaser'>Andean solidarity finance, a short summary.</p>"
    + "".join(f"<p>{p}</p>" for p in PARAS)
    + "</div><footer>Copyright 2024. All rights reserved.</footer></body></html>"
)
EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "extraction"


def test_readability_takes_over_when_trafilatura_keeps_a_teaser(monkeypatch: pytest.MonkeyPatch) -> None:
    # trafilatura keeping only a teaser is what happens on some real pages (see the next test); forced here.
    monkeypatch.setattr(extract.trafilatura, "extract", lambda *a, **k: "Andean solidarity finance, a short summary.")
    found = extract_html(PAGE, "http://127.0.0.1/a.html")
    assert all(p.split(",")[0] in found.text for p in PARAS)
    assert "All rights reserved" not in found.text and "Home" not in found.text.split()
    assert extract_html(PAGE, "http://127.0.0.1/a.html", second=False).text == "Andean solidarity finance, a short summary."
    monkeypatch.setattr(extract.trafilatura, "extract", lambda *a, **k: None)
    assert PARAS[2] in extract_html(PAGE, "http://127.0.0.1/a.html").text  # trafilatura found nothing at all


def test_short_pages_and_boilerplate_keep_trafilatura_s_answer() -> None:
    short = (
        "<html><body><article><p>Cooperative banks opened three branches in rural Kenya this year.</p></article></body></html>"
    )
    assert extract_html(short, "http://127.0.0.1/s.html").text.startswith("Cooperative banks opened")
    banner = (
        "<html><body><div class='cookie'>We use cookies to measure the audience of this site. Accept all cookies or "
        "manage your preferences.</div><footer><p>Copyright 2024 Observatory. All rights reserved.</p></footer></body></html>"
    )
    with pytest.raises(ExtractionError):
        extract_html(banner, "http://127.0.0.1/about.html")  # readability's answer there is too short to be a document


@pytest.mark.skipif(not (EVAL / "ground-truth.json").exists(), reason="../shared/eval/extraction is not available")
def test_a_real_page_trafilatura_gets_wrong_is_recovered() -> None:
    page = "f8ff621a0b9b7646cc0d57d37416feabba2bf78ef5dd0bfc5b080f9f97bbe584"
    truth = json.loads((EVAL / "ground-truth.json").read_text(encoding="utf-8"))[page]["articleBody"]
    html = gzip.decompress((EVAL / "html" / f"{page}.html.gz").read_bytes()).decode("utf-8")
    first = extract_html(html, "", second=False).text
    both = extract_html(html, "").text
    words = set(truth.split())
    assert len(first.split()) < 50 and len(both.split()) > 300
    assert len(words & set(both.split())) > 0.9 * len(words) > len(words & set(first.split()))
