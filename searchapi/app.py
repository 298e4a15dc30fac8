"""The FastAPI application: `create_app(settings)` wires the store, the searcher and one router per resource."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from searchapi import errors
from searchapi.auth import CuratorGuard
from searchapi.cache import ResponseCache
from searchapi.crosslingual import FILE as CROSSLINGUAL_FILE
from searchapi.harvests import Harvests
from searchapi.params import EmptyParams, given_once
from searchapi.ratelimit import RateLimit
from searchapi.routes import apidocs, curate, documents, export, feeds, harvest, health, pages, sdgs, search, sources, tag
from searchapi.routes.pages import STATIC_DIR
from searchapi.search import SEARCHES_AT_ONCE, Searcher
from ssehub.ann import MANIFEST_FILE
from ssehub.embed import Embedder, load_embedder
from ssehub.pages import keep_freed_memory, read_ahead
from ssehub.settings import Settings
from ssehub.store import Store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000
# Answers replayed while the data and index are unchanged (searchapi/cache.py). /api/sdgs (every search page load
# and widget asks for it) and /api/stats count in SQL: ~1 s each at 100k passages on a busy machine.
CACHED_PATHS = ("/api/search", "/api/sdgs", "/api/stats")
WARM_JOIN_SECONDS = 60.0  # a catalog build at a million passages takes ~10 s
DESCRIPTION = """Search Social and Solidarity Economy literature tagged with the UN Sustainable Development Goals.

