"""A value built from the store and kept for one data version: rebuilt at once when small, in the background when large."""

from __future__ import annotations

import logging
import threading
from typing import Generic, Protocol, TypeVar

from ssehub.store import Store

log = logging.getLogger(__name__)


class Built(Protocol):
    """What a versioned value offers: the data version it was built from, and its size (to choose where to rebuild)."""

    version: int

    def __len__(self) -> int: ...


T = TypeVar("T", bound=Built)


class Versioned(Generic[T]):
    """The value of the store's current data version, or None while a rebuild is pending (callers then ask SQLite).

    Subclasses say how to `build` the value and up to which size (`sync_max`) a rebuild happens in the request.
    """

    thread_name = "ssehub-versioned"
    what = "value"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._value: T | None = None
        self._building = threading.Lock()
        self._failed_version: int | None = None
        self._thread: threading.Thread | None = None

    def build(self, version: int) -> T:
        """The value, read from the store now."""
        raise NotImplementedError

    def sync_max(self) -> int:
        """The largest value rebuilt in the request; larger ones rebuild in a background thread."""
        raise NotImplementedError

    def get(self) -> T | None:
        """The up-to-date value, or None: small values rebuild at once, large ones in a background thread."""
        version = self.store.data_version()
        current = self._value
        if current is not None and current.version == version:
            return current
        if version == self._failed_version:
            return None
        if current is None and self._building.locked():
            return None  # the start-up thread is building it: SQLite answers meanwhile
        if current is None or len(current) <= self.sync_max():
            with self._building:
                self._rebuild_if_stale()
        elif self._building.acquire(blocking=False):
            self._thread = threading.Thread(target=self._background, name=self.thread_name, daemon=True)
            self._thread.start()
        current = self._value
        return current if current is not None and current.version == version else None

    @property
    def ready(self) -> bool:
        """Whether a value exists (of any data version): searches are served from memory, not SQLite."""
        return self._value is not None

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a background rebuild (before the store is closed); whether none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _background(self) -> None:
        try:
            self._rebuild_if_stale()
        finally:
            self._building.release()

    def _rebuild_if_stale(self) -> None:
        version = self.store.data_version()  # asked before reading: a commit in between only causes another rebuild
        if self._value is not None and self._value.version == version:
            return
        try:
            self._value = self.build(version)
        except Exception:  # an odd row must not break search: SQLite answers instead
            log.exception("cannot build the %s; searching through SQLite", self.what)
            self._failed_version = version
