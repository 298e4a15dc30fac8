"""Curator: PATCH /api/documents/{id} (SDG tags by hand, hide or restore) and views that include hidden documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from searchapi.auth import require_curator
from searchapi.deps import Sdg, get_store
from searchapi.examples import DOCUMENT, curator
from searchapi.routes.documents import INTERNAL_FIELDS, DocumentId
from ssehub.store import Store

router = APIRouter(tags=["curators"], dependencies=[Depends(require_curator)])


class DocumentPatch(BaseModel):
    """Fields a curator changes; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"sdgs": [5, 8]}, {"sdgs": None}, {"hidden": True}]})
    sdgs: list[Sdg] | None = Field(None, max_length=17, description="Goals set by hand (replace the tagger's); null returns to the tagger's")
    hidden: bool = Field(False, description="true hides the document from search, false restores it")


@router.patch("/api/documents/{doc_id}", responses=curator(DOCUMENT))
def patch_document(doc_id: DocumentId, body: DocumentPatch, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """`{"sdgs": [5, 8]}` sets tags by hand, `{"sdgs": null}` returns to the tagger's, `{"hidden": true|false}` hides or restores."""
    if not body.model_fields_set:
        raise HTTPException(status_code=422, detail="nothing to change: send sdgs and/or hidden")
    store.document(doc_id)  # NotFound -> 404 before anything changes
    with store.transaction():  # both changes or neither
        if "sdgs" in body.model_fields_set:
            store.set_manual_tags(doc_id, body.sdgs)
        if "hidden" in body.model_fields_set:
            store.set_hidden(doc_id, body.hidden)
    return _curator_view(store, doc_id)


@router.get("/api/admin/documents/{doc_id}", responses=curator(DOCUMENT))
def curator_document(doc_id: DocumentId, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """Any document, hidden or withdrawn too, with its tags and whether they were set by hand."""
    return _curator_view(store, doc_id)


@router.get("/api/admin/hidden", responses=curator({"documents": [{"id": "unsse:2f9c1a", "title": "…", "url": "…",
                                                                  "source": "unsse", "published": "2019-11-21",
                                                                  "updated_at": "…"}]}))
def hidden_documents(
    store: Annotated[Store, Depends(get_store)], limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> dict[str, Any]:
    """Documents hidden by curators, to restore them."""
    return {"documents": store.hidden_documents(limit)}


def _curator_view(store: Store, doc_id: str) -> dict[str, Any]:
    doc = store.document(doc_id)
    return {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}
