"""GET /api/sdgs and GET /api/stats: the goals with their document counts, and counts per facet."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from searchapi.deps import get_store
from searchapi.examples import SDGS, STATS, json_example
from ssehub.sdg import LANGS, goals
from ssehub.store import Filters, Store

router = APIRouter(tags=["sdgs"])


@router.get("/api/sdgs", responses=json_example(SDGS))
def sdgs(
    store: Annotated[Store, Depends(get_store)],
    lang: Annotated[str, Query(pattern=f"(?i)^({'|'.join(LANGS)})$", description="Language of short names and titles")] = "en",
) -> list[dict[str, Any]]:
    """The 17 goals with official colours and the number of searchable documents tagged with each."""
    counts = store.sdg_counts()
    return [
        {"sdg": g.sdg, "short": g.short, "title": g.title, "colour": g.colour, "documents": counts.get(g.sdg, 0)}
        for g in goals(lang.lower())  # language codes are case-insensitive, as the search filters' are
    ]


@router.get("/api/stats", responses=json_example(STATS))
def stats(store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    """Searchable documents, and their counts per SDG, language, source, type and year."""
    _, total = store.browse(Filters(), 0, 0)
    return {"documents": total, **store.facets(filters=Filters())}
