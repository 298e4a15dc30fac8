"""GET /health: liveness with the store's counts and the served index's manifest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from searchapi.deps import get_searcher, get_store
from searchapi.examples import HEALTH, json_example
from searchapi.search import Searcher
from ssehub.store import Store

router = APIRouter(tags=["health"])


@router.get("/health", responses=json_example(HEALTH))
def health(store: Annotated[Store, Depends(get_store)], searcher: Annotated[Searcher, Depends(get_searcher)]) -> dict[str, Any]:
    """`{"status": "ok", "documents", "chunks", "index"}`; index is null before `ssehub index`."""
    counts = store.counts()
    return {"status": "ok", "documents": counts["documents"], "chunks": counts["chunks"], "index": searcher.index_manifest()}
