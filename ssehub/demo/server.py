"""Site server for the demo and the tests: one threaded HTTP server per site folder, on 127.0.0.1.

Static files by default; a folder may add dynamic routes (a fake REST API, an OAI-PMH endpoint) with a
`_site.py` module defining `handle(request: SiteRequest) -> Reply | None`, or a test may pass `handler=`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import logging
import mimetypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".html", ".htm", ".xml", ".txt", ".json")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".gz": "application/x-gzip",
    ".css": "text/css",
    ".js": "text/javascript",
}
PLACEHOLDER = b"__BASE__"


@dataclass
class Hit:
    """One request the server answered (tests read these to check what a crawler fetched)."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SiteRequest:
    """What a dynamic handler sees of a request."""

    method: str
    path: str  # unquoted, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    base_url: str
    root: Path

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        return self.query.get(name, [default])[0]


@dataclass
class Reply:
    """A dynamic handler's answer; a str body is UTF-8 encoded and gets `__BASE__` replaced."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[SiteRequest], "Reply | None"]


def load_site_handler(root: Path) -> Handler | None:
    """The `handle` function of a site folder's `_site.py`, if it has one."""
    module_file = root / "_site.py"
    if not module_file.is_file():
        return None
    name = f"_ssehub_site_{hashlib.sha1(str(module_file).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, module_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handle


