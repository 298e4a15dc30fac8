"""Request dependencies: the app's shared objects and the search filters every list endpoint accepts.

They are `async def` because they never block: FastAPI runs a plain `def` dependency in the thread pool, one thread
hop per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from pydantic import Field

from searchapi.search import Searcher
from ssehub.settings import Settings
from ssehub.store import Filters, Store

Sdg = Annotated[int, Field(ge=1, le=17)]
Year = Annotated[int | None, Query(ge=0, le=9999)]
Values = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Query(max_length=50)]


async def get_store(request: Request) -> Store:
    """The app's store."""
    return request.app.state.store


async def get_searcher(request: Request) -> Searcher:
    """The app's searcher."""
    return request.app.state.searcher


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def search_filters(
    sdg: Annotated[list[Sdg], Query(max_length=17, description="SDG number 1-17; repeat for OR")] = [],  # noqa: B006
    lang: Values = [],  # noqa: B006
    source: Values = [],  # noqa: B006
    type: Values = [],  # noqa: B006, A002
    year_from: Year = None,
    year_to: Year = None,
) -> Filters:
    """Filters from query parameters: OR within a repeated parameter, AND across parameters.

    year_from > year_to is a valid filter that nothing passes (an empty result, not an error). Languages, source ids
    and types are stored in lower case, so `lang=EN` means en (it found nothing).
    """
    return Filters(
        sdg=sorted(set(sdg)), lang=sorted({v.lower() for v in lang}), source=sorted({v.lower() for v in source}),
        type=sorted({v.lower() for v in type}), year_from=year_from, year_to=year_to,
    )
