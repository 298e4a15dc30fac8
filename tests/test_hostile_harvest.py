"""The harvester against hostile sites: odd encodings, error pages that answer 200, walls, bombs, locked PDFs, an
unreachable robots.txt, Crawl-delay, Retry-After, and two harvests of one source at once.

Each site is a handler served on 127.0.0.1 and harvested by `ssehub harvest` in a subprocess, as a curator runs it.
Every case here failed before its fix (session 7): a page stored with the wrong text or not at all, an error page
stored over a good document, a host fetched when it asked not to be, or a failure reported with no usable reason.
"""

from __future__ import annotations

import gzip
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harvester.extract import ExtractionError, decode_html, extract_html, wall_reason
from ssehub.demo.server import Reply, SiteGroup, SiteRequest
from ssehub.store import Store

pytestmark = pytest.mark.timeout(240)

HTML = {"Content-Type": "text/html"}
FRENCH = [
    ("L'économie sociale et solidaire réunit des coopératives, des mutuelles et des associations qui créent des emplois "
     "durables dans les territoires ruraux, là où l'État se retire et où les entreprises privées ferment leurs portes."),
    ("Les épiceries solidaires vendent des produits frais à prix réduit : les ménages choisissent eux-mêmes leurs achats, "
     "ce qui respecte leur dignité et soutient les fermes biologiques des environs, payées à un prix équitable."),
    ("Une société coopérative d'intérêt collectif associe salariés, usagers, bénévoles et collectivités au même conseil ; "
     "chaque collège pèse selon les statuts, et les excédents sont réinvestis dans l'activité plutôt que distribués."),
]
ENGLISH = [
    ("Worker cooperatives share ownership of the enterprise and decide democratically how its surplus is used, "
     "which keeps jobs in the region when the founder retires or a multinational closes the plant."),
    ("Community land trusts hold land for ever and lease it to households at a low ground rent, with resale prices "
     "capped by a formula written into the lease so that each home stays affordable for the next family."),
    ("Mutual health insurance schemes let street vendors and domestic workers pool small monthly contributions and "
     "cover hospital costs that would otherwise push families into debt, with members electing the board."),
    ("Energy cooperatives let citizens invest together in wind and solar power, keep the returns in the village and "
     "cut emissions, while a part of the surplus pays for insulating the homes of the poorest members."),
]


VOCABULARY = (" ".join(ENGLISH)).lower().replace(",", "").replace(".", "").split()


def note(n: int) -> str:
    """A text of its own for note n (distinct enough that no two notes are near-duplicates)."""
    import random

    rng = random.Random(n)
    return f"Note {n}. " + " ".join(rng.choice(VOCABULARY) for _ in range(80)) + "."


def page(title: str, text: str, head: str = "") -> str:
    """A plain article page."""
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n"))
    return f"<html><head>{head}<title>{title}</title></head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"


def pdf(text: str, user_password: str | None = None) -> bytes:
    """A one-page PDF; encrypted (AES-128, owner password set) when `user_password` is given ('' opens it)."""
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=11)
    doc.multi_cell(0, 6, text)
    if user_password is not None:
        doc.set_encryption(owner_password="owner", user_password=user_password, encryption_method=EncryptionMethod.AES_128)
    return bytes(doc.output())


@dataclass
class Site:
    """A site whose answers a test sets by path (and may change between harvests); records when each request ran."""

    answers: dict[str, Reply] = field(default_factory=dict)
    latency: float = 0.0  # seconds before a /docs/ page answers
    hits: list[tuple[str, float, float, int]] = field(default_factory=list)  # path (with query), start, end, status
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: SiteRequest) -> Reply:
        start = time.monotonic()
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        reply = self.answers.get(request.path, Reply(404, "not found\n"))
        if callable(reply):
            reply = reply(request)
        if request.path.startswith("/docs/"):
            time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
            self.hits.append((request.path, start, time.monotonic(), reply.status))
        return reply

    def listing(self, paths: list[str]) -> None:
        """The start page linking every given path."""
        links = "".join(f'<a href="{p}">{p}</a> ' for p in paths)
        self.answers["/"] = Reply(200, f"<html><head><title>Library</title></head><body><nav>{links}</nav></body></html>", HTML)

    def starts(self, prefix: str = "/docs/") -> list[float]:
        with self.lock:
            return sorted(s for p, s, _, _ in self.hits if p.startswith(prefix))


