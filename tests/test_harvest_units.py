"""Harvester building blocks without a crawl: ids, URL policy, extraction, language, type, settings, source choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.config import scrapy_settings
from harvester.doctype import guess_type
from harvester.extract import ExtractionError, decode_html, extract_html, extract_pdf, iso_date
from harvester.language import detect_language
from harvester.middlewares import retry_after_seconds
from harvester.run import harvest, select_sources
from harvester.spiders import SPIDERS, spider_for
from harvester.spiders.sitemap import parse_time
from harvester.urls import canonical_link, page_document_id, same_site, site_of
from ssehub.errors import ConfigError
from ssehub.settings import Settings
from ssehub.sources import SourceConfig

SITES = {"http://127.0.0.1:8101"}


def test_same_site_compares_scheme_host_and_port() -> None:
    assert site_of("HTTP://127.0.0.1:8101/a/b.html?x=1") == "http://127.0.0.1:8101"
    assert same_site("http://127.0.0.1:8101/x.pdf", SITES)
    assert not same_site("http://127.0.0.1:8102/x.pdf", SITES)  # another fixture site: another port
    assert not same_site("https://127.0.0.1:8101/x.pdf", SITES)
    assert not same_site("mailto:someone@example.org", SITES)
    assert site_of("https://unsse.org:443/x") == "https://unsse.org"


def test_document_ids_follow_the_same_site_canonical() -> None:
    page, alternate = "http://127.0.0.1:8101/records/fiche-105.html", "http://127.0.0.1:8101/records/fiche-105_en.html"
    canonical = canonical_link(alternate, "/records/fiche-105.html", SITES)
    assert canonical == page
    assert page_document_id("obs", alternate, canonical) == page_document_id("obs", page)
    assert page_document_id("obs", page + "#top") == page_document_id("obs", page + "?utm_source=x")
    assert page_document_id("obs", page) != page_document_id("other", page)
    assert page_document_id("obs", page).startswith("obs-")
    # A canonical on another host is not trusted to name the document.
    assert canonical_link(alternate, "http://127.0.0.1:9999/records/fiche-105.html", SITES) is None
    assert canonical_link(alternate, "  ", SITES) is None


HTML = """<html lang="en"><head><title>Ignored tab title | Site</title>
<meta name="citation_author" content="Ana Ruiz"><meta name="citation_author" content="Li Wei">
</head><body><nav><a href="/">Home</a> <a href="/about">About us</a></nav>
<div class="cookies">We use cookies. Accept all cookies or manage your preferences.</div>
<main><article><h1>Mutual insurance for informal workers</h1>
<p>Published <time datetime="2022-07-09">9 July 2022</time></p>
<p>Mutual health insurance schemes let street vendors and domestic workers pool small monthly contributions and cover
hospital costs that would otherwise push families into debt. Several schemes in West Africa now cover tens of
thousands of members.</p><p>Their growth depends on trust, simple collection methods and links to public health systems.</p>
</article></main><footer>Copyright 2024. All rights reserved. Privacy policy.</footer></body></html>"""


def test_extract_html_text_and_metadata_fallbacks() -> None:
    found = extract_html(HTML, "http://127.0.0.1:8101/a.html")
    assert "pool small monthly contributions" in found.text and "public health systems" in found.text
    assert "cookies" not in found.text and "All rights reserved" not in found.text
    assert found.title == "Mutual insurance for informal workers"
    assert found.published == "2022-07-09"
    assert found.authors == ["Ana Ruiz", "Li Wei"]


def test_boilerplate_page_is_no_text_and_bad_bytes_are_bad_encoding() -> None:
    page = "<html><body><nav><a href='/'>Home</a> <a href='/c'>Contact</a></nav><footer>Copyright 2024</footer></body></html>"
    with pytest.raises(ExtractionError) as err:
        extract_html(page, "http://127.0.0.1:8101/about.html")
    assert err.value.reason == "no_text"
    assert decode_html("café".encode("latin-1"), "latin-1") == "café"
    with pytest.raises(ExtractionError) as err:
        decode_html(bytes(range(128, 256)) * 50, "utf-8")
    assert err.value.reason == "bad_encoding"


def test_extract_pdf_reads_text_and_info_and_rejects_broken_files(fixture_sites: Path) -> None:
    found = extract_pdf((fixture_sites / "crawl/files/wp-1.pdf").read_bytes())
    assert "Weighted colleges" in found.text
    assert (found.title, found.authors, found.published) == (
        "Governance in multi-stakeholder cooperatives",
        ["Ingrid Solberg"],
        "2022-04-12",
    )
    for broken in ((fixture_sites / "crawl/files/wp-3-appendix.pdf").read_bytes(), b"%PDF-1.7\n" + b"\x00" * 300, b"not a pdf"):
        with pytest.raises(ExtractionError) as err:
            extract_pdf(broken)
        assert err.value.reason == "bad_pdf"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Les coopératives d'habitants construisent des logements que personne ne pourra revendre avec profit.", "fr"),
        ("Las cooperativas de vivienda construyen casas que nadie podrá revender con fines de lucro.", "es"),
        ("Housing cooperatives build homes that nobody will ever be able to sell for a profit.", "en"),
        ("As cooperativas de habitação constroem casas que ninguém poderá revender com lucro.", "pt"),
        ("ok", ""),
    ],
)
def test_language_comes_from_the_text(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    ("title", "url", "text", "is_pdf", "default", "expected"),
    [
        ("Working Paper 12: Cooperative finance", "http://x/p/12.html", "", False, "", "working-paper"),
        ("Document de travail 2021-04", "http://x/p/4.html", "", False, "", "working-paper"),
        ("Policy brief: care cooperatives", "http://x/p.html", "", False, "", "policy-brief"),
        ("Estudio de caso: recicladores", "http://x/p.html", "", False, "", "case-study"),
        ("Annual report 2023", "http://x/p.html", "", False, "", "report"),
        ("Cooperatives grow", "http://x/news/p.html", "", False, "", "news"),
        ("Cooperatives grow", "http://x/p.html", "", False, "news", "news"),
        ("Cooperatives grow", "http://x/p.html", "A new report says so.", False, "article", "article"),
        ("scan0001", "http://x/f.pdf", "Policy brief. Food aid.", True, "", "policy-brief"),
        ("scan0001", "http://x/f.pdf", "Some text.", True, "", "report"),
        ("About us", "http://x/about.html", "", False, "", "page"),
    ],
)
def test_type_guess(title: str, url: str, text: str, is_pdf: bool, default: str, expected: str) -> None:
    assert guess_type(title, url, text, is_pdf=is_pdf, default=default) == expected


def test_dates() -> None:
    assert iso_date("2021-02-08T09:30:00+00:00") == "2021-02-08"
    assert iso_date("D:20190304120000Z") == "2019-03-04"
    assert iso_date("2020") == "2020"
    assert iso_date("last spring") is None
    assert parse_time("2023-11-02") < parse_time("2023-11-02T10:00:00+00:00") < parse_time("2024-01-01T00:00:00Z")
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_scrapy_settings_come_from_project_settings() -> None:
    settings = Settings(user_agent="ua/1", default_delay=2.5, request_timeout=7, max_page_bytes=1234)
    polite = scrapy_settings(settings, SourceConfig(id="a", kind="crawl", url="http://x/", documents=["d"]))
    assert polite["USER_AGENT"] == "ua/1" and polite["ROBOTSTXT_OBEY"] is True
    assert polite["DOWNLOAD_DELAY"] == 2.5 and polite["AUTOTHROTTLE_ENABLED"] and polite["AUTOTHROTTLE_START_DELAY"] == 2.5
    assert polite["DOWNLOAD_TIMEOUT"] == 7 and polite["DOWNLOAD_MAXSIZE"] == 1234
    assert 429 in polite["RETRY_HTTP_CODES"] and 500 in polite["RETRY_HTTP_CODES"]
    assert polite["TELNETCONSOLE_ENABLED"] is False and polite["HTTPCACHE_ENABLED"] is False
    local = scrapy_settings(settings, SourceConfig(id="b", kind="crawl", url="http://x/", documents=["d"], delay=0))
    assert local["DOWNLOAD_DELAY"] == 0 and not local["AUTOTHROTTLE_ENABLED"]
    assert "DOWNLOAD_DELAY" not in scrapy_settings(settings)  # the process-wide part leaves delays to each source


def test_registry_has_one_spider_per_kind() -> None:
    assert set(SPIDERS) == {"sitemap", "feed", "wordpress", "oai-pmh", "crawl"}
    assert all(spider_for(kind).kind == kind for kind in SPIDERS)
    assert spider_for("import") is None


def test_source_choice_and_unknown_ids(tmp_path: Path) -> None:
    sources = [
        SourceConfig(id="a", kind="sitemap", url="http://x/"),
        SourceConfig(id="b", kind="feed", url="http://x/f.xml", enabled=False),
        SourceConfig(id="c", kind="oai-pmh", url="http://x/oai"),
        SourceConfig(id="d", kind="import"),
    ]
    assert [s.id for s in select_sources(sources, None)] == ["a", "c"]
    assert [s.id for s in select_sources(sources, ["b", "a", "b"])] == ["b", "a"]
    with pytest.raises(ConfigError, match="cannot harvest d"):
        select_sources(sources, ["d"])
    file = tmp_path / "sources.yaml"
    file.write_text("sources:\n  - {id: alpha, kind: sitemap, url: 'http://127.0.0.1:9/'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        harvest(Settings(data_dir=tmp_path / "data", sources=file), ["nosuch"])
    assert "nosuch" in str(err.value) and "alpha" in str(err.value)
