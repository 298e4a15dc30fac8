"""The FastAPI application: `create_app(settings)` wires the store, the searcher and one router per resource."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from searchapi import errors
from searchapi.routes import documents, health, pages, sdgs, search, tag
from searchapi.routes.pages import STATIC_DIR
from searchapi.search import Searcher
from ssehub.embed import Embedder, load_embedder
from ssehub.settings import Settings
from ssehub.store import Store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000


def _warm(searcher: Searcher) -> None:
    """Load the index and the model in the background, so the first query is fast and startup is not held up."""
    try:
        if searcher.index_manifest() is not None:
            searcher.embedder.encode(["warm up"], kind="query")
    except Exception:  # a broken model must not stop keyword search; the request that needs it reports it
        log.exception("could not preload the search model")


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    """The API and UI over the store and index that `settings` point at; `embedder` replaces the configured model."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.store_path)
        searcher = Searcher(store, embedder if embedder is not None else (lambda: load_embedder(settings)), settings.index_dir)
        app.state.settings, app.state.store, app.state.searcher, app.state.tagger = settings, store, searcher, None
        threading.Thread(target=_warm, args=(searcher,), name="ssehub-warm", daemon=True).start()
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="ssehub",
        summary="Search Social and Solidarity Economy literature tagged with the SDGs",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    errors.install(app)
    origins = settings.cors_origin_list()
    if origins:
        # Read endpoints only: curator calls need an Authorization header, which preflight does not allow.
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["Content-Type"]
        )
    for module in (search, documents, sdgs, tag, health, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
