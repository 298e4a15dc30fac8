"""GET /: the search page (static HTML, JS and CSS; no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["pages"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The search page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
