"""Harvests started from the API: the `ssehub harvest` command in a subprocess, followed through the runs table.

The API never imports the harvester (stage packages stay apart) and Scrapy's reactor cannot restart in one
process, so each request runs `python -m ssehub harvest` as a child process. Its request is a run of kind
`harvest-request` (the id the API hands out); the harvester opens one `harvest` run per source right after it,
and updates their counts every 2 s. Only one harvest runs at a time: two would fetch the same sites twice. "At a
time" spans every worker process of `ssehub serve --workers N`: the process that starts a harvest holds an exclusive
lock on a file beside the store until the harvest ends (with two workers, two requests at once both started, and one
ended as a "failed" run; the `running` answer depended on which worker answered).

A request then runs `python -m ssehub index` (unless asked not to), so what it harvested becomes searchable: before,
a curator who harvested from the curator page found nothing new until someone ran `ssehub index` in a shell. The
request stays "running" until the index run ends; a running server picks up the new index by itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ssehub.filelock import try_hold
from ssehub.settings import Settings
from ssehub.status import advice
from ssehub.store import Store

log = logging.getLogger(__name__)
REQUEST_KIND = "harvest-request"
SOURCE_KIND = "harvest"
STOP_SECONDS = 10.0
MAX_ERRORS = 500  # errors listed per request; the counts stay exact


class HarvestBusy(Exception):
    """A harvest is already running."""


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of the harvest process: ours, plus every setting as SSEHUB_*, so it sees what we see."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        env[f"SSEHUB_{name.upper()}"] = str(value)
    return env


class Harvests:
    """Starts, follows and stops harvest processes; one at a time."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._held: dict[int, IO[bytes]] = {}  # run id -> the open lock file, held while its harvest runs
        self._index_after: dict[int, bool] = {}  # run id -> run `ssehub index` once the harvest ends
        self._stopping = False
        self._followers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._lock_path = settings.store_path.with_name(settings.store_path.name + ".harvest-request.lock")
        self._mark_orphans()

    def _mark_orphans(self) -> None:
        """Requests left 'running' by a server that stopped meanwhile can no longer finish; while another worker
        holds the lock, one of them is its harvest, so they wait for the next start."""
        try:
            handle = self._try_lock()
        except OSError as exc:  # a read-only data folder: searches may still be served
            log.warning("harvest requests cannot be locked (%s): old requests are left as they are", exc)
            return
        if handle is None:
            return
        with handle:
            for run in self.store.runs(limit=200):
                if run["kind"] == REQUEST_KIND and run["status"] == "running":
                    self.store.update_run(run["id"], run["counts"], "interrupted")

    def _try_lock(self) -> IO[bytes] | None:
        """The request lock, open and held (closing the file releases it), or None when another process holds it."""
        return try_hold(self._lock_path)

    def _elsewhere(self) -> int | None:
        """Id of a harvest request another worker process is running (its lock is held), or None."""
        handle = self._try_lock()
        if handle is not None:
            handle.close()
            return None
        return next((r["id"] for r in self.store.runs(limit=50) if r["kind"] == REQUEST_KIND and r["status"] == "running"), None)

    def running(self) -> int | None:
        """Id of the harvest request in progress, in this worker process or another, or None."""
        with self._lock:
            mine = next((rid for rid, p in self._procs.items() if p.poll() is None), None)
            return mine if mine is not None else self._elsewhere()

    def start(self, source_ids: list[str], index: bool = True) -> int:
        """Start `ssehub harvest [ids]`, then `ssehub index` when `index`; returns the request's run id. HarvestBusy
        when one is running."""
        with self._lock:
            busy = next((rid for rid, p in self._procs.items() if p.poll() is None), None)
            handle = self._try_lock() if busy is None else None
            if handle is None:
                busy = busy if busy is not None else self._elsewhere()
                what = f"harvest {busy} is still running" if busy is not None else "another harvest is starting"
                raise HarvestBusy(f"{what}; wait for it or watch /api/harvest/runs" + (f"/{busy}" if busy else ""))
            run_id = self.store.start_run(source_ids, kind=REQUEST_KIND)
            self._held[run_id] = handle
            log_path = self.settings.data_dir / "logs" / f"harvest-{run_id}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                proc = self._spawn(log_path, "wb", "harvest", *source_ids)
            except BaseException:
                self._held.pop(run_id).close()
                raise
            self._procs[run_id] = proc
            self._index_after[run_id] = index
        log.info("harvest %s started (pid %s): %s", run_id, proc.pid, " ".join(source_ids) or "all enabled sources")
        follower = threading.Thread(target=self._follow, args=(run_id, proc, log_path), name=f"harvest-{run_id}", daemon=True)
        self._followers.append(follower)
        follower.start()
        return run_id

    def _follow(self, run_id: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        """Wait for the harvest, index what it stored, and record how the request ended, with the end of a failed
        process's stderr. A harvest that failed in part (a source down) is indexed too: what it stored is kept."""
        code = proc.wait()
        try:
            if code > 0:
                self._record_failure(run_id, log_path, "harvest_failed", code)
            if code >= 0 and self._index_after.get(run_id, False):
                indexed = self._index(run_id, log_path)
                if indexed is None or indexed < 0:  # the server is stopping, or the index run was killed
                    code = -1
                elif indexed > 0:
                    self._record_failure(run_id, log_path, "index_failed", indexed)
                    code = code or indexed
            view = self.view(run_id)
            status = "finished" if code == 0 else ("interrupted" if code < 0 else "failed")
            self.store.update_run(run_id, view["counts"], status)
            log.info("harvest %s ended: %s (exit code %s)", run_id, status, code)
        except Exception:  # the store may be closed when the server stops mid-harvest
            log.exception("could not record the end of harvest %s", run_id)
        finally:
            with self._lock:
                self._index_after.pop(run_id, None)
                self._held.pop(run_id).close()  # after the status is written: the next request may start

    def _index(self, run_id: int, log_path: Path) -> int | None:
        """Run `ssehub index` for a request whose harvest ended; its exit code, or None when the server is stopping.
        Its stderr follows the harvest's in the request's log."""
        with self._lock:
            if self._stopping:
                return None
            proc = self._spawn(log_path, "ab", "index")
            self._procs[run_id] = proc  # running() and stop_all() now see the index run
        log.info("harvest %s: indexing what it stored (pid %s)", run_id, proc.pid)
        return proc.wait()

    def _spawn(self, log_path: Path, mode: str, *args: str) -> subprocess.Popen[bytes]:
        """`ssehub ARGS` on this server's data folder and sources file, its stderr into the request's log (`mode` "wb"
        starts the log, "ab" adds to it)."""
        cmd = [sys.executable, "-m", "ssehub", "--data", str(self.settings.data_dir),
               "--sources", str(self.settings.sources), *args]
        with open(log_path, mode) as err:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    env=child_env(self.settings))

    def _record_failure(self, run_id: int, log_path: Path, reason: str, code: int) -> None:
        """A request's error naming the step that failed and the last `error:` line it wrote (else its last line)."""
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        detail = next((line for line in reversed(tail) if line.startswith("error:")), tail[-1] if tail else "")
        self.store.add_run_error(run_id, "", "", reason, detail.removeprefix("error: ") or f"exit code {code}")

    def view(self, run_id: int) -> dict[str, Any]:
        """A run with counts and errors; a request's counts add up its per-source runs, listed under `runs`."""
        run = self.store.run(run_id)  # NotFound -> 404
        if run["kind"] != REQUEST_KIND:
            return _advised(run)
        wanted = set(run["sources"])
        children = [
            r for r in self.store.runs_between(run_id, self.store.next_run_id(run_id, REQUEST_KIND), SOURCE_KIND)
            if not wanted or set(r["sources"]) <= wanted
        ]
        counts: dict[str, Any] = {}
        errors = list(run["errors"])
        for child in children:
            _add_counts(counts, child["counts"])
            if len(errors) < MAX_ERRORS:
                errors += self.store.run(child["id"])["errors"][: MAX_ERRORS - len(errors)]
        run["counts"] = counts
        run["errors"] = errors
        run["runs"] = [{k: c[k] for k in ("id", "sources", "status", "started_at", "finished_at", "counts")} for c in children]
        return _advised(run)

    def stop_all(self) -> None:
        """Stop running harvests (server shutdown): SIGTERM lets Scrapy close cleanly, SIGKILL after a while."""
        with self._lock:
            self._stopping = True  # a harvest ending now starts no index run
            procs = [p for p in self._procs.values() if p.poll() is None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for follower in self._followers:
            follower.join(STOP_SECONDS)  # so the request's final status is written before the store closes


def _add_counts(total: dict[str, Any], counts: dict[str, Any]) -> None:
    """Add counters, recursing into nested counters such as failed_by_reason."""
    for key, value in counts.items():
        if isinstance(value, dict):
            _add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def _advised(run: dict[str, Any]) -> dict[str, Any]:
    """The run with each error's `advice`: what a curator can do about its reason (ssehub/status.py ADVICE)."""
    run["errors"] = [e | {"advice": advice(e.get("reason") or "")} for e in run["errors"]]
    return run
