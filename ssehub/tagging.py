"""`ssehub tag`: SDG tags for a text or for each {"id", "text"} line of a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssehub.errors import ImportFormatError
from ssehub.settings import Settings

BATCH = 64  # texts embedded together: batching is what makes `ssehub tag --jsonl` fast on CPU


def _inputs(text: str | None, jsonl: Path | None) -> Iterator[tuple[Any, str | None, str]]:
    """(id, text or None, problem) for each input."""
    if jsonl is None:
        yield None, text or "", ""
        return
    if not jsonl.is_file():
        raise ImportFormatError(f"{jsonl}: no such file")
    with jsonl.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))  # a BOM (Excel) costs no line
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
                    raise ValueError("a line must be an object with a non-empty string field 'text'")
                obj["text"].encode("utf-8")  # a lone surrogate escape ("\ud800") is this line's error, not a traceback
            except (ValueError, UnicodeDecodeError) as exc:
                yield f"line {number}", None, str(exc)
                continue
            yield obj.get("id"), obj["text"], ""


def tag_inputs(settings: Settings, text: str | None, jsonl: Path | None) -> Iterator[dict[str, Any]]:
    """One result object per input: {"id", "sdgs": [{"sdg", "score", "evidence", "targets"}]} or {"id", "error"}."""
    from ssehub.embed import load_embedder
    from ssehub.tagger import load_tagger

    tagger = load_tagger(settings, load_embedder(settings))
    batch: list[tuple[Any, str | None, str]] = []
    for item in _inputs(text, jsonl):
        batch.append(item)
        if len(batch) == BATCH:
            yield from _tag_batch(tagger, batch)
            batch = []
    yield from _tag_batch(tagger, batch)


def _tag_batch(tagger: Any, batch: list[tuple[Any, str | None, str]]) -> Iterator[dict[str, Any]]:
    """Results in input order; the good texts of the batch are embedded together (`Tagger.tag_many`)."""
    good = [body for _, body, _ in batch if body is not None]
    tags = iter(tagger.tag_many(good) if good else [])
    for item_id, body, problem in batch:
        yield {"id": item_id, "error": problem} if body is None else {"id": item_id, "sdgs": next(tags)}