Read endpoints are open (and callable from the origins in `SSEHUB_CORS_ORIGINS`). Curator endpoints need
`Authorization: Bearer <key>` with a key from `SSEHUB_CURATOR_KEYS`. Over `SSEHUB_RATE_LIMIT` requests a minute,
a client gets 429 with `Retry-After`. Errors are `{"detail": ...}`.
"""


def _warm(searcher: Searcher, stop: threading.Event) -> None:
    """Load the catalog, the index and the model in the background, so the first query is fast and startup is not held up.

    `stop` is set at shutdown: the store is closed only after this thread has returned (closing a SQLite connection
    another thread is reading from crashes the process), so each step checks it first. The index is loaded and its
    mapped vectors paged in by a thread of their own (`FaissIndex.page_in`), so the first searches do not fault them in
    one page at a time: it touches no store, waits on the disk while the catalog build uses a core, and does not delay
    that build (a health check that finds no build under way counts the store's rows: ~5 s at a million passages).
    """

    def page_in() -> None:
        try:
            if searcher.index_manifest() is not None:  # loads the index, its vectors mapped
                searcher.live.get()[0].page_in(stop)
        except Exception:  # searches page the vectors in themselves
            log.exception("could not page the index in")

    threading.Thread(target=page_in, name="ssehub-page-in", daemon=True).start()
    try:
        searcher.catalog.get()  # seconds at a million passages: built here, not in the first request
    except Exception:  # SQLite answers without it
        log.exception("could not build the search catalog")
    if stop.is_set():
        return
    try:
        engine = searcher.keyword.get()  # the in-memory bm25: FTS5 answers until it is built
        # Its saved arrays are mapped: read them ahead into the page cache (no resident memory), so a term's first
        # postings are not read from disk a fault at a time (a cold 1M query: 230 ms, 22-38 ms warm).
        for path in engine.mapped_files() if engine is not None else ():
            if not stop.is_set():
                read_ahead(path, stop)
        if engine is not None:
            # The sorted vocabulary that typo corrections read, built here rather than by the first query with an
            # unknown word (0.3 s at a million passages); the prefix matches nothing.
            engine.terms("\uffff", 0, 0)
    except Exception:
        log.exception("could not build the keyword engine")
    if stop.is_set():
        return
    try:
        if searcher.index_manifest() is not None:
            searcher.embedder.encode(["warm up"], kind="query")
    except Exception:  # a broken model must not stop keyword search; the request that needs it reports it
        log.exception("could not preload the search model")
    if not stop.is_set():
        searcher.crosslingual.preload()  # the e5 query encoder, when documents carry e5 vectors


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def search_stamp(scope: Scope) -> Hashable | None:
    """What a search, goal or statistics answer depends on besides its query string: the store's data version, the
    index files (a new manifest is a new index), and whether the in-memory catalog and keyword engine are loaded; None
    before start-up."""
    searcher = getattr(scope["app"].state, "searcher", None)
    if searcher is None:
        return None
    folder = searcher.live.folder
    return (
        searcher.store.data_version(), _file_stamp(folder / MANIFEST_FILE), _file_stamp(folder / CROSSLINGUAL_FILE),
        searcher.catalog.ready, searcher.keyword.ready,
    )


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    """The API and UI over the store and index that `settings` point at; `embedder` replaces the configured model."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A search's large temporary arrays reuse freed memory instead of faulting fresh pages in (ssehub/pages.py).
        keep_freed_memory()
        store = Store(settings.store_path)
        searcher = Searcher(store, embedder if embedder is not None else (lambda: load_embedder(settings)), settings.index_dir)
        app.state.settings, app.state.store, app.state.searcher, app.state.tagger = settings, store, searcher, None
        app.state.harvests = Harvests(settings, store)
        app.state.search_limiter = anyio.CapacityLimiter(SEARCHES_AT_ONCE)  # searchapi/deps.py run_search
        stop = threading.Event()
        warm = threading.Thread(target=_warm, args=(searcher, stop), name="ssehub-warm", daemon=True)
        warm.start()
        try:
            yield
        finally:
            app.state.harvests.stop_all()
            stop.set()
            warm.join(timeout=WARM_JOIN_SECONDS)
            # A background rebuild (after a write) reads the store too: closing a connection another thread reads
            # from crashes the process, so wait for them as for the warm-up.
            rebuilt = searcher.catalog.join(WARM_JOIN_SECONDS) and searcher.keyword.join(WARM_JOIN_SECONDS)
            if warm.is_alive() or not rebuilt:  # still building at shutdown: leave the connections to the process exit
                log.warning("search warm-up or rebuild still running at shutdown; the store is left open")
            else:
                store.close()

    app = FastAPI(
        title="ssehub",
        summary="Search Social and Solidarity Economy literature tagged with the SDGs",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs is routes/apidocs.py's, its scripts served here, not from a CDN
        redoc_url=None,  # ReDoc's script asks redoc.ly for its logo
        dependencies=[Depends(given_once)],  # `limit=5&limit=50` is a 422 naming `limit` (searchapi/params.py)
    )
    errors.install(app)
    app.add_middleware(errors.JsonBodyLimit, max_body_size=MAX_BODY_BYTES)  # innermost: bodies are read by routes only
    # Middleware added last runs first: CORS (so even a 401 or 429 is readable cross-origin), then the rate limit,
    # then the curator guard (before any body is parsed), then the answers of repeated searches.
    app.add_middleware(ResponseCache, stamp=search_stamp, paths=CACHED_PATHS)
    app.add_middleware(CuratorGuard, keys=settings.curator_key_list())
    if settings.rate_limit > 0:
        app.add_middleware(RateLimit, per_minute=settings.rate_limit)
    app.add_middleware(EmptyParams)  # before the cache: `?q=x&year_from=` is `?q=x`
    origins = settings.cors_origin_list()
    if origins:
        # Read endpoints only: curator calls need an Authorization header, which preflight does not allow.
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
            expose_headers=["Retry-After", "X-Total-Count", "Content-Disposition"], max_age=600,
        )
    for module in (search, export, documents, curate, sdgs, feeds, tag, sources, harvest, health, pages, apidocs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def app_from_environment() -> FastAPI:
    """The app of one `ssehub serve --workers N` process, from the SSEHUB_* environment (uvicorn's factory)."""
    return create_app(Settings())