class SiteServer(ThreadingHTTPServer):
    """Serves one site folder; fault routes come from `_routes.json`, dynamic routes from `_site.py` or `handler`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, handler: Handler | None = None) -> None:
        self.root = Path(root).resolve()
        self.handler = handler or load_site_handler(self.root)
        self.hits: list[Hit] = []
        self._hits_lock = threading.Lock()
        self._route_counts: dict[str, int] = {}
        super().__init__((host, port), SiteHandler)
        self.base_url = f"http://{host}:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def routes(self) -> dict[str, dict[str, Any]]:
        """Fault routes, re-read on each request so tests may edit them between harvests."""
        path = self.root / "_routes.json"
        if not path.exists():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))

    def route_count(self, path: str) -> int:
        """How many times a fault route was answered so far (for `times`-limited faults)."""
        with self._hits_lock:
            self._route_counts[path] = self._route_counts.get(path, 0) + 1
            return self._route_counts[path]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up early (size caps, timeouts) are part of the tests, not server errors.
        logger.debug("connection from %s ended early", client_address, exc_info=True)

    def log_hit(self, hit: Hit) -> None:
        with self._hits_lock:
            self.hits.append(hit)

    def paths(self) -> list[str]:
        """Paths requested so far, in order."""
        with self._hits_lock:
            return [h.path for h in self.hits]

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


class SiteHandler(BaseHTTPRequestHandler):
    """GET/HEAD of static files with `__BASE__` substitution, validators and declared faults."""

    server: SiteServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms for a delayed ACK each time.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.server.log_hit(Hit(self.command, self.path, status, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(status)
        hdrs = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        for key, value in hdrs.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. a size cap); nothing to do

    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        route = self.server.routes().get(path)
        if route is not None and self._fault(path, route, head):
            return
        if self.server.handler is not None and self._dynamic(path, head):
            return
        file = self._resolve(path)
        if file is None:
            self._send(404, b"not found\n", head=head)
            return
        body = self._body(file)
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        mtime = int(file.stat().st_mtime)
        headers = {"Content-Type": _content_type(file), "ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True)}
        if self._not_modified(etag, mtime):
            self._send(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"}, head=True)
            return
        self._send(200, body, headers, head=head)

    def _fault(self, path: str, route: dict[str, Any], head: bool) -> bool:
        """Answer a declared fault; False when the route lets the request through (e.g. `times` used up)."""
        if "times" in route and self.server.route_count(path) > int(route["times"]):
            return False
        if "delay" in route:
            time.sleep(float(route["delay"]))
        status = int(route.get("status", 200))
        headers: dict[str, str] = {}
        if "location" in route:
            headers["Location"] = route["location"]
        if "retry_after" in route:
            headers["Retry-After"] = str(route["retry_after"])
        if "content_type" in route:
            headers["Content-Type"] = route["content_type"]
        if "bytes" in route:
            self._send(status, b"x" * int(route["bytes"]), {"Content-Type": "text/html", **headers}, head=head)
            return True
        if "body" in route:
            self._send(status, str(route["body"]).encode("utf-8"), headers, head=head)
            return True
        if status == 200 and "delay" in route:
            return False  # a slow but otherwise normal file
        self._send(status, f"{status}\n".encode(), headers, head=head)
        return True

    def _dynamic(self, path: str, head: bool) -> bool:
        """Let the site's handler answer; False when it declines (None) and the static files should."""
        request = SiteRequest(
            method=self.command,
            path=path,
            query=parse_qs(urlsplit(self.path).query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            base_url=self.server.base_url,
            root=self.server.root,
        )
        try:
            reply = self.server.handler(request)  # type: ignore[misc]
        except Exception:
            logger.exception("site handler failed on %s", self.path)
            reply = Reply(500, "handler error\n")
        if reply is None:
            return False
        body = reply.body.replace("__BASE__", self.server.base_url).encode("utf-8") if isinstance(reply.body, str) else reply.body
        self._send(reply.status, body, reply.headers, head=head)
        return True

    def _resolve(self, path: str) -> Path | None:
        if any(part.startswith("_") or part == ".." for part in path.split("/")):
            return None  # _routes.json and other fixture internals are not part of the site
        file = (self.server.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.server.root):
            return None
        if file.is_dir():
            file = file / "index.html"
        return file if file.is_file() else None

    def _body(self, file: Path) -> bytes:
        data = file.read_bytes()
        if file.name.endswith(TEXT_SUFFIXES):
            return data.replace(PLACEHOLDER, self.server.base_url.encode())
        if file.name.endswith(".xml.gz"):
            # Gzipped sitemaps hold absolute URLs too; mtime=0 keeps the bytes (and the ETag) stable.
            text = gzip.decompress(data).replace(PLACEHOLDER, self.server.base_url.encode())
            return gzip.compress(text, mtime=0)
        return data

    def _not_modified(self, etag: str, mtime: int) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                return mtime <= int(parsedate_to_datetime(ims).timestamp())
            except (TypeError, ValueError):
                return False
        return False


def _content_type(file: Path) -> str:
    name = file.name.lower()
    for suffix, ctype in CONTENT_TYPES.items():
        if name.endswith(suffix):
            return ctype
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class SiteGroup:
    """Several sites served at once, one port each."""

    def __init__(
        self, sites: dict[str, Path], host: str = "127.0.0.1", port: int = 0, handlers: dict[str, Handler] | None = None
    ) -> None:
        self.servers: dict[str, SiteServer] = {}
        try:
            for i, (name, root) in enumerate(sites.items()):
                if not Path(root).is_dir():
                    raise FileNotFoundError(f"site {name}: no folder {root}")
                handler = (handlers or {}).get(name)
                self.servers[name] = SiteServer(Path(root), host, port + i if port else 0, handler=handler)
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> dict[str, str]:
        """Site name -> base URL (no trailing slash)."""
        return {name: s.base_url for name, s in self.servers.items()}

    def start(self) -> dict[str, str]:
        """Start every server; returns the base URLs."""
        for server in self.servers.values():
            server.start()
        logger.info("serving %s", ", ".join(f"{n} at {u}" for n, u in self.urls.items()))
        return self.urls

    def close(self) -> None:
        """Stop every server that was started."""
        for server in self.servers.values():
            if server._thread is not None:
                server.stop()
            else:
                server.server_close()


@contextmanager
def serve_sites(sites: dict[str, Path], host: str = "127.0.0.1", port: int = 0) -> Iterator[dict[str, str]]:
    """Serve site folders while the block runs; yields {name: base_url}. Port 0: free ports; else site i gets port+i."""
    group = SiteGroup(sites, host, port)
    try:
        yield group.start()
    finally:
        group.close()
