"""Empty query parameters mean "not given": `year_from=&sdg=` is what a plain HTML form (or a script filling a URL
template from empty variables) sends for fields left blank, and FastAPI answered it with a 422 ("Input should be a
valid integer") for a request that only asked for no filter."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def without_empty(query: bytes) -> bytes:
    """The query string less its empty parts (`a=`, `a`, `&&`); every other part is kept byte for byte."""
    parts = [part for part in query.split(b"&") if part.partition(b"=")[2]]
    return b"&".join(parts)


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
