"""GET /api/documents/{id} and /api/documents/{id}/similar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from searchapi.deps import get_searcher, get_store
from searchapi.examples import DOCUMENT, HIT, json_example
from searchapi.search import Searcher
from ssehub.store import Store

router = APIRouter(tags=["documents"])
DocumentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_:\-]+$", max_length=200)]
INTERNAL_FIELDS = ("indexed_hash",)


@router.get("/api/documents/{doc_id}", responses=json_example(DOCUMENT))
def document(doc_id: DocumentId, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """One searchable document: every field, its text, and its SDG tags with evidence and targets."""
    return {k: v for k, v in _public(store, doc_id).items() if k not in INTERNAL_FIELDS}


def _public(store: Store, doc_id: str) -> dict[str, Any]:
    """The document, or 404 as for an unknown id when it is hidden or withdrawn: those are out of the public API
    (curators see them through their own endpoints), and a different answer would tell that they exist."""
    doc = store.document(doc_id)  # NotFound -> 404 by the app's handler
    if doc["hidden"] or doc["status"] != "active":
        raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
    return doc


@router.get("/api/documents/{doc_id}/similar", responses=json_example({"results": [HIT]}))
def similar(
    doc_id: DocumentId,
    searcher: Annotated[Searcher, Depends(get_searcher)],
    store: Annotated[Store, Depends(get_store)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Documents like this one, in the search hit shape; 404 for a hidden or withdrawn one (it answered 200, empty)."""
    _public(store, doc_id)
    return searcher.similar(doc_id, limit=limit)
