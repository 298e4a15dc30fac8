"""CPU-bound work on one document (extraction, language, MinHash), runnable in worker processes off the crawler thread."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from harvester.dedup import signature
from harvester.extract import Extracted, ExtractionError, extract_any
from harvester.language import detect_language

logger = logging.getLogger(__name__)


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


def default_workers() -> int:
    """One worker process per core beyond the crawler's own (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


class Analyser:
    """Runs `analyse` in a process pool (or inline with 0 workers), so the crawler's thread keeps downloading."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            # fork: the workers inherit the imported extractors instead of importing trafilatura again.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        return self._pool

    async def run(self, *args: Any) -> Analysis:
        """Analyse one body; a worker that died (a parser crash) costs this body only."""
        if self.workers <= 0:
            return analyse(*args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), analyse, *args)
        except BrokenProcessPool:
            logger.warning("an extraction worker died; restarting the pool")
            self.close()
            return Analysis(None, reason="extract_crash", detail="the extraction worker died on this file")

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # idle by then; joined workers are accounted for
            self._pool = None
