"""Counts of one source's harvest run, saved to its run record as the crawl goes."""

from __future__ import annotations

import logging
import time
from typing import Any

from ssehub.store import Store

logger = logging.getLogger(__name__)

COUNTERS = (
    "fetched",
    "new",
    "updated",
    "unchanged",
    "not_modified",
    "withdrawn",
    "failed",
    "skipped_robots",
    "skipped_lastmod",
    "skipped_offsite",
    "duplicates",
    "near_duplicates",
    "attachments",
)


class RunTracker:
    """Counters and failures of one run of one source; flushed to the store every few seconds."""

    def __init__(self, store: Store, run_id: int, source_id: str, flush_every: float = 2.0) -> None:
        self.store = store
        self.run_id = run_id
        self.source_id = source_id
        self.counts: dict[str, Any] = {name: 0 for name in COUNTERS} | {"failed_by_reason": {}}
        self.errors = 0
        self.close_reason: str | None = None  # why Scrapy closed the spider ('finished' unless stopped)
        self.watermark: str | None = None  # set by incremental spiders whose listing was complete: the next `since`
        self.flush_every = flush_every
        self._last_flush = time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter."""
        self.counts[name] = self.counts.get(name, 0) + n
        self._maybe_flush()

    def fail(self, url: str, reason: str, detail: str = "") -> None:
        """Record one failed URL: logged once, written to the run's errors, counted by reason."""
        logger.warning("%s: %s failed (%s)%s", self.source_id, url, reason, f": {detail}" if detail else "")
        self.store.add_run_error(self.run_id, self.source_id, url, reason, detail)
        self.errors += 1
        self.counts["failed"] += 1
        by_reason = self.counts["failed_by_reason"]
        by_reason[reason] = by_reason.get(reason, 0) + 1
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()

    def flush(self, status: str | None = None) -> None:
        """Save the counts on the run record (and its status when given)."""
        self._last_flush = time.monotonic()
        self.store.update_run(self.run_id, self.counts, status)

    def summary(self) -> dict[str, Any]:
        """The summary `harvest` returns for this source."""
        return {"run_id": self.run_id, "source": self.source_id, "counts": self.counts, "errors": self.errors}