def crawl_source(name: str, url: str, delay: float = 0) -> str:
    return f"  - id: {name}\n    kind: crawl\n    url: {url}/\n    documents: ['/docs/']\n    delay: {delay}\n"


def harvest_command(tmp: Path) -> list[str]:
    return [sys.executable, "-m", "ssehub", "--data", str(tmp / "data"), "--sources", str(tmp / "sources.yaml"), "harvest"]


# A timeout well above the sites' latencies, so that a loaded machine does not turn a slow answer into a retry.
HARVEST_ENV = {"SSEHUB_REQUEST_TIMEOUT": "5", "SSEHUB_MAX_PAGE_BYTES": "1000000", "SSEHUB_RETRY_BACKOFF": "0.2",
               "SSEHUB_EXTRACT_WORKERS": "0"}


@dataclass
class Result:
    output: str
    runs: dict[str, dict[str, Any]]  # source -> its newest run, with errors
    docs: dict[str, dict[str, Any]]  # url path -> document row

    def errors(self, source: str) -> dict[str, str]:
        """url path -> reason of the newest run's failures."""
        return {e["url"].split("/", 3)[3]: e["reason"] for e in self.runs[source]["errors"]}


def harvest(tmp: Path, sources: str, **env: str) -> Result:
    (tmp / "sources.yaml").write_text("sources:\n" + sources, encoding="utf-8")
    proc = subprocess.run(harvest_command(tmp), check=False, env={**os.environ, **HARVEST_ENV, **env}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return read_store(tmp, proc.stdout + proc.stderr)


def read_store(tmp: Path, output: str) -> Result:
    store = Store(tmp / "data" / "ssehub.db")
    try:
        runs: dict[str, dict[str, Any]] = {}
        for row in store.runs():
            runs.setdefault(row["sources"][0], store.run(row["id"]))
        rows = store.db.execute("SELECT url, status, title, text, hash FROM documents").fetchall()
        docs = {r[0].split("/", 3)[3]: {"status": r[1], "title": r[2], "text": r[3], "hash": r[4]} for r in rows}
    finally:
        store.close()
    return Result(output, runs, docs)


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Site], Path], dict[str, str]]]:
    groups: list[SiteGroup] = []

    def start(sites: dict[str, Site], tmp: Path) -> dict[str, str]:
        for name in sites:
            (tmp / name).mkdir(exist_ok=True)
        group = SiteGroup({name: tmp / name for name in sites}, handlers=dict(sites))
        groups.append(group)
        return group.start()

    yield start
    for group in groups:
        group.close()


# -- pages that are not what they seem ----------------------------------------------------------------------------

SOFT_404 = page("Page not found", "Sorry, the page you are looking for could not be found. It may have been moved or "
                "deleted. Please use the search box or go back to the home page.")
LOGIN = page("Members area", "You must be logged in to view this content. Please sign in with your member account "
             "or register for free to read the full article.")
COOKIES = page("Before you continue", "We use cookies to measure the audience of this site and to show you relevant "
               "content. Accept all cookies or manage your preferences to continue.")


