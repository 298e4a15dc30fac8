"""The pages in a real browser: headless Debian chromium driven by Playwright, against a server on 127.0.0.1.

Skips with the reason when chromium or the playwright package is missing (`make test` installs both).
Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SearchCorpus, copy_fixture_sites, make_search_corpus

from searchapi.app import create_app
from ssehub.demo.server import SiteGroup
from ssehub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
KEY = "browser-test-key"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser: install Debian's `chromium` (make test does)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright package is not installed (pip install -e '.[test]')"),
    pytest.mark.timeout(300),
]


@dataclass
class Site:
    """The API on one origin, the widget host page on another, and what they serve."""

    base: str
    host_page: str
    corpus: SearchCorpus
    sources: Path


def _serve_api(settings: Settings, corpus: SearchCorpus) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(settings, embedder=corpus.embedder), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="browser-test-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@contextmanager
def serve_site(tmp: Path) -> Iterator[Site]:
    """The API over a small search corpus, the feed fixture site, and the widget host page, until the block ends."""
    corpus = make_search_corpus(tmp / "data")
    fixture_sites = copy_fixture_sites(tmp / "sites")
    host_dir = tmp / "host"
    host_dir.mkdir()
    group = SiteGroup({"feed": fixture_sites / "feed", "host": host_dir})
    urls = group.start()
    sources = tmp / "sources.yaml"
    sources.write_text(f"# sources of the browser test\nsources:\n  - id: news\n    name: Solidarity news\n    kind: feed\n"
                       f"    url: {urls['feed']}/rss.xml\n    delay: 0\n", encoding="utf-8")
    settings = Settings(data_dir=tmp / "data", sources=sources, model_path="hashing", curator_keys=KEY,
                        cors_origins=urls["host"])
    server, thread, base = _serve_api(settings, corpus)
    page = (ROOT / "examples" / "widget-host.html").read_text(encoding="utf-8")
    page = page.replace("http://127.0.0.1:8000", base).replace('data-limit="3"', 'data-limit="2"')
    (host_dir / "widget-host.html").write_text(page, encoding="utf-8")
    try:
        yield Site(base, f"{urls['host']}/widget-host.html", corpus, sources)
    finally:
        server.should_exit = True
        thread.join(30)
        group.close()
        corpus.store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(tmp_path_factory.mktemp("browser")) as served:
        yield served


@pytest.fixture
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site of its own: a harvest from the curator page indexes when it ends, which re-tags the synthetic corpus
    the other tests count on."""
    with serve_site(tmp_path_factory.mktemp("browser-admin")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no usable browser here"
            pytest.skip(f"chromium at {CHROMIUM} does not start under Playwright: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.set_default_timeout(15_000)
    yield p
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_search_page_query_facet_paging_and_document(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(site.base + "/")
    expect(page.locator("#status")).to_contain_text("31 documents")
    expect(page.locator("#page-label")).to_have_text("Page 1 of 4")
    page.click("#next")
    expect(page.locator("#page-label")).to_have_text("Page 2 of 4")
    expect(page.locator("#status")).to_contain_text("showing 11–20")
    expect(page.locator("#results > li")).to_have_count(10)
    page.click("#prev")
    expect(page.locator("#status")).to_contain_text("showing 1–10")

    page.fill("#q", "cooperatives")
    page.press("#q", "Enter")
    expect(page.locator("#status")).to_contain_text("for “cooperatives”")
    assert page.locator("#results mark").count() > 0
    sdg8 = page.locator("label[for=f-sdg-8]")
    expect(sdg8).to_contain_text("Decent work")
    assert sdg8.locator(".sdg-chip").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(162, 25, 66)"  # #A21942
    page.focus("#f-sdg-8")
    page.keyboard.press("Space")  # facets work from the keyboard
    expect(page.locator("#f-sdg-8")).to_be_checked()
    expect(page).to_have_url(re.compile(r"sdg=8"))
    hits = page.locator("#results > li")
    expect(hits).to_have_count(3)
    for i in range(3):
        assert "8" in hits.nth(i).locator(".badges").inner_text().split()
    csv_link = page.locator("#exports a[data-format=csv]").get_attribute("href")
    assert "format=csv" in csv_link and "sdg=8" in csv_link and "q=cooperatives" in csv_link
    assert page.request.get(site.base + csv_link).text().count("\n") == 4  # header + 3 documents
    assert page.locator("#results-region").get_attribute("aria-live") == "polite"
    shot(page, "search-page")

    page.locator("#results a.doc-link", has_text="Worker cooperatives and decent work").click()
    expect(page.locator("#doc-title")).to_have_text("Worker cooperatives and decent work")
    expect(page.locator("#doc-evidence li")).to_contain_text("Decent work")
    expect(page.locator("#doc-text")).to_contain_text("share ownership")
    expect(page.locator("#doc-similar li").first).to_be_visible()
    assert page.locator("#doc-similar a.doc-link").count() >= 1
    shot(page, "document-page")
    page.click("#back")
    expect(page.locator("#status")).to_contain_text("for “cooperatives”")


def test_stats_page_draws_charts(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(site.base + "/stats")
    expect(page.locator("#status")).to_contain_text("31 searchable documents")
    bars = page.locator("svg.bars-sdg rect")
    expect(bars).to_have_count(17)
    assert bars.nth(7).get_attribute("data-value") == "3" and bars.nth(7).get_attribute("fill") == "#A21942"
    assert page.locator("svg.bars-year rect").count() >= 12  # 2010..2022, empty years included
    sources = page.locator("svg.bars-source rect")
    assert sorted(int(sources.nth(i).get_attribute("data-value")) for i in range(sources.count())) == [15, 16]
    assert page.locator("svg.bars-lang").get_attribute("role") == "img"
    shot(page, "stats-page")
    page.locator("#chart-sdg summary").click()  # the numbers as a table, for screen readers and copying
    expect(page.locator("#chart-sdg table")).to_contain_text("8 Decent work")


def test_admin_page_sources_harvest_tags_and_hiding(admin_site: Site, page: Any) -> None:
    site = admin_site
    from playwright.sync_api import expect

    page.on("dialog", lambda d: d.accept())
    page.goto(site.base + "/admin")
    page.fill("#key", "wrong")
    page.click("#login button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("curator key")
    expect(page.locator("#desk")).to_be_hidden()
    page.fill("#key", KEY)
    page.click("#login button[type=submit]")
    expect(page.locator("#sources tbody tr[data-source=news]")).to_contain_text("never")

    # add a source, with a mistake first: the error names the field and nothing is written
    page.click("#add-source")
    page.fill("#s-id", "gamma")
    page.fill("#s-url", "ftp://gamma.example/")
    page.click("#save-source")
    expect(page.locator("#form-errors")).to_contain_text("field url")
    assert page.locator("#s-url").get_attribute("aria-invalid") == "true" and "gamma" not in site.sources.read_text()
    page.fill("#s-url", "https://gamma.example/feed/")
    page.fill("#s-languages", "fr, es")
    page.click("#save-source")
    expect(page.locator("#sources tbody tr[data-source=gamma]")).to_contain_text("enabled")
    page.click("button[aria-label='Disable gamma']")
    expect(page.locator("#sources tbody tr[data-source=gamma]")).to_contain_text("disabled")
    saved = {s["id"]: s for s in yaml.safe_load(site.sources.read_text())["sources"]}
    assert saved["gamma"]["enabled"] is False and saved["gamma"]["languages"] == ["fr", "es"]
    assert site.sources.read_text().startswith("# sources of the browser test")

    # harvest one source and watch it finish
    page.click("button[aria-label='Harvest news']")
    expect(page.locator("#progress-title")).to_contain_text("finished", timeout=120_000)
    expect(page.locator("#progress-counts")).to_contain_text("new")
    expect(page.locator("#sources tbody tr[data-source=news]")).to_contain_text("finished")
    shot(page, "admin-page")
    page.click("button[aria-label='Delete gamma']")
    expect(page.locator("#sources tbody tr[data-source=gamma]")).to_have_count(0)

    # correct a document's tags, hide it, restore it
    page.fill("#doc-query", "coop-1")
    page.press("#doc-query", "Enter")
    expect(page.locator("#doc-edit-title")).to_contain_text("coop-1")
    expect(page.locator("#pick-8")).to_be_checked()
    page.check("#pick-5")
    page.click("#save-tags")
    expect(page.locator("#doc-edit-state")).to_contain_text("set by a curator")
    assert site.corpus.store.document("coop-1")["manual_sdgs"] == [5, 8]
    page.click("#auto-tags")
    expect(page.locator("#doc-edit-state")).to_contain_text("from the tagger")
    page.click("#toggle-hidden")
    expect(page.locator("#hidden-docs")).to_contain_text("coop-1")
    assert site.corpus.store.document("coop-1")["hidden"] is True
    page.click("button[aria-label='Restore coop-1']")
    expect(page.locator("#hidden-docs")).not_to_contain_text("coop-1")
    assert site.corpus.store.document("coop-1")["hidden"] is False
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ssehub-key')") is None


def test_widget_on_another_origin(site: Site, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(site.host_page)
    widget = page.locator("[data-ssehub-widget]")
    status = widget.locator(".status")
    expect(status).to_have_text("3 documents")  # SDG 5 or 8, English (data-sdg="5,8" data-lang="en")
    expect(widget.locator("ol.results > li")).to_have_count(2)
    expect(widget.locator(".page")).to_have_text("Page 1 of 2")
    widget.locator("button.next").click()
    expect(widget.locator(".page")).to_have_text("Page 2 of 2")
    expect(widget.locator("ol.results > li")).to_have_count(1)
    chips = widget.locator(".sdg-facet button.chip")
    expect(chips).to_have_count(2)  # only the preset goals are offered
    widget.locator(".sdg-facet button.chip", has_text="5").click()
    expect(status).to_have_text("1 document")
    expect(widget.locator(".sdg-facet button.chip", has_text="5")).to_have_attribute("aria-pressed", "true")
    widget.locator("input").fill("cooperatives")
    widget.locator("input").press("Enter")
    expect(widget.locator("ol.results mark").first).to_be_visible()
    # the host's CSS does not reach the widget, and the widget's does not reach the host
    button_bg = widget.locator("form button").evaluate("e => getComputedStyle(e).backgroundColor")
    assert button_bg == "rgb(25, 72, 106)"  # the widget's own colour, not the host's hotpink
    assert widget.locator("li").first.evaluate("e => getComputedStyle(e).color") != "rgb(220, 20, 60)"
    assert page.locator("ul.host-list li").evaluate("e => getComputedStyle(e).color") == "rgb(220, 20, 60)"
    shot(page, "widget-host")


# The first search of the words below answers 1.5 s late, as a slow API or network would; window.__slowDone says when.
SLOW_FIRST = """
const realFetch = window.fetch;
let held = false;
window.fetch = (url, ...rest) => {
  if (held || !String(url).includes("q=cooperatives")) return realFetch(url, ...rest);
  held = true;
  return new Promise((ok) => setTimeout(ok, 1500)).then(() => realFetch(url, ...rest))
    .finally(() => setTimeout(() => { window.__slowDone = true; }, 200));
};
"""


def test_search_page_with_a_slow_or_failing_api_and_the_keyboard(site: Site, page: Any) -> None:
    """A slow first answer arriving after the second drew the old words' results under the new ones; a 502 page
    said "Unexpected token '<'"; a document the API could not give stayed "Loading…" with an uncaught error; toggling
    a facet from the keyboard sent focus to <body>."""
    from playwright.sync_api import expect

    page.context.add_init_script(SLOW_FIRST)
    page.goto(site.base + "/")
    expect(page.locator("#status")).to_contain_text("documents, showing 1–10")  # 31, or more after the harvest test
    page.fill("#q", "cooperatives")
    page.press("#q", "Enter")
    expect(page.locator("#status")).to_have_text("Searching…")  # said while the answer is late
    page.fill("#q", "housing")
    page.press("#q", "Enter")
    expect(page.locator("#status")).to_contain_text("for “housing”")
    want = page.request.get(f"{site.base}/api/search?q=housing&mode=hybrid&limit=10").json()
    page.wait_for_function("window.__slowDone === true")
    expect(page.locator("#status")).to_contain_text(f"{want['total']} documents for “housing”")
    expect(page.locator("#results a.doc-link").first).to_have_text(want["results"][0]["title"])

    page.fill("#q", "cooperatives")
    page.press("#q", "Enter")
    expect(page.locator("#status")).to_contain_text("for “cooperatives”")
    page.focus("#f-sdg-8")
    page.keyboard.press("Space")
    expect(page.locator("#f-sdg-8")).to_be_checked()
    expect(page.locator("#f-sdg-8")).to_be_focused()  # the redrawn facet keeps the keyboard's place
    page.keyboard.press("Space")
    expect(page.locator("#f-sdg-8")).not_to_be_checked()

    page.route("**/api/search?**", lambda route: route.fulfill(status=502, content_type="text/html",
                                                              body="<html><body>Bad gateway</body></html>"))
    page.press("#q", "Enter")
    expect(page.locator("#status")).to_have_text("Search failed: the server answered 502 Bad Gateway")
    page.unroute("**/api/search?**")
    page.goto(site.base + "/?q=cooperatives&year_from=20201")  # a shared link; the form itself refuses the value
    expect(page.locator("#status")).to_contain_text("year_from: Input should be less than or equal to 9999")

    page.route("**/api/documents/**", lambda route: route.fulfill(status=503, body="Service Unavailable"))
    page.goto(site.base + "/?doc=coop-1")
    expect(page.locator("#doc-title")).to_have_text("This document cannot be shown: the server answered 503 Service Unavailable")


def test_admin_document_search_says_why_it_failed(site: Site, page: Any) -> None:
    """A curator's document search answered "No document found." when the search itself failed (no index yet)."""
    from playwright.sync_api import expect

    page.goto(site.base + "/admin")
    page.fill("#key", KEY)
    page.click("#login button[type=submit]")
    expect(page.locator("#desk")).to_be_visible()
    page.route("**/api/search?**", lambda route: route.fulfill(
        status=409, content_type="application/json", body='{"detail": "no search index yet: run `ssehub index`"}'))
    page.fill("#doc-query", "worker cooperatives")
    page.press("#doc-query", "Enter")
    expect(page.locator("#notice")).to_have_text("Search failed: no search index yet: run `ssehub index`")


def test_widget_with_a_slow_api_and_the_keyboard(site: Site, page: Any) -> None:
    """The widget drew whichever answer came last, and a chip pressed from the keyboard lost focus to the host page."""
    from playwright.sync_api import expect

    page.context.add_init_script(SLOW_FIRST)
    page.goto(site.host_page)
    widget = page.locator("[data-ssehub-widget]")
    expect(widget.locator(".status")).to_contain_text("document")
    widget.locator("input").fill("cooperatives")
    widget.locator("input").press("Enter")
    widget.locator("input").fill("worker")
    widget.locator("input").press("Enter")
    want = page.request.get(f"{site.base}/api/search?q=worker&sdg=5&sdg=8&lang=en&limit=2").json()
    page.wait_for_function("window.__slowDone === true")
    first = widget.locator("ol.results > li a").first
    expect(first).to_have_text(want["results"][0]["title"])
    expect(widget.locator(".status")).to_have_text(f"{want['total']} document{'s' if want['total'] != 1 else ''}")

    widget.locator("input").fill("")
    widget.locator("input").press("Enter")
    chip = widget.locator(".sdg-facet button.chip", has_text="8")
    chip.focus()
    page.keyboard.press("Enter")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_be_focused()


def test_api_reference_pages_work_offline(site: Site, page: Any) -> None:
    """/docs (linked from the search page) draws every endpoint with only this server's files: a request
    to any other host fails, as it does on a hub server without outside access (FastAPI's pages used a CDN)."""
    from playwright.sync_api import expect

    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(site.base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(site.base + "/")
    page.click("nav a[href='/docs']")
    expect(page.locator(".swagger-ui .opblock-summary-path[data-path='/api/search']").first).to_be_visible()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ssehub")
    page.locator(".opblock-summary-path[data-path='/api/search']").first.click()  # open it: parameters are listed
    expect(page.locator(".swagger-ui .parameters-col_name").filter(has_text="year_from").first).to_be_visible()
    assert not elsewhere, f"the reference pages asked other hosts: {elsewhere}"


def test_widget_without_an_answer_says_so_and_tells_the_webmaster_why(site: Site, page: Any) -> None:
    """No answer at all (the server down, or its SSEHUB_CORS_ORIGINS refusing the host page) showed only the
    browser's "Failed to fetch"; the reader now reads that the service cannot be reached, the console names the fix."""
    from playwright.sync_api import expect

    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text) if message.type == "error" else None)
    page.route(site.base + "/api/**", lambda route: route.abort())
    page.goto(site.host_page)
    status = page.locator("[data-ssehub-widget] .status")
    expect(status).to_have_text("Search failed: the search service cannot be reached")
    host_origin = site.host_page.split("/widget-host.html")[0]
    assert any("SSEHUB_CORS_ORIGINS" in text and host_origin in text for text in logged), logged


def test_widget_on_a_hub_not_indexed_yet_tells_readers_to_come_back(site: Site, page: Any) -> None:
    """The API's 409 for documents stored but never indexed says to run `ssehub index`: advice for the operator, which
    the widget showed to the hub's readers. They now read that the search is being prepared; the console keeps it."""
    from playwright.sync_api import expect

    advice = "documents are stored but none is indexed yet, so no query can find them: run `ssehub index`"
    warned: list[str] = []
    page.on("console", lambda message: warned.append(message.text) if message.type == "warning" else None)
    page.route(site.base + "/api/search?**", lambda route: route.fulfill(
        status=409, content_type="application/json", body=json.dumps({"detail": advice})))
    page.goto(site.host_page)
    status = page.locator("[data-ssehub-widget] .status")
    expect(status).to_have_text("Search failed: the search is being prepared; please try again later")
    assert "ssehub index" not in status.inner_text()
    assert any(advice in text for text in warned), warned
