"""Request dependencies: the app's shared objects and the search filters every list endpoint accepts.

They are `async def` because they never block: FastAPI runs a plain `def` dependency in the thread pool, one thread
hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Query, Request
from pydantic import Field

from searchapi.search import Searcher
from ssehub.settings import Settings
from ssehub.store import Filters, Store

T = TypeVar("T")
Sdg = Annotated[int, Field(ge=1, le=17)]
Year = Annotated[int | None, Query(ge=0, le=9999)]
Values = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Query(max_length=50)]


async def get_store(request: Request) -> Store:
    """The app's store."""
    return request.app.state.store


async def get_searcher(request: Request) -> Searcher:
    """The app's searcher."""
    return request.app.state.searcher


async def run_search(request: Request, call: Callable[[], T]) -> T:
    """`call` (a search) in a worker thread, at most `app.state.search_limiter`'s count at once (SEARCHES_AT_ONCE).

    The requests over it wait in the event loop, in arrival order, instead of each holding a thread parked on
    Searcher.search's semaphore: every search that ended woke one of ~30 parked threads while holding Python's lock,
    13% of the time a 1M server held that lock under 32 clients (py-spy --gil). Unique hybrid searches at 1M, one
    worker, 32 wrk clients, alternating (load 5-6): 88.0 / 85.9 -> 89.0 / 101.0 req/s, server CPU 14.74 / 14.04 ->
    13.67 / 13.45 ms a request, p95 653 / 695 -> 412 / 396 ms. Without the app's limiter (no lifespan), anyio's default.
    """
    limiter = getattr(request.app.state, "search_limiter", None)
    return await anyio.to_thread.run_sync(call, limiter=limiter)


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def search_filters(
    sdg: Annotated[list[Sdg], Query(max_length=17, description="SDG number 1-17; repeat for OR")] = [],  # noqa: B006
    lang: Values = [],  # noqa: B006
    source: Values = [],  # noqa: B006
    type: Values = [],  # noqa: B006
    year_from: Year = None,
    year_to: Year = None,
) -> Filters:
    """Filters from query parameters: OR within a repeated parameter, AND across parameters.

    year_from > year_to is a valid filter that nothing passes (an empty result, not an error). Filters takes
    languages, source ids and types in any case.
    """
    return Filters(sdg=sorted(set(sdg)), lang=lang, source=source, type=type, year_from=year_from, year_to=year_to)
