"""Curator: POST /api/harvest starts a harvest in a subprocess; GET /api/harvest/runs[/{id}] follows it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from searchapi.auth import require_curator
from searchapi.deps import get_settings, get_store
from searchapi.examples import RUN, curator
from searchapi.harvests import HarvestBusy, Harvests
from ssehub.settings import Settings
from ssehub.sources import ID_RE, load_sources
from ssehub.store import Store

router = APIRouter(tags=["curators"], dependencies=[Depends(require_curator)])


class HarvestRequest(BaseModel):
    """Which sources to harvest (none means every enabled source), and whether to index what was harvested."""

    model_config = ConfigDict(extra="forbid")
    sources: list[Annotated[str, Field(pattern=ID_RE.pattern, max_length=100)]] = Field(default_factory=list, max_length=200)
    index: bool = Field(True, description="run `ssehub index` after the harvest, so its documents become searchable "
                                          "(the run stays `running` until it ends)")


def get_harvests(request: Request) -> Harvests:
    """The app's harvest manager."""
    return request.app.state.harvests


@router.post("/api/harvest", status_code=202, responses=curator({"run_id": 12, "sources": ["unsse"]}, 202, "Started"))
def start_harvest(
    harvests: Annotated[Harvests, Depends(get_harvests)], settings: Annotated[Settings, Depends(get_settings)],
    body: HarvestRequest | None = None,
) -> dict[str, Any]:
    """Start a harvest of the named (or all enabled) sources; 409 while another runs. Follow it at /api/harvest/runs/{id}."""
    sources = {s.id: s for s in load_sources(settings.sources, strict=False)}  # ConfigError (no file) -> 400
    wanted = list(dict.fromkeys(body.sources)) if body else []
    unknown = [i for i in wanted if i not in sources]
    if unknown:
        raise HTTPException(status_code=422, detail=[f"field sources: unknown source {', '.join(unknown)}"])
    imports = [i for i in wanted if sources[i].kind == "import"]
    if imports:
        raise HTTPException(status_code=422, detail=[f"field sources: {', '.join(imports)} is import-only (nothing to fetch)"])
    if not wanted and not any(s.enabled and s.kind != "import" for s in sources.values()):
        raise HTTPException(status_code=422, detail=["field sources: no source is enabled; name the sources to harvest"])
    try:
        run_id = harvests.start(wanted, index=body.index if body else True)
    except HarvestBusy as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return {"run_id": run_id, "sources": wanted}


@router.get("/api/harvest/runs", responses=curator({"running": 12, "runs": [{k: v for k, v in RUN.items() if k not in ("errors", "runs")}]}))
def list_runs(
    store: Annotated[Store, Depends(get_store)], harvests: Annotated[Harvests, Depends(get_harvests)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Newest runs first (harvest requests and the per-source runs they made), each with its error count."""
    runs = store.runs(limit=limit)
    errors = store.run_error_counts([r["id"] for r in runs])
    return {"running": harvests.running(), "runs": [r | {"errors": errors.get(r["id"], 0)} for r in runs]}


@router.get("/api/harvest/runs/{run_id}", responses=curator(RUN))
def get_run(run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], harvests: Annotated[Harvests, Depends(get_harvests)]) -> dict[str, Any]:
    """One run: status, counts (a request adds up its per-source runs) and failed URLs."""
    return harvests.view(run_id)  # NotFound -> 404