def test_odd_pages_and_files_are_read_or_refused_with_a_reason(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    site = Site()
    docs = {
        # windows-1252 under a UTF-8 header (a server default): was refused as bad_encoding, the document lost
        "/docs/cp1252-under-utf8": Reply(200, page("Économie sociale", FRENCH[0]).encode("cp1252"),
                                         {"Content-Type": "text/html; charset=utf-8"}),
        # UTF-8 under an ISO-8859-1 header: was stored as mojibake ("Ã©conomie")
        "/docs/utf8-under-latin1": Reply(200, page("Épiceries solidaires", FRENCH[1]).encode("utf-8"),
                                         {"Content-Type": "text/html; charset=iso-8859-1"}),
        # windows-1252 declared nowhere (read right before too)
        "/docs/cp1252-undeclared": Reply(200, page("Coopérative d'intérêt collectif", FRENCH[2]).encode("cp1252"), HTML),
        "/docs/empty": Reply(200, b"", HTML),
        "/docs/soft-404": Reply(200, SOFT_404, HTML),
        "/docs/members-only": Reply(200, LOGIN, HTML),
        "/docs/cookie-wall": Reply(200, COOKIES, HTML),
        "/docs/moved": Reply(301, "", {"Location": "/"}),  # a removed page sent to the home page
        # 50 MB of spaces in 49 kB of gzip: the cap applies while decompressing (was reported as "ignored")
        "/docs/bomb": Reply(200, gzip.compress(b"<html>" + b" " * 50_000_000), {**HTML, "Content-Encoding": "gzip"}),
        "/docs/locked.pdf": Reply(200, pdf(ENGLISH[0], user_password="secret"), {"Content-Type": "application/pdf"}),
        "/docs/protected.pdf": Reply(200, pdf(ENGLISH[1], user_password=""), {"Content-Type": "application/pdf"}),
        # an HTML page under a PDF type (was bad_pdf, 'EOF marker not found'): read as the page it is
        "/docs/report.pdf": Reply(200, LOGIN, {"Content-Type": "application/pdf"}),
    }
    site.answers |= docs
    site.answers["/docs/good"] = Reply(200, page("Energy cooperatives", ENGLISH[3]), HTML)
    site.listing([*docs, "/docs/good"])
    urls = serve({"odd": site}, tmp_path)
    result = harvest(tmp_path, crawl_source("odd", urls["odd"]))

    stored = {path: d["text"] for path, d in result.docs.items()}
    assert "L'économie sociale et solidaire" in stored["docs/cp1252-under-utf8"]
    assert "Les épiceries solidaires" in stored["docs/utf8-under-latin1"] and "Ã" not in stored["docs/utf8-under-latin1"]
    assert "d'intérêt collectif" in stored["docs/cp1252-undeclared"]
    assert result.docs["docs/utf8-under-latin1"]["title"] == "Épiceries solidaires"
    assert "Community land trusts hold land" in stored["docs/protected.pdf"]  # empty user password: opened
    assert "" not in stored  # the home page a removed page redirected to is not a document
    assert set(stored) == {"docs/cp1252-under-utf8", "docs/utf8-under-latin1", "docs/cp1252-undeclared",
                           "docs/protected.pdf", "docs/good"}
    assert result.errors("odd") == {
        "docs/empty": "no_text",
        "docs/soft-404": "soft_404",
        "docs/members-only": "login_wall",
        "docs/cookie-wall": "cookie_wall",
        "docs/moved": "soft_404",
        "docs/bomb": "too_big",
        "docs/locked.pdf": "encrypted_pdf",
        "docs/report.pdf": "login_wall",
    }
    details = {e["reason"]: e["detail"] for e in result.runs["odd"]["errors"]}
    assert "redirected to" in details["soft_404"] or "says it is not found" in details["soft_404"]
    assert "password" in details["encrypted_pdf"] and "DOWNLOAD_MAXSIZE" in details["too_big"]
    assert "Traceback" not in result.output and "ERROR" not in result.output
    assert "failed 8 (cookie_wall 1, encrypted_pdf 1, login_wall 2, no_text 1, soft_404 2, too_big 1)" in result.output


def test_a_page_turned_error_page_keeps_its_stored_document(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """A stored document whose page now answers 200 with a 'not found' page, a log-in wall or a redirect home keeps
    its text (before: the error page's text replaced it, or the home page was stored as a new document)."""
    site = Site()
    paths = ["/docs/a", "/docs/b", "/docs/c", "/docs/d"]
    for path, text in zip(paths, ENGLISH, strict=True):
        site.answers[path] = Reply(200, page(f"Report {path[-1]}", text), HTML)
    site.listing(paths)
    urls = serve({"lib": site}, tmp_path)
    first = harvest(tmp_path, crawl_source("lib", urls["lib"]))
    assert set(first.docs) == {p.lstrip("/") for p in paths}

    site.answers["/docs/a"] = Reply(200, SOFT_404, HTML)
    site.answers["/docs/b"] = Reply(200, LOGIN, HTML)
    site.answers["/docs/c"] = Reply(302, "", {"Location": "/"})
    second = harvest(tmp_path, crawl_source("lib", urls["lib"]))
    assert second.docs == first.docs  # same documents, same text, all still active
    assert all(d["status"] == "active" for d in second.docs.values())
    assert second.errors("lib") == {"docs/a": "soft_404", "docs/b": "login_wall", "docs/c": "soft_404"}
    counts = second.runs["lib"]["counts"]
    assert counts["new"] == counts["updated"] == counts["withdrawn"] == 0


def test_links_that_mislead(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """A CMS naming its home page the canonical of every page made every document a duplicate of the home page (all
    lost); a link longer than Scrapy fetches vanished without a word to the curator."""
    site = Site()
    paths = ["/docs/a", "/docs/b", "/docs/c"]
    for path, text in zip(paths, ENGLISH, strict=False):
        site.answers[path] = Reply(200, page(f"Report {path[-1]}", text, head='<link rel="canonical" href="/">'), HTML)
    long_path = "/docs/" + "x" * 2100
    site.listing([*paths, long_path])
    urls = serve({"cms": site}, tmp_path)
    result = harvest(tmp_path, crawl_source("cms", urls["cms"]))
    assert set(result.docs) == {"docs/a", "docs/b", "docs/c"}
    assert result.errors("cms") == {long_path.lstrip("/"): "url_too_long"}
    assert long_path not in {p for p, _, _, _ in site.hits}


def test_a_site_that_moved_to_another_host_is_still_the_source(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """sources.yaml names http://example.org/ and every page redirects to https://www.example.org/ (here: 127.0.0.1
    to localhost): the moved entry page's links, PDFs and canonicals were all off-site, and nothing was harvested."""
    site = Site()
    paths = ["/docs/a", "/docs/b"]
    for path, text in zip(paths, ENGLISH, strict=False):
        site.answers[path] = Reply(200, page(f"Report {path[-1]}", f'{text}\n<a href="/docs/a.pdf">The report</a>'), HTML)
    site.answers["/docs/a.pdf"] = Reply(200, pdf(ENGLISH[2]), {"Content-Type": "application/pdf"})
    site.listing(paths)
    listing = site.answers["/"]
    urls = serve({"moved": site}, tmp_path)
    moved_to = urls["moved"].replace("127.0.0.1", "localhost")
    site.answers["/"] = lambda request: (listing if request.headers.get("host", "").startswith("localhost")
                                         else Reply(301, "", {"Location": moved_to + "/"}))
    result = harvest(tmp_path, crawl_source("moved", urls["moved"]))
    assert set(result.docs) == {"docs/a", "docs/b", "docs/a.pdf"}
    assert result.runs["moved"]["counts"]["skipped_offsite"] == 0


def test_a_sitemap_index_with_broken_children(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """Each broken child sitemap fails with its own reason and the good one is harvested; a gzip bomb was reported as
    'not a sitemap' (bad_sitemap), now too_big with the cap it ran into."""
    site = Site()
    xml = {"Content-Type": "application/xml"}
    gz = {"Content-Type": "application/x-gzip"}
    children = ["/s-bomb.xml.gz", "/s-broken.xml", "/s-good.xml.gz", "/s-missing.xml"]
    site.answers["/sitemap_index.xml"] = lambda request: Reply(200, '<?xml version="1.0"?><sitemapindex '
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(f"<sitemap><loc>{request.base_url}{c}</loc></sitemap>" for c in children) + "</sitemapindex>", xml)
    site.answers["/s-bomb.xml.gz"] = Reply(200, gzip.compress(b'<?xml version="1.0"?><urlset>' + b" " * 5_000_000), gz)
    site.answers["/s-broken.xml"] = Reply(200, "<html><body>Sitemap temporarily unavailable</body></html>", xml)
    site.answers["/s-good.xml.gz"] = lambda request: Reply(200, gzip.compress(
        ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
         + "".join(f"<url><loc>{request.base_url}/docs/{p}</loc></url>" for p in "ab") + "</urlset>").encode()), gz)
    for name, text in zip("ab", ENGLISH, strict=False):
        site.answers[f"/docs/{name}"] = Reply(200, page(f"Report {name}", text), HTML)
    urls = serve({"maps": site}, tmp_path)
    result = harvest(tmp_path, f"  - id: maps\n    kind: sitemap\n    url: {urls['maps']}/sitemap_index.xml\n    delay: 0\n")
    assert set(result.docs) == {"docs/a", "docs/b"}
    assert result.errors("maps") == {"s-bomb.xml.gz": "too_big", "s-broken.xml": "bad_sitemap", "s-missing.xml": "http_404"}
    assert "Traceback" not in result.output


def oai_records(numbers: range, token: str) -> Reply:
    """A ListRecords answer with Dublin Core records (description only) and a resumption token."""
    records = "".join(
        f"<record><header><identifier>oai:loop:{n}</identifier><datestamp>2024-01-0{n}</datestamp></header><metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>Record {n}</dc:title><dc:description>{note(200 + n)}</dc:description></oai_dc:dc></metadata></record>"
        for n in numbers
    )
    return Reply(200, '<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
                 f"<ListRecords>{records}<resumptionToken>{token}</resumptionToken></ListRecords></OAI-PMH>",
                 {"Content-Type": "text/xml; charset=utf-8"})


def test_an_oai_resumption_token_loop_does_not_move_the_watermark(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """A repository that hands out the same token again stopped the listing silently, and the run moved the `from=`
    watermark as if the list were complete: the records never listed would never be asked for again."""
    site = Site()
    site.answers["/oai"] = lambda request: oai_records(range(1, 3) if request.arg("resumptionToken") is None else range(3, 5), "p2")
    urls = serve({"repo": site}, tmp_path)
    result = harvest(tmp_path, f"  - id: repo\n    kind: oai-pmh\n    url: {urls['repo']}/oai\n    delay: 0\n")
    assert len(result.docs) == 4
    assert [e["reason"] for e in result.runs["repo"]["errors"]] == ["oai_token_loop"]
    assert [p for p, _, _, _ in site.hits if p == "/oai"] == ["/oai", "/oai"]  # the looping token asked for once
    store = Store(tmp_path / "data" / "ssehub.db")
    try:
        assert store.harvest_state("repo", "since") is None  # the next harvest lists everything again
    finally:
        store.close()


def test_a_page_gone_and_back_keeps_the_curator_s_edits(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """404 withdraws the document (kept, out of search) with its hand-set tags and hidden flag; when the page comes back
    with new text the same document is active again, edits intact. The contract is silent; this is what a curator's
    work needs."""
    site = Site()
    site.answers["/docs/a"] = Reply(200, page("Report a", ENGLISH[0]), HTML)
    site.answers["/docs/b"] = Reply(200, page("Report b", ENGLISH[1]), HTML)
    site.listing(["/docs/a", "/docs/b"])
    urls = serve({"lib": site}, tmp_path)
    source = crawl_source("lib", urls["lib"])
    harvest(tmp_path, source)
    store = Store(tmp_path / "data" / "ssehub.db")
    (doc_id,) = [r[0] for r in store.db.execute("SELECT id FROM documents WHERE url LIKE '%/docs/a'")]
    store.set_manual_tags(doc_id, [5, 8])
    store.set_hidden(doc_id, True)
    store.close()

    def edits() -> tuple[Any, ...]:
        check = Store(tmp_path / "data" / "ssehub.db")
        try:
            row = check.db.execute("SELECT status, manual_sdgs, hidden, text FROM documents WHERE id = ?", [doc_id]).fetchone()
            return tuple(row)
        finally:
            check.close()

    site.answers["/docs/a"] = Reply(410, "gone\n")
    gone = harvest(tmp_path, source)
    assert gone.runs["lib"]["counts"]["withdrawn"] == 1
    assert edits()[:3] == ("withdrawn", "[5, 8]", 1)
    site.answers["/docs/a"] = Reply(200, page("Report a", ENGLISH[0] + " Revised in 2025."), HTML)
    back = harvest(tmp_path, source)
    assert back.runs["lib"]["counts"]["updated"] == 1
    status, manual, hidden, text = edits()
    assert (status, manual, hidden) == ("active", "[5, 8]", 1) and "Revised in 2025" in text


class Endless(BaseHTTPRequestHandler):
    """Streams /docs/endless as chunked HTML with no Content-Length, up to 100 MB, counting what it could send."""

    protocol_version = "HTTP/1.1"
    sent = 0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path != "/docs/endless":
            body = b'<html><body><a href="/docs/endless">all of it</a></body></html>' if self.path == "/" else b"no\n"
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<p>" + b"cooperative " * 5000 + b"</p>"
        try:
            for _ in range(100_000_000 // len(chunk)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                type(self).sent += len(chunk)
        except OSError:
            return  # the harvester hung up


def test_a_page_with_no_length_is_cut_while_it_downloads(tmp_path: Path) -> None:
    """The size cap holds on a chunked body that never says how long it is: the download stops near the cap."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        result = harvest(tmp_path, crawl_source("big", f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        server.shutdown()
        server.server_close()
    assert result.errors("big") == {"docs/endless": "too_big"}
    assert Endless.sent < 20_000_000  # 1 MB cap: cut early, not after 100 MB (socket buffers let a few MB through)


# -- politeness -----------------------------------------------------------------------------------------------------


def test_an_unreachable_robots_txt_means_nothing_is_fetched_and_nothing_lost(
    tmp_path: Path, serve: Callable[..., dict[str, str]]
) -> None:
    """RFC 9309: a robots.txt answering 5xx (or not answering) means the host may not be crawled. Scrapy read the
    error page as rules that allow everything; a timeout allowed everything after an ERROR with a traceback."""
    site = Site()
    paths = ["/docs/a", "/docs/b", "/docs/c"]
    for path, text in zip(paths, ENGLISH[:3], strict=True):
        site.answers[path] = Reply(200, page(f"Report {path[-1]}", text), HTML)
    site.listing(paths)
    site.answers["/robots.txt"] = Reply(200, "User-agent: *\nAllow: /\n", {"Content-Type": "text/plain"})
    urls = serve({"lib": site}, tmp_path)
    source = crawl_source("lib", urls["lib"])
    first = harvest(tmp_path, source)
    assert len(first.docs) == 3

    for robots in (Reply(503, "Service unavailable\n"), lambda _: time.sleep(1.6) or Reply(200, "User-agent: *\nAllow: /\n")):
        site.answers["/robots.txt"] = robots  # type: ignore[assignment]
        mark = len(site.hits)
        result = harvest(tmp_path, source, SSEHUB_REQUEST_TIMEOUT="1")
        assert {p for p, _, _, _ in site.hits[mark:]} == {"/robots.txt"}  # retried, and nothing else asked for
        assert result.docs == first.docs  # nothing withdrawn, nothing changed
        assert result.errors("lib") == {"robots.txt": "robots_unreachable"}
        detail = result.runs["lib"]["errors"][0]["detail"]
        assert "RFC 9309" in detail and "next harvest" in detail
        assert "Traceback" not in result.output and "ERROR" not in result.output


def notes_site(paths: list[str], first: int, latency: float = 0.0) -> Site:
    """A site listing `paths`, each a note of its own (numbered from `first`)."""
    site = Site(latency=latency)
    for n, path in enumerate(paths, start=first):
        site.answers[path] = Reply(200, page(f"Note {n}", note(n)), HTML)
    site.listing(paths)
    return site


def test_robots_crawl_delay_is_a_floor_under_the_source_delay(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """Scrapy ignores `Crawl-delay`: a source at delay 0 fetched a site asking for 0.4 s as fast as it could."""
    site = notes_site([f"/docs/d{i}" for i in range(8)], 0)
    site.answers["/robots.txt"] = Reply(200, "User-agent: *\nCrawl-delay: 0.4\n", {"Content-Type": "text/plain"})
    urls = serve({"slow": site}, tmp_path)
    result = harvest(tmp_path, crawl_source("slow", urls["slow"]))
    assert result.runs["slow"]["counts"]["new"] == 8
    starts = site.starts()
    # 0.4 s between dispatches; arrivals may shift by a loaded machine's scheduling (at delay 0 they were ~1 ms apart).
    assert len(starts) == 8 and min(b - a for a, b in itertools.pairwise(starts)) >= 0.3


def test_retry_after_holds_the_whole_host(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """A 429's Retry-After is about the client, not the URL: every request to the host waits (before, the refused page
    waited and the other pages kept coming at full speed)."""
    paths = [f"/docs/d{i}" for i in range(10)]
    site = notes_site(paths, 100, latency=0.1)
    refusals = iter([Reply(429, "slow down\n", {"Retry-After": "2"})])
    good = site.answers[paths[-1]]  # the last link: Scrapy's queue is last in, first out, so it is asked for first
    site.answers[paths[-1]] = lambda _: next(refusals, good)  # type: ignore[assignment]
    urls = serve({"busy": site}, tmp_path)
    result = harvest(tmp_path, crawl_source("busy", urls["busy"]))
    assert result.runs["busy"]["counts"]["new"] == 10
    refused = [end for p, _, end, status in site.hits if p == paths[-1] and status == 429]
    assert len(refused) == 1
    held = [s for s in site.starts() if s > refused[0]]
    assert len(held) >= 5  # requests were still waiting when the 429 came
    # Nothing sent to the host while it asked to wait, but the one or two dispatched as the 429 freed its place, before
    # it was read (without the pause: every waiting page within the next half second).
    assert len([s for s in held if s < refused[0] + 1.9]) <= 2


def test_two_sources_on_one_site_share_its_cap_and_delay(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """Each source has its own crawler: two sources on one site (an API and its feed, one per language) each sent two
    requests at once and kept only their own delay, so the site saw twice what sources.yaml allows."""
    site = notes_site([f"/docs/d{i}" for i in range(6)] + [f"/docs/e{i}" for i in range(6)], 400, latency=0.2)
    urls = serve({"one": site}, tmp_path)

    def two_sources(delay: float) -> str:
        return "".join(f"  - id: {name}\n    kind: crawl\n    url: {urls['one']}/\n    documents: ['/docs/{prefix}']\n"
                       f"    delay: {delay}\n" for name, prefix in (("api", "d"), ("feed", "e")))

    for run in ("fast", "slow"):
        (tmp_path / run).mkdir()
    first = harvest(tmp_path / "fast", two_sources(0))
    assert len(first.docs) == 12
    assert site.most_in_flight == 2  # the site's two places, shared (was 4 and more)
    site.hits.clear()
    site.most_in_flight = 0
    second = harvest(tmp_path / "slow", two_sources(0.4))
    assert len(second.docs) == 12
    starts = site.starts()
    # Scrapy draws each delay between 0.5x and 1.5x: never two requests at once, and 0.4 s apart on average.
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.12  # (was 0.002)
    assert starts[-1] - starts[0] >= 0.3 * (len(starts) - 1)


def test_a_server_asking_for_hours_is_left_alone_until_the_next_harvest(
    tmp_path: Path, serve: Callable[..., dict[str, str]]
) -> None:
    """`429 Retry-After: 3600`: each URL waited 120 s twice before failing, so a run took hours and knocked every two
    minutes. Now the refused URL fails once, the rest of the host is skipped, and nothing stored is withdrawn."""
    paths = [f"/docs/d{i}" for i in range(10)]
    site = notes_site(paths, 300, latency=0.05)
    urls = serve({"busy": site}, tmp_path)
    source = crawl_source("busy", urls["busy"])
    first = harvest(tmp_path, source)
    assert len(first.docs) == 10
    for path in paths:  # every page now refuses; the revisits of the stored pages would too
        site.answers[path] = Reply(429, "come back later\n", {"Retry-After": "3600"})
    mark = len(site.hits)
    t0 = time.monotonic()
    second = harvest(tmp_path, source)
    assert time.monotonic() - t0 < 60
    assert second.docs == first.docs  # nothing withdrawn, nothing changed
    refused = [p for p, _, _, status in site.hits[mark:] if status == 429]
    # None retried; at most the two in flight and the two that took their places before the answer was read.
    assert 1 <= len(refused) <= 4 and len(set(refused)) == len(refused)
    errors = second.runs["busy"]["errors"]
    assert {e["reason"] for e in errors} == {"http_429"} and all("Retry-After: 3600" in e["detail"] for e in errors)
    assert second.runs["busy"]["counts"]["skipped_host_busy"] == 10 - len(refused)


def test_two_harvests_of_one_source_at_once(tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    """The second harvest leaves the source to the first (exit 1, one line saying why) instead of fetching every page a
    second time, at twice the source's concurrency."""
    paths = [f"/docs/d{i}" for i in range(10)]
    site = notes_site(paths, 0, latency=0.6)  # a harvest of 3 s or more: the two processes overlap
    urls = serve({"lib": site}, tmp_path)
    (tmp_path / "sources.yaml").write_text("sources:\n" + crawl_source("lib", urls["lib"]), encoding="utf-8")
    env = {**os.environ, **HARVEST_ENV}
    procs = [subprocess.Popen(harvest_command(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = sorted((p.wait(timeout=120), p.communicate()[1]) for p in procs)
    assert [code for code, _ in outcomes] == [0, 1]
    assert "source lib is already being harvested" in outcomes[1][1] and "Traceback" not in outcomes[1][1]
    assert site.most_in_flight <= 2
    fetched = [p for p, _, _, _ in site.hits if p.startswith("/docs/")]
    assert sorted(fetched) == sorted(paths)  # each page once
    result = read_store(tmp_path, "")
    assert len(result.docs) == 10 and result.runs["lib"]["status"] == "finished"


# -- the parts, without a crawl ----------------------------------------------------------------------------------------


def test_decoding_survives_wrong_declarations_but_not_binary() -> None:
    text = "L'économie « sociale » — coût, façade, 5 €"
    assert decode_html(text.encode("cp1252"), "utf-8") == text
    assert decode_html(text.encode("utf-8"), "iso-8859-1") == text
    assert decode_html(text.encode("cp1252"), "") == text
    assert decode_html(text.encode("cp1252"), "windows-1252") == text
    assert decode_html("naïve café".encode("latin-1"), "latin-1") == "naïve café"  # valid Latin-1, not UTF-8
    # Mostly good UTF-8 with one broken byte stays UTF-8 (one replacement), not a whole page of mojibake.
    damaged = ("é" * 200 + " texte " * 200).encode("utf-8") + b"\xe9"
    assert decode_html(damaged, "utf-8").startswith("é" * 200)
    with pytest.raises(ExtractionError) as err:
        decode_html(bytes(range(128, 256)) * 50, "utf-8")
    assert err.value.reason == "bad_encoding"


def test_a_short_record_beside_a_wall_line_is_still_a_document() -> None:
    """A record page's abstract next to a "log in to download" line or a cookie banner is kept: a refused page is not
    stored, so judging the whole page by its wall line lost real records (the abstract here is 10-16 words)."""
    assert wall_reason("Working paper 12", "Abstract: We study mutual insurance in Senegal. The full paper is available "
                       "to members; please log in to download the PDF. Keywords: mutuals, health.") is None
    assert wall_reason("Cooperatives and the informal economy", "This report examines how cooperatives organise "
                       "informal workers in West Africa. It draws on 40 interviews. We use cookies to improve your "
                       "experience. Accept all cookies. Reject.") is None
    assert wall_reason("Rapport annuel 2019", "Connectez-vous pour télécharger le rapport complet. Résumé : les "
                       "coopératives de la région ont créé 2000 emplois en 2019.") is None
    assert wall_reason("Not found in the statistics: informal workers", "Informal workers are not counted in official "
                       "labour statistics. This brief shows how cooperatives make them visible.") is None
    assert wall_reason("Members area", "Please log in to access this content. Forgot your password?")[0] == "login_wall"  # type: ignore[index]


def test_walls_are_only_judged_on_short_pages() -> None:
    assert wall_reason("Erreur 404", "Cette page n'existe plus.") == ("soft_404", wall_reason("404", "")[1])  # type: ignore[index]
    assert wall_reason("Oops", "The document you requested could not be found on this server.")[0] == "soft_404"  # type: ignore[index]
    assert wall_reason("Espace adhérents", "Connectez-vous pour accéder à ce document.")[0] == "login_wall"  # type: ignore[index]
    # Documents that only mention these words are documents.
    assert wall_reason("Law 404 on cooperatives", "Law 404 of 2019 gives worker cooperatives a legal status.") is None
    assert wall_reason("Member services", "Members sign in at the cooperative's office to pay their dues monthly.") is None
    assert wall_reason("Votes", "Members log in to their account to vote at the general assembly of the cooperative.") is None
    assert wall_reason("Bakery", "The bakery cooperative sells cookies; members agree on prices and accept new members.") is None
    assert wall_reason("Avant de continuer", "Ce site utilise des cookies. Accepter ou paramétrer vos choix.")[0] == "cookie_wall"  # type: ignore[index]
    long_text = " ".join([ENGLISH[0]] * 5) + " Page not found errors and cookies to accept are discussed too."
    assert wall_reason("Page not found: why links rot", long_text) is None
    found = extract_html(page("Cookies and cooperatives", "\n".join(ENGLISH)), "http://127.0.0.1:1/x")
    assert "Worker cooperatives" in found.text
