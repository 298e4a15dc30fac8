"""The static site server used by the demo and the harvest tests."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from email.utils import formatdate
from pathlib import Path

import pytest

from ssehub.demo.server import SiteGroup, serve_sites


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<a href='__BASE__/docs/'>docs</a>", encoding="utf-8")
    (root / "docs" / "index.html").write_text("<p>docs home</p>", encoding="utf-8")
    (root / "feed.xml").write_text("<rss><link>__BASE__/a.html</link></rss>", encoding="utf-8")
    (root / "paper.pdf").write_bytes(b"%PDF-1.4 __BASE__ stays as is in binaries")
    (root / "map.xml.gz").write_bytes(gzip.compress(b"<loc>__BASE__/x.html</loc>"))
    (root / "_routes.json").write_text(
        json.dumps(
            {
                "/broken": {"status": 500},
                "/loop-a": {"status": 301, "location": "/loop-b"},
                "/busy": {"status": 429, "retry_after": 1, "times": 1},
                "/gone.html": {"status": 410},
                "/huge": {"bytes": 100000},
            }
        ),
        encoding="utf-8",
    )
    (root / "busy").write_text("finally", encoding="utf-8")
    return root


def test_base_placeholder_content_types_and_directory_index(site: Path) -> None:
    with serve_sites({"a": site, "b": site}) as urls:
        assert urls["a"] != urls["b"] and urls["a"].startswith("http://127.0.0.1:")
        base = urls["a"]
        status, headers, body = get(base + "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert body.decode() == f"<a href='{base}/docs/'>docs</a>"
        assert get(base + "/docs/")[2] == b"<p>docs home</p>"
        status, headers, body = get(base + "/feed.xml")
        assert "xml" in headers["Content-Type"] and f"{base}/a.html".encode() in body
        status, headers, body = get(base + "/paper.pdf")
        assert headers["Content-Type"] == "application/pdf" and b"__BASE__" in body
        status, headers, body = get(base + "/map.xml.gz")
        assert "gzip" in headers["Content-Type"]
        assert gzip.decompress(body) == f"<loc>{base}/x.html</loc>".encode()
        assert get(base + "/_routes.json")[0] == 404
        assert get(base + "/missing.html")[0] == 404
        assert get(base + "/../../etc/passwd")[0] == 404


def test_validators_answer_304_and_change_when_the_file_changes(site: Path) -> None:
    with serve_sites({"a": site}) as urls:
        url = urls["a"] + "/docs/index.html"
        status, headers, _ = get(url)
        etag, last_modified = headers["ETag"], headers["Last-Modified"]
        assert status == 200 and etag and last_modified
        assert get(url, {"If-None-Match": etag})[0] == 304
        assert get(url, {"If-Modified-Since": last_modified})[0] == 304
        assert get(url, {"If-Modified-Since": formatdate(0, usegmt=True)})[0] == 200
        (site / "docs" / "index.html").write_text("<p>docs home, edited</p>", encoding="utf-8")
        status, headers, body = get(url, {"If-None-Match": etag})
        assert status == 200 and body == b"<p>docs home, edited</p>" and headers["ETag"] != etag


def test_fault_routes(site: Path) -> None:
    with serve_sites({"a": site}) as urls:
        base = urls["a"]
        assert get(base + "/broken")[0] == 500
        status, headers, _ = get(base + "/loop-a")
        assert status == 301 and headers["Location"] == "/loop-b"
        status, headers, _ = get(base + "/busy")
        assert status == 429 and headers["Retry-After"] == "1"
        assert get(base + "/busy")[2] == b"finally"  # `times: 1` fails once, then serves the file
        assert get(base + "/gone.html")[0] == 410
        assert len(get(base + "/huge")[2]) == 100000


def test_request_log_and_delay_route(site: Path) -> None:
    routes = json.loads((site / "_routes.json").read_text())
    routes["/slow.html"] = {"delay": 0.3}
    (site / "_routes.json").write_text(json.dumps(routes))  # routes are re-read on each request
    (site / "slow.html").write_text("slow", encoding="utf-8")
    group = SiteGroup({"a": site})
    try:
        base = group.start()["a"]
        t0 = time.monotonic()
        assert get(base + "/slow.html", {"User-Agent": "tester"})[2] == b"slow"
        assert time.monotonic() - t0 >= 0.3
        hits = group.servers["a"].hits
        assert [h.path for h in hits] == ["/slow.html"] and hits[0].headers["user-agent"] == "tester"
    finally:
        group.close()


def test_base_port_gives_consecutive_ports(site: Path) -> None:
    probe = SiteGroup({"x": site})
    port = probe.servers["x"].server_address[1]
    probe.close()  # a port that was free a moment ago
    with serve_sites({"a": site, "b": site}, port=port) as urls:
        assert urls == {"a": f"http://127.0.0.1:{port}", "b": f"http://127.0.0.1:{port + 1}"}


def test_dynamic_handlers_from_site_module_and_from_tests(site: Path) -> None:
    (site / "_site.py").write_text(
        "from ssehub.demo.server import Reply\n"
        "def handle(request):\n"
        "    if request.path == '/api':\n"
        "        return Reply(200, '{\"q\": \"%s\", \"base\": \"__BASE__\"}' % request.arg('q', ''), {'Content-Type': 'application/json'})\n"
        "    if request.path == '/boom':\n"
        "        raise RuntimeError('bug in a fixture')\n"
        "    return None\n",
        encoding="utf-8",
    )
    with serve_sites({"a": site}) as urls:
        base = urls["a"]
        status, headers, body = get(base + "/api?q=coop")
        assert status == 200 and json.loads(body) == {"q": "coop", "base": base}
        assert get(base + "/boom")[0] == 500  # a handler bug is a 500, not a dropped connection
        assert get(base + "/docs/")[2] == b"<p>docs home</p>"  # None: the static files answer
        assert get(base + "/_site.py")[0] == 404
    from ssehub.demo.server import Reply

    group = SiteGroup({"b": site}, handlers={"b": lambda r: Reply(418, "teapot") if r.path == "/tea" else None})
    try:
        base = group.start()["b"]
        assert get(base + "/tea")[0] == 418 and get(base + "/api")[0] == 404  # the test's handler replaces _site.py
    finally:
        group.close()
