"""POST /api/tag: the SDGs a text serves, with the sentence that shows it."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, field_validator

from searchapi.deps import get_searcher, get_settings
from searchapi.examples import TAG, json_example
from searchapi.search import Searcher
from ssehub.settings import Settings

router = APIRouter(tags=["tag"])
_lock = threading.Lock()


class TagRequest(BaseModel):
    """A text to tag."""

    text: str = Field(min_length=1, description="Plain text, any of the supported languages")

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Whitespace alone is no text."""
        if not value.strip():
            raise ValueError("text is empty")
        return value


def get_tagger(request: Request, searcher: Annotated[Searcher, Depends(get_searcher)],
               settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    """The tagger, built once on first use (it embeds the SDG target texts); imported late so search starts without it."""
    state = request.app.state
    if getattr(state, "tagger", None) is None:
        with _lock:
            if getattr(state, "tagger", None) is None:
                try:
                    from ssehub.tagger import load_tagger
                except ImportError as exc:
                    raise HTTPException(status_code=503, detail=f"SDG tagging is not available: {exc}") from None
                state.tagger = load_tagger(settings, searcher.embedder)
    return state.tagger


@router.post("/api/tag", responses=json_example(TAG))
def tag(body: TagRequest, tagger: Annotated[Any, Depends(get_tagger)]) -> dict[str, Any]:
    """`{"sdgs": [{"sdg", "score", "evidence"}]}`, best first."""
    tags = tagger.tag(body.text)
    return {"sdgs": [{"sdg": int(t["sdg"]), "score": float(t["score"]), "evidence": t.get("evidence", "")} for t in tags]}
