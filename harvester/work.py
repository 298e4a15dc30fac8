"""CPU-bound work on documents (extraction, language, MinHash), run in batches by worker processes off the crawler thread."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from harvester.dedup import signature
from harvester.extract import Extracted, ExtractionError, extract_any
from harvester.language import detect_language

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!I")
BATCH = 16  # bodies per round trip: enough to hide the round trip, few enough to keep every worker fed
IN_FLIGHT = 2  # batches per worker: one being analysed, one waiting, so a worker never idles on a round trip
# The crawler's ends of every worker's socket pair, of every Analyser in this process (one per source): a new worker
# closes them all, or a worker of another source would keep a pair open after the crawler hung up.
_OUR_ENDS: set[socket.socket] = set()


@dataclass
class Analysis:
    """What the workers hand back: the extraction (or its failure), the language and the MinHash signature."""

    found: Extracted | None
    is_pdf: bool = False
    lang: str = ""
    signature: bytes | None = None
    reason: str = ""
    detail: str = ""


def analyse(body: bytes, fmt: str, encoding: str, content_type: str, url: str, fallback: str = "") -> Analysis:
    """Extract a body, detect its language from the text and sign it; a failure with a fallback text uses that text."""
    try:
        found, is_pdf = extract_any(body, fmt, encoding, content_type, url)
    except ExtractionError as exc:
        if not fallback:
            return Analysis(None, reason=exc.reason, detail=exc.detail)
        # The failure is still reported (and counted); the document keeps its metadata's text.
        found, is_pdf, reason, detail = Extracted(text=fallback), False, exc.reason, exc.detail
    else:
        reason = detail = ""
    sig = signature(found.text)
    return Analysis(found, is_pdf, detect_language(found.text), None if sig is None else sig.tobytes(), reason, detail)


def _analyse_safely(args: tuple[Any, ...]) -> Analysis | Exception:
    """A bug in one body's analysis is that body's error, handed back to the crawler (not the end of the worker)."""
    try:
        return analyse(*args)
    except Exception as exc:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def default_workers() -> int:
    """One worker process per core beyond the crawler's own (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _recv(f: Any) -> Any:
    head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    return pickle.loads(f.read(HEADER.unpack(head)[0]))


def _serve(sock: socket.socket, inherited: list[socket.socket]) -> None:
    """A worker: read a batch of analyse() arguments, send back their analyses, until the crawler hangs up."""
    for other in inherited:
        other.close()  # the crawler's ends of every pair: holding them would hide the crawler's hang-up (EOF)
    # Ctrl-C reaches the whole process group: the crawler stops the harvest and hangs up; a worker that also raised
    # KeyboardInterrupt, or wrote into the closed pair, printed a traceback per worker over the crawler's one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sock, sock.makefile("rwb") as f:
            while (jobs := _recv(f)) is not None:
                data = pickle.dumps([_analyse_safely(job) for job in jobs], protocol=pickle.HIGHEST_PROTOCOL)
                f.write(HEADER.pack(len(data)) + data)
                f.flush()
    except (BrokenPipeError, ConnectionResetError):
        return  # the crawler is gone (stopped or killed): nobody is left to answer


@dataclass
class _Job:
    args: tuple[Any, ...]
    future: asyncio.Future[Analysis]
    solo: bool = False  # was in a batch whose worker died: runs alone, so a crash costs this body only


@dataclass
class _Worker:
    process: Any
    sock: socket.socket
    writer: asyncio.StreamWriter | None = None
    reader_task: asyncio.Task[None] | None = None
    batches: deque[list[_Job]] = field(default_factory=deque)  # sent, answers awaited in order
    ready: bool = False


