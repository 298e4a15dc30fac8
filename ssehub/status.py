"""Plain-text reports for `ssehub status` and `ssehub sources`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ssehub.errors import ConfigError
from ssehub.settings import Settings
from ssehub.sources import parse_sources, read_sources_yaml
from ssehub.store import Store


def check_sources(path: Path) -> tuple[list[str], int]:
    """Every problem of a sources file (naming source and field), and the number of valid sources."""
    try:
        data = read_sources_yaml(path)
    except ConfigError as exc:
        return [str(exc)], 0
    good, problems = parse_sources(data, str(path))
    return [p if p.startswith(f"{path}: ") else f"{path}: {p}" for p in problems], len(good)


RUN_COUNTS = ("fetched", "new", "updated", "unchanged", "not_modified", "withdrawn", "near_duplicates", "failed")


def _run_summary(run: dict | None) -> str:
    """'run 3 finished 2024-..: fetched 9, new 8, ..., failed 2 (http_500 1, timeout 1)'."""
    if not run:
        return "never harvested"
    c = run["counts"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted((c.get("failed_by_reason") or {}).items()))
    counts = ", ".join(f"{k} {c.get(k, 0)}" for k in RUN_COUNTS if k in c or k in ("new", "updated", "failed"))
    return f"run {run['id']} {run['status']} {run['started_at']}: {counts}" + (f" ({reasons})" if reasons else "")


def _run_lines(store: Store, source_id: str, errors: int = 3) -> Iterator[str]:
    """The source's last run, and its first errors, indented under the source."""
    run = store.last_run(source_id)
    yield f"    last {_run_summary(run)}"
    if run:
        for err in store.run_errors(run["id"], limit=errors):
            yield f"      error {err['reason']}: {err['url']}" + (f" ({err['detail'][:80]})" if err["detail"] else "")


def _settle_runs(store: Store) -> None:
    """Runs left `running` by a harvest of this host whose process is gone (killed, or its parent's Ctrl-C) are shown
    as what they are, `interrupted`, instead of running forever until the next harvest marks them."""
    store.interrupt_stale_runs()


def source_table(settings: Settings) -> Iterator[str]:
    """One line per source: from the sources file, and import-only sources from the store (none yet: the file alone,
    without creating a store); then ConfigError for the file's first problem, so the command fails as `harvest` will."""
    store = Store(settings.store_path) if settings.store_path.exists() else None
    if store:
        _settle_runs(store)
    known = {row["id"]: row for row in store.sources()} if store else {}
    try:
        configured, problems = parse_sources(read_sources_yaml(settings.sources), str(settings.sources))
    except ConfigError as exc:
        configured, problems = [], [str(exc)]
    for src in configured:
        row = known.pop(src.id, None)
        state = "enabled" if src.enabled else "disabled"
        docs = row["documents"] if row else 0
        yield f"{src.id:<20} {src.kind:<9} {state:<8} {docs:>6} docs  {src.url}"
        yield from _run_lines(store, src.id) if store else iter(["    last never harvested"])
    for sid, row in known.items():
        yield f"{sid:<20} {row['kind']:<9} {'stored':<8} {row['documents']:>6} docs  {row['url'] or '(' + row['origin'] + ')'}"
    if problems:  # after the listing, which still shows what can be read; `ssehub harvest` refuses such a file
        more = f" (and {len(problems) - 1} more: `ssehub sources check` lists them)" if len(problems) > 1 else ""
        first = problems[0] if problems[0].startswith(f"{settings.sources}: ") else f"{settings.sources}: {problems[0]}"
        raise ConfigError(f"{first}{more}")


def status_lines(settings: Settings) -> Iterator[str]:
    """Counts and the last runs."""
    store = Store(settings.store_path)
    _settle_runs(store)
    c = store.counts()
    yield f"store: {settings.store_path}"
    yield (f"sources {c['sources']}, documents {c['documents']} (withdrawn {c['withdrawn']}, hidden {c['hidden']}), "
           f"indexed {c['indexed']}, chunks {c['chunks']}, tagged {c['tagged']}")
    manifest = settings.index_dir / "manifest.json"
    yield f"index: {manifest.read_text(encoding='utf-8') if manifest.exists() else 'none (run `ssehub index`)'}"
    for row in store.sources():
        if row["last_run"]:
            yield f"source {row['id']} ({row['documents']} docs)"
            yield from _run_lines(store, row["id"])
