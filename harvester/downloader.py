"""Scrapy's downloader with its per-source concurrency enforced: Scrapy 2.19 starts every queued request at once.

Its `_process_queue` checks the slot's free transfer places in a loop but marks a request as transferring only when the
scheduled download task first runs, after the loop: with no delay, a slot of concurrency 2 sent all its queued requests
together (eight at once to a fixture site in tests/test_harvest_polite.py). Marking the request before scheduling
keeps the cap; `_download` adds it again (a set) and removes it when done, as before.
"""

from __future__ import annotations

from time import monotonic

from scrapy.core.downloader import Downloader, Slot
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro


class SlotDownloader(Downloader):
    """Downloader whose slots never transfer more requests at once than their concurrency."""

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return  # a delayed call will process the queue
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # counted now, not when the task starts
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:
                # one request per delay: the next waits for its own turn
                self._process_queue(slot)
                break
