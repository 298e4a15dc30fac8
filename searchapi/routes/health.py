"""GET /health: liveness with the store's counts and the served index's manifest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from searchapi.deps import get_searcher, get_store
from searchapi.examples import HEALTH, json_example
from searchapi.search import Searcher
from ssehub.store import Store

router = APIRouter(tags=["health"])
HEALTH_WAIT = 0.25  # seconds a health check waits for a catalog being built before answering without counts


@router.head("/health", include_in_schema=False)  # monitors probe with HEAD; one operation id in the schema
@router.get("/health", responses=json_example(HEALTH))
def health(store: Annotated[Store, Depends(get_store)], searcher: Annotated[Searcher, Depends(get_searcher)]) -> dict[str, Any]:
    """`{"status": "ok", "documents", "chunks", "index", "warm"}`; index is null before `ssehub index`; `warm` says which
    in-memory parts of search are loaded (until they are, searches are answered, more slowly, through SQLite); the counts
    are null while a large store's catalog is being built."""
    settled = searcher.catalog.settled(HEALTH_WAIT)  # a small store's catalog is built within it
    catalog = searcher.catalog.get()  # current, or None while a large one is (re)built in the background
    if catalog is not None and catalog.active is not None:
        documents, chunks = catalog.active, catalog.chunks
    elif not settled:
        # Counting scans the documents' rows (~5 s at a million passages): not in a health check while the catalog,
        # which counts them once, is being built. `warm.catalog` false says why they are null.
        documents = chunks = None
    else:
        counts = store.counts()
        documents, chunks = counts["documents"], counts["chunks"]
    warm = {"catalog": searcher.catalog.ready, "keyword": searcher.keyword.ready}
    return {"status": "ok", "documents": documents, "chunks": chunks, "index": searcher.index_manifest(), "warm": warm}
