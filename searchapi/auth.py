"""Curator authentication: `Authorization: Bearer <key>` checked in constant time against SSEHUB_CURATOR_KEYS.

The check runs twice on purpose: a middleware refuses every curator request before FastAPI parses its body (so a
malformed body from a caller without a key is a 401, not a 422, and nothing runs), and the `require_curator`
dependency marks the routes in the OpenAPI document and guards any curator route the middleware's list misses.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# (method or None for any, path regex) of the curator endpoints (CONTRACT section 4).
CURATOR_ROUTES: tuple[tuple[str | None, re.Pattern[str]], ...] = (
    (None, re.compile(r"^/api/sources(/.*)?$")),
    (None, re.compile(r"^/api/harvest(/.*)?$")),
    (None, re.compile(r"^/api/admin(/.*)?$")),
    ("PATCH", re.compile(r"^/api/documents/[^/]+$")),
)
bearer = HTTPBearer(auto_error=False, description="A curator key from SSEHUB_CURATOR_KEYS")


def is_curator_route(method: str, path: str) -> bool:
    """True for the endpoints that need a curator key."""
    return any((m is None or m == method) and rx.match(path) for m, rx in CURATOR_ROUTES)


def key_is_valid(presented: str | None, keys: list[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit reveals which one nearly matched)."""
    if not presented or not keys:
        return False
    given = presented.encode("utf-8", "surrogatepass")
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode("utf-8", "surrogatepass"))
    return ok


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def unauthorized_detail(keys: list[str]) -> str:
    """Why a request was refused, and what to do."""
    if not keys:
        return "curator endpoints are disabled: set SSEHUB_CURATOR_KEYS on the server"
    return "a valid curator key is needed: send `Authorization: Bearer <key>`"


class CuratorGuard:
    """ASGI middleware answering 401 to curator requests without a valid key, before anything else runs."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and is_curator_route(scope["method"], scope["path"]):
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not key_is_valid(bearer_token(header), self.keys):
                response = JSONResponse(
                    {"detail": unauthorized_detail(self.keys)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def require_curator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Dependency of every curator route: 401 without a valid key."""
    keys = request.app.state.settings.curator_key_list()
    if credentials is None or not key_is_valid(credentials.credentials, keys):
        raise HTTPException(status_code=401, detail=unauthorized_detail(keys), headers={"WWW-Authenticate": "Bearer"})
