"""The API's reference page, /docs (Swagger UI), with its script served by this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a server without outside access (as the hub's often
is) /docs, linked from the search page, was blank. The `fastapi-offline` package ships the same scripts (Swagger UI
5, which reads the OpenAPI 3.1 schema FastAPI writes; the older `swagger-ui-bundle` has Swagger UI 4, which cannot);
only its files are used here. No /redoc: ReDoc's script fetches its logo from redoc.ly, which tells a third party
who reads the page.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"
# The only files answered (no path from the request reaches the file system), with their types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
router = APIRouter(tags=["pages"])


def _base(request: Request) -> str:
    """The prefix the app is served under behind a proxy (`root_path`), so the pages' links work there too."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
def swagger(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json: every endpoint with its parameters, callable from the page."""
    base = _base(request)
    return get_swagger_ui_html(
        openapi_url=f"{base}{request.app.openapi_url}", title=f"{request.app.title} API",
        swagger_js_url=f"{base}{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{base}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{base}{ASSETS_URL}/favicon.png", swagger_ui_parameters=request.app.swagger_ui_parameters,
    )


@router.api_route(ASSETS_URL + "/{name}", methods=["GET", "HEAD"], include_in_schema=False)
def asset(name: str) -> FileResponse:
    """One of the pages' script, style or icon files; anything else is 404."""
    media_type = ASSETS.get(name)
    if media_type is None or not (ASSETS_DIR / name).is_file():
        raise HTTPException(status_code=404, detail=f"no such file: {name}; the API reference is at /docs")
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"})
