"""GET /api/feeds/sdg/{n}: an Atom feed of the newest documents tagged with goal n."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from searchapi import examples
from searchapi.deps import get_store
from searchapi.feeds import sdg_feed
from ssehub.sdg import goals
from ssehub.store import Store

router = APIRouter(tags=["feeds"])


@router.get(
    "/api/feeds/sdg/{sdg}",
    response_class=Response,
    responses={200: {"description": "Atom 1.0 feed", "content": {"application/atom+xml": {"example": examples.ATOM}}}},
)
def feed(
    sdg: Annotated[int, Path(ge=1, le=17, description="Goal number 1-17")],
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    limit: Annotated[int, Query(ge=1, le=200, description="Entries in the feed")] = 50,
) -> Response:
    """The newest searchable documents tagged with the goal, newest first, for feed readers."""
    short = goals("en")[sdg - 1].short
    body = sdg_feed(str(request.base_url).rstrip("/"), sdg, short, store.feed_documents(sdg, limit))
    return Response(body, media_type="application/atom+xml; charset=utf-8", headers={"Cache-Control": "max-age=300"})
