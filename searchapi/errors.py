"""One JSON error shape: ssehub's exceptions become 4xx responses; anything else is a logged 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ssehub.errors import IndexNotBuilt, NotFound, SsehubError, StoreError

log = logging.getLogger(__name__)
STATUS: tuple[tuple[type[SsehubError], int], ...] = ((NotFound, 404), (IndexNotBuilt, 409), (StoreError, 503))


async def ssehub_error(request: Request, exc: Exception) -> JSONResponse:
    """NotFound -> 404, IndexNotBuilt -> 409 (the request is fine, the data is not ready), other errors -> 400."""
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: log it with the traceback, answer a JSON 500 without internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers."""
    app.add_exception_handler(SsehubError, ssehub_error)
    app.add_exception_handler(Exception, unexpected_error)
