"""Plain-text reports for `ssehub status` and `ssehub sources`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ssehub.errors import ConfigError
from ssehub.settings import Settings
from ssehub.sources import parse_sources, read_sources_yaml
from ssehub.store import Store

# What a curator can do about each reason a harvest gives for a failed URL (README, "Add a source", step 4).
ADVICE: dict[str, str] = {
    "http_404": "the page is gone: a document stored from it is withdrawn; a listing still linking to it is the site's to mend",
    "http_410": "the page is gone for good: its stored document is withdrawn",
    "http_401": "the server asks for a login: only public pages can be harvested; an `exclude` pattern skips these",
    "http_403": "the server refuses the harvester: ask the site, or skip these pages with an `exclude` pattern",
    "http_429": "the server asked to slow down: raise the source's `delay`, harvest again later",
    "host_busy": "the server asked to wait longer than a harvest waits: harvest again later",
    "timeout": "the server was too slow: harvest again later, or raise the source's `delay`",
    "connection": "the server could not be reached: check the source's `url`, harvest again later",
    "dns": "the host name does not resolve: check the source's `url` (has the site moved?)",
    "redirect_loop": "the URL redirects in a loop: the site's to mend; an `exclude` pattern skips it",
    "private_redirect": "a redirect into a private network was refused: check the source's `url`",
    "robots_unreachable": "robots.txt answered an error, so nothing was fetched: harvest again later",
    "soft_404": "an error page answered 200: not a document; a stored copy is kept",
    "login_wall": "a login page answered instead of the document: a stored copy is kept",
    "cookie_wall": "a cookie wall answered instead of the document: a stored copy is kept",
    "no_text": "no main text found (navigation or boilerplate): if such pages are not documents, add an `exclude` pattern",
    "too_big": "over the download limit (SSEHUB_MAX_PAGE_BYTES): raise it, or skip such files with an `exclude` pattern",
    "encrypted_pdf": "a PDF locked with a password: it cannot be read",
    "bad_pdf": "a PDF that cannot be read (broken or cut short): the site's to mend",
    "bad_encoding": "the page's bytes are not text: the site's to mend",
    "unsupported_type": "neither HTML nor PDF: an `exclude` pattern skips such links",
    "bad_feed": "the feed cannot be read: check that the source's `url` is its RSS or Atom feed",
    "bad_sitemap": "the sitemap cannot be read: check the source's `url` (kind sitemap wants the site or its sitemap)",
    "bad_xml": "the XML answer cannot be read: check the source's `url` and `kind`",
    "bad_json": "the JSON answer cannot be read: check the source's `url` and `kind`",
    "oai_token_loop": "the repository repeats a resumption token: harvest again later, and tell the repository",
    "index_failed": "the harvest was stored but `ssehub index` failed: run it in a shell to see why",
}


def advice(reason: str) -> str:
    """What to do about a failure reason ('' when there is nothing to say); a 5xx is the server's, so: later."""
    if reason in ADVICE:
        return ADVICE[reason]
    if reason.startswith("http_5"):
        return "the server failed: stored documents are kept; harvest again later"
    if reason in ("spider_error", "pipeline_error", "extract_crash"):
        return "a bug in ssehub: report it with the URL and the detail"
    return ""


def harvest_report(reports: list[dict]) -> Iterator[str]:
    """`ssehub harvest`'s summary: a line per source (its failures by reason, each with what to do, and the pages
    robots.txt kept it from), then what comes next."""
    changed = failed = 0
    for r in reports:
        c = r["counts"]
        by_reason = sorted((c.get("failed_by_reason") or {}).items())
        reasons = ", ".join(f"{k} {v}" for k, v in by_reason)
        yield (f"{r['source']}: run {r['run_id']}: fetched {c.get('fetched', 0)}, new {c.get('new', 0)}, "
               f"updated {c.get('updated', 0)}, unchanged {c.get('unchanged', 0) + c.get('not_modified', 0)}, "
               f"withdrawn {c.get('withdrawn', 0)}, failed {c.get('failed', 0)}" + (f" ({reasons})" if reasons else ""))
        if c.get("relocated"):
            yield f"    relocated {c['relocated']}: stored documents found again here now link here, under this source (the site moved, or the source was renamed)"
        if c.get("skipped_robots"):
            yield f"    skipped {c['skipped_robots']}: robots.txt forbids them (stored copies are kept)"
        for reason, n in by_reason:
            if what := advice(reason):
                yield f"    {reason} {n}: {what}"
        changed += sum(c.get(k, 0) for k in ("new", "updated", "withdrawn", "relocated"))
        failed += c.get("failed", 0)
    if failed:
        yield "The failed URLs: ssehub sources (or the run in /api/harvest/runs)."
    if changed:
        yield "Next: ssehub index"


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
