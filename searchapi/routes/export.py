"""GET /api/export: the whole result set of a search as CSV, BibTeX, RIS or JSON lines, streamed page by page."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from searchapi import examples
from searchapi.deps import get_searcher, get_store, search_filters
from searchapi.export import EXTENSIONS, FORMATTERS, MEDIA_TYPES, one_line
from searchapi.routes.search import Sort
from searchapi.search import Mode, Searcher
from ssehub.store import Filters, Store

router = APIRouter(tags=["export"])
PAGE = 100  # the Searcher's largest page
ABSTRACT_CHARS = 500
EXPORT_FIELDS = ("id", "title", "authors", "published", "lang", "type", "source", "url", "sdgs", "score")
Format = Literal["csv", "bibtex", "ris", "jsonl"]
# Excel opens a CSV without it in the system's code page (é as Ã©); csv readers that do not expect it read the first
# column as "\ufeffid", so it is asked for (bom=true), not sent to every script that reads the plain bytes.
BOM = "\ufeff"


def _abstract(head: str) -> str:
    text = one_line(head)
    if len(text) <= ABSTRACT_CHARS:
        return text
    cut = text.rfind(" ", 0, ABSTRACT_CHARS)
    return text[: cut if cut > ABSTRACT_CHARS // 2 else ABSTRACT_CHARS] + " …"


@router.get(
    "/api/export",
    response_class=StreamingResponse,
    responses={200: {"description": "The whole result set, as a file", "content": {
        "text/csv": {"example": examples.CSV}, "application/x-bibtex": {"example": examples.BIBTEX},
        "application/x-research-info-systems": {"example": examples.RIS}, "application/jsonl": {"example": examples.JSONL}}}},
)
def export(
    searcher: Annotated[Searcher, Depends(get_searcher)],
    store: Annotated[Store, Depends(get_store)],
    filters: Annotated[Filters, Depends(search_filters)],
    format: Annotated[Format, Query(description="csv, bibtex, ris or jsonl")] = "csv",
    q: Annotated[str | None, Query(max_length=1000, description="Search words; omit to export every document that passes the filters")] = None,
    mode: Annotated[Mode, Query(description="hybrid, semantic or keyword")] = "hybrid",
    sort: Sort = "relevance",
    bom: Annotated[bool, Query(description="csv only: start with a UTF-8 byte-order mark, so that Excel reads accents "
                                           "right (the search page's CSV link asks for it; scripts get the plain bytes)")] = False,
) -> StreamingResponse:
    """Every document of the search (not only the first page), in the search's order; `X-Total-Count` says how many."""
    if bom and format != "csv":
        raise HTTPException(status_code=400, detail=f"bom applies to format=csv only, not {format}: leave it out")
    try:
        first = searcher.search(q, filters, mode=mode, limit=PAGE, sort=sort)  # errors (e.g. no index) answer 4xx before streaming
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None

    def records() -> Iterator[dict[str, Any]]:
        page, seen = first, set()
        while True:
            heads = store.text_heads([h["id"] for h in page["results"]], ABSTRACT_CHARS + 100)
            for hit in page["results"]:
                if hit["id"] not in seen:  # a document re-ranked between two pages is written once
                    seen.add(hit["id"])
                    yield {k: hit.get(k) for k in EXPORT_FIELDS} | {"abstract": _abstract(heads.get(hit["id"], ""))}
            if not page["next_cursor"]:
                return
            page = searcher.search(q, filters, mode=mode, limit=PAGE, cursor=page["next_cursor"], sort=sort)

    body = FORMATTERS[format](records())
    return StreamingResponse(
        itertools.chain([BOM], body) if bom else body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="ssehub-export.{EXTENSIONS[format]}"',
                 "X-Total-Count": str(first["total"])},
    )
