"""Query strings as people and forms send them, before routing and the answer cache.

Empty query parameters mean "not given": `year_from=&sdg=` is what a plain HTML form (or a script filling a URL
template from empty variables) sends for fields left blank, and FastAPI answered it with a 422 ("Input should be a
valid integer") for a request that only asked for no filter.

A parameter that takes one value, given twice (`q=a&q=b`, `limit=5&limit=50`), is a 422 naming it: FastAPI kept the
last silently, so a script that appended `limit=50` to a URL that already had one got 5 or 50 depending on the order.
The parameters a route declares as lists (`sdg`, `lang`, `source`, `type`: OR within one) repeat as before.
"""

from __future__ import annotations

import typing
from collections import Counter
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

SEQUENCES = (list, set, frozenset, tuple)


def without_empty(query: bytes) -> bytes:
    """The query string less its empty parts (`a=`, `a`, `&&`); every other part is kept byte for byte."""
    parts = [part for part in query.split(b"&") if part.partition(b"=")[2]]
    return b"&".join(parts)


def _repeatable(annotation: object) -> bool:
    """True for a list-like parameter type (`list[int]`, `list[str] | None`)."""
    if typing.get_origin(annotation) in SEQUENCES or annotation in SEQUENCES:
        return True
    return any(_repeatable(a) for a in typing.get_args(annotation)) if typing.get_origin(annotation) is not None else False


def single_valued(route: APIRoute) -> frozenset[str]:
    """Names of the route's query parameters (its own and its dependencies') that take one value."""
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        names.update(p.alias for p in dependant.query_params if not _repeatable(p.field_info.annotation))
        stack.extend(dependant.dependencies)
    return frozenset(names)


def repeated(query: bytes) -> dict[str, list[str]]:
    """Parameters given more than once, with their values (names and values decoded as Starlette decodes them)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    counts = Counter(name for name, _ in pairs)
    return {name: [v for n, v in pairs if n == name] for name, count in counts.items() if count > 1}


class EmptyParams:
    """A pure ASGI middleware dropping empty query parameters before routing, validation and the answer cache (so
    `?q=x&year_from=` and `?q=x` are one request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        cleaned = without_empty(query) if query else query
        if cleaned != query:
            scope = {**scope, "query_string": cleaned}
        await self.app(scope, receive, send)


async def given_once(request: Request) -> None:
    """An app-wide dependency: RequestValidationError (422) naming each one-value parameter of the matched route that
    is given more than once. Costs a byte search unless a query string has several parts."""
    query = request.scope.get("query_string", b"")
    if b"&" not in query:
        return
    twice = repeated(query)
    route = request.scope.get("route")
    if not twice or not isinstance(route, APIRoute):
        return
    single = getattr(route, "ssehub_single_valued", None)  # kept on the route: computed once per route
    if single is None:
        single = single_valued(route)
        route.ssehub_single_valued = single  # type: ignore[attr-defined]
    errors = [
        {"type": "repeated", "loc": ("query", name), "input": values,
         "msg": f"'{name}' takes one value and was given {len(values)} ({', '.join(map(repr, values))}): give it once"}
        for name, values in twice.items() if name in single
    ]
    if errors:
        raise RequestValidationError(errors)