class Analyser:
    """Runs `analyse` inline (0 workers) or in worker processes fed with batches over socket pairs.

    The crawler's event loop reads the answers like any other socket: no pool threads compete with it for the GIL,
    and one round trip carries up to BATCH bodies, so the crawl never waits on a worker page by page.
    """

    def __init__(self, workers: int, batch: int = BATCH) -> None:
        self.workers = workers
        self.batch = batch
        self._pool: list[_Worker] = []
        self._pending: deque[_Job] = deque()
        self._closed = False
        self._starting: asyncio.Task[None] | None = None
        self.batches_sent = 0

    async def run(self, *args: Any) -> Analysis:
        """Analyse one body; a worker that died (a parser crash) costs this body only."""
        if self.workers <= 0:
            return analyse(*args)
        loop = asyncio.get_running_loop()
        if self._starting is None:
            self._starting = loop.create_task(self._start(loop))
        await self._starting
        job = _Job(args, loop.create_future())
        self._pending.append(job)
        self._dispatch()
        return await job.future

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._closed = False
        for _ in range(self.workers):
            self._pool.append(self._spawn())
        for worker in self._pool:
            await self._connect(worker, loop)

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        _OUR_ENDS.add(ours)
        inherited = list(_OUR_ENDS)
        # fork: the workers inherit the imported extractors instead of importing trafilatura again.
        process = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs, inherited), daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours)

    async def _connect(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        reader, worker.writer = await asyncio.open_connection(sock=worker.sock, limit=1 << 20)
        worker.reader_task = loop.create_task(self._read(worker, reader))
        worker.ready = True

    def _dispatch(self) -> None:
        """Send waiting bodies to the workers with room, in batches (a body from a crashed batch goes alone)."""
        for worker in self._pool:
            while self._pending and worker.ready and len(worker.batches) < IN_FLIGHT:
                batch = [self._pending.popleft()]
                while not batch[0].solo and self._pending and not self._pending[0].solo and len(batch) < self.batch:
                    batch.append(self._pending.popleft())
                data = pickle.dumps([job.args for job in batch], protocol=pickle.HIGHEST_PROTOCOL)
                assert worker.writer is not None
                worker.writer.write(HEADER.pack(len(data)) + data)  # buffered by the transport: never blocks the loop
                worker.batches.append(batch)
                self.batches_sent += 1

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                results = pickle.loads(await reader.readexactly(size))
                for job, result in zip(worker.batches.popleft(), results, strict=True):
                    if job.future.done():
                        continue
                    if isinstance(result, Exception):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)
                self._dispatch()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            if not self._closed:
                await self._replace(worker)

    async def _replace(self, dead: _Worker) -> None:
        """A worker died on the batch it was analysing (its first): a body alone there fails as `extract_crash`.

        The bodies of a larger batch are retried one by one, to find the one that kills; later batches, never started,
        go back to the queue as they were.
        """
        logger.warning("an extraction worker died; starting another")
        retry: list[_Job] = []
        for i, batch in enumerate(dead.batches):
            if i == 0 and len(batch) == 1 and batch[0].solo:
                if not batch[0].future.done():
                    batch[0].future.set_result(
                        Analysis(None, reason="extract_crash", detail="the extraction worker died on this file")
                    )
            else:
                retry.extend(_Job(job.args, job.future, solo=job.solo or i == 0) for job in batch)
        dead.batches.clear()
        dead.ready = False
        self._shut(dead)
        self._pool.remove(dead)
        self._pending.extendleft(reversed(retry))
        worker = self._spawn()
        self._pool.append(worker)
        await self._connect(worker, asyncio.get_running_loop())
        self._dispatch()

    def _shut(self, worker: _Worker) -> None:
        if worker.writer is not None:
            try:
                worker.writer.close()
            except RuntimeError:  # its event loop is already closed
                pass
        _OUR_ENDS.discard(worker.sock)
        worker.sock.close()  # the worker reads EOF and exits
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)

    def close(self) -> None:
        """Stop the workers (they are idle by then: every item has its answer)."""
        self._closed = True
        for worker in self._pool:
            if worker.reader_task is not None and not worker.reader_task.done():
                try:
                    worker.reader_task.cancel()
                except RuntimeError:
                    pass
            self._shut(worker)
        self._pool.clear()
        self._starting = None
        logger.debug("extraction workers stopped after %d batches", self.batches_sent)
