"""The pages: / (search), /stats, /admin and /widget.js; static files, no build step. HEAD is answered too: link
checkers and uptime monitors ask with it (405 before)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["pages"])


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def index() -> FileResponse:
    """The search page (and, with ?doc=ID, a document's page)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.api_route("/stats", methods=["GET", "HEAD"], include_in_schema=False)
def stats_page() -> FileResponse:
    """The statistics page."""
    return FileResponse(STATIC_DIR / "stats.html", media_type="text/html")


@router.api_route("/admin", methods=["GET", "HEAD"], include_in_schema=False)
def admin_page() -> FileResponse:
    """The curators' page; its API calls carry the key the curator types in."""
    return FileResponse(STATIC_DIR / "admin.html", media_type="text/html", headers={"Cache-Control": "no-store"})


@router.api_route("/widget.js", methods=["GET", "HEAD"], include_in_schema=False)
def widget() -> FileResponse:
    """The embeddable widget; any site may load it (a script is not subject to CORS, its API calls are)."""
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})
