"""Curator: GET/POST /api/sources, PUT/DELETE /api/sources/{id}; edits are written back to sources.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path

from searchapi.auth import require_curator
from searchapi.deps import get_settings, get_store
from searchapi.examples import SOURCE, SOURCES, curator
from ssehub.errors import ConfigError
from ssehub.netguard import source_url_problems
from ssehub.settings import Settings
from ssehub.sources import ID_RE, SourceConfig, edit_lock, parse_sources, read_sources_yaml, write_source
from ssehub.store import Store

router = APIRouter(tags=["curators"], dependencies=[Depends(require_curator)])
SourceId = Annotated[str, Path(pattern=ID_RE.pattern, max_length=100)]


def _read(path: FilePath) -> tuple[list[SourceConfig], list[str]]:
    """The valid sources of the file and one message per problem (a broken file is a problem, not a 500)."""
    if not path.exists():
        return [], []
    try:
        data = read_sources_yaml(path)
    except ConfigError as exc:
        return [], [str(exc)]
    return parse_sources(data, str(path))


def _check(src: SourceConfig) -> None:
    """The rules parse_sources adds to the model's (url required by kind, crawl needs documents): 422 naming the field."""
    _, problems = parse_sources({"sources": [src.model_dump()]})
    if problems:
        raise HTTPException(status_code=422, detail=problems)


def _check_hosts(src: SourceConfig, settings: Settings, trusted: SourceConfig | None = None) -> None:
    """422 when a URL new to the file points at a private, loopback or link-local host (SSRF); the file's own are trusted."""
    if settings.allow_private_sources:
        return
    known = set(trusted.entry_urls()) | {trusted.url} if trusted else set()
    urls = [("url", src.url)] * bool(src.url) + [("start_urls", u) for u in src.start_urls]
    problems = source_url_problems([(f, u) for f, u in urls if u not in known], src.id)
    if problems:
        raise HTTPException(status_code=422, detail=problems)


@contextmanager
def _file_lock(settings: Settings) -> Iterator[None]:
    """One read-modify-write of the sources file at a time, in every worker process; 422 when it cannot be locked."""
    with ExitStack() as stack:
        try:
            stack.enter_context(edit_lock(settings.sources))
        except ConfigError as exc:
            raise HTTPException(status_code=422, detail=[str(exc)]) from None
        yield


def _save(settings: Settings, store: Store, source_id: str, src: SourceConfig | None) -> None:
    try:
        write_source(settings.sources, source_id, src)
    except ConfigError as exc:
        raise HTTPException(status_code=422, detail=[str(exc)]) from None
    if src is not None:
        store.upsert_source(src)
    else:
        store.delete_source(source_id)


def _view(src: SourceConfig | None, row: dict[str, Any] | None, errors: dict[int, int]) -> dict[str, Any]:
    out: dict[str, Any] = src.model_dump() if src else {"id": row["id"], "name": row["name"], "kind": row["kind"],
                                                       "url": row["url"], "enabled": bool(row["enabled"])}
    last = row["last_run"] if row else None
    if last:
        last = last | {"errors": errors.get(last["id"], 0)}
    return out | {"in_file": src is not None, "origin": row["origin"] if row else "yaml",
                  "document_count": row["documents"] if row else 0, "last_run": last}


@router.get("/api/sources", responses=curator(SOURCES))
def list_sources(store: Annotated[Store, Depends(get_store)], settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, Any]:
    """Sources of the file (and import-only sources of the store) with their documents, last run and its errors."""
    good, problems = _read(settings.sources)
    rows = {r["id"]: r for r in store.sources()}
    errors = store.run_error_counts([r["last_run"]["id"] for r in rows.values() if r["last_run"]])
    listed = [_view(src, rows.get(src.id), errors) for src in good]
    listed += [_view(None, row, errors) for sid, row in rows.items() if sid not in {s.id for s in good}]
    return {"file": str(settings.sources), "sources": listed, "problems": problems}


@router.post("/api/sources", status_code=201, responses=curator(SOURCE, 201, "Created"))
def add_source(
    body: SourceConfig, store: Annotated[Store, Depends(get_store)], settings: Annotated[Settings, Depends(get_settings)]
) -> dict[str, Any]:
    """Add a source to the file; 409 when the id exists."""
    _check(body)
    with _file_lock(settings):
        good, _ = _read(settings.sources)
        if any(s.id == body.id for s in good):
            raise HTTPException(status_code=409, detail=f"source {body.id!r} exists: PUT /api/sources/{body.id} changes it")
        _check_hosts(body, settings)
        _save(settings, store, body.id, body)
    return _view(body, None, {})


@router.put("/api/sources/{source_id}", responses=curator(SOURCE))
def replace_source(
    source_id: SourceId, body: SourceConfig,
    store: Annotated[Store, Depends(get_store)], settings: Annotated[Settings, Depends(get_settings)],
) -> dict[str, Any]:
    """Replace a source's settings (`enabled: false` disables it); its comments in the file are kept."""
    if body.id != source_id:
        raise HTTPException(status_code=422, detail=[f"source {source_id}: field id: cannot change (was {source_id!r}, got {body.id!r})"])
    _check(body)
    with _file_lock(settings):
        good, problems = _read(settings.sources)
        if not any(s.id == source_id for s in good) and not any(p.startswith(f"source {source_id}:") for p in problems):
            raise HTTPException(status_code=404, detail=f"no source {source_id!r} in {settings.sources}: POST /api/sources adds it")
        _check_hosts(body, settings, next((s for s in good if s.id == source_id), None))
        _save(settings, store, source_id, body)
    row = next((r for r in store.sources() if r["id"] == source_id), None)
    return _view(body, row, {})


@router.delete("/api/sources/{source_id}", responses=curator({"deleted": "unsse", "documents_kept": 120}))
def delete_source(
    source_id: SourceId, store: Annotated[Store, Depends(get_store)], settings: Annotated[Settings, Depends(get_settings)]
) -> dict[str, Any]:
    """Remove a source from the file. Its documents stay searchable; hide them one by one if they must go."""
    with _file_lock(settings):
        row = next((r for r in store.sources() if r["id"] == source_id), None)
        _save(settings, store, source_id, None)  # NotFound -> 404
    return {"deleted": source_id, "documents_kept": row["documents"] if row else 0}
