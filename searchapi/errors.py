"""One JSON error shape: ssehub's exceptions become 4xx responses; anything else is a logged 500."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssehub.errors import IndexNotBuilt, NotFound, SsehubError, StoreError

log = logging.getLogger(__name__)
STATUS: tuple[tuple[type[SsehubError], int], ...] = ((NotFound, 404), (IndexNotBuilt, 409), (StoreError, 503))


class SafeJSONResponse(JSONResponse):
    """JSON that survives lone UTF-16 surrogates: a JSON body may carry `"\\ud800"`, which Python decodes to a str
    that UTF-8 cannot encode; echoing it back (as validation errors do with `input`) must not become a 500."""

    def render(self, content: Any) -> bytes:
        """UTF-8 JSON; strings UTF-8 cannot hold are written as \\u escapes (valid JSON, the same value)."""
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def ssehub_error(request: Request, exc: Exception) -> JSONResponse:
    """NotFound -> 404, IndexNotBuilt -> 409 (the request is fine, the data is not ready), other errors -> 400."""
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
    return SafeJSONResponse({"detail": str(exc)}, status_code=status)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 with its list of errors, rendered so that any input it echoes can be encoded."""
    assert isinstance(exc, RequestValidationError)
    return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: log it with the traceback, answer a JSON 500 without internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


class JsonBodyLimit:
    """Starlette's request body limit, answering its 413 in the one error shape: it sent the plain text "Content Too
    Large", which a client reading `detail` from every 4xx cannot parse."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.limit = RequestBodyLimitMiddleware(app, max_body_size)
        self.body = json.dumps({"detail": f"request body over {max_body_size} bytes: send less (a text to tag can be "
                                          "split into parts, or tagged from a file with `ssehub tag --jsonl`)"}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything through, except the limit's own 413, whose start and body are replaced."""
        if scope["type"] != "http":
            await self.limit(scope, receive, send)
            return
        replacing = False

        async def send_json(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                replacing = True
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
                message = {**message, "headers": headers}
            elif replacing and message["type"] == "http.response.body":
                message = {"type": "http.response.body", "body": self.body}
            await send(message)

        await self.limit(scope, receive, send_json)


def install(app: FastAPI) -> None:
    """Register the handlers."""
    app.add_exception_handler(SsehubError, ssehub_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
