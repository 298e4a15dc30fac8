"""The vector index as served: reloaded when `ssehub index` writes a new one, without a restart."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ssehub.ann import INDEX_FILE, MANIFEST_FILE, FaissIndex, NumpyIndex, load_index
from ssehub.errors import IndexNotBuilt

log = logging.getLogger(__name__)


class LiveIndex:
    """Holds the loaded index; each `get` stats the manifest (cheap) and reloads when it changed.

    The manifest is renamed into place after the index file, so a new manifest means a complete new index.
    While one request loads it, the others keep using the previous index. A reloaded index is paged in by a thread of
    its own, as the start-up one is by the app's warm-up (`FaissIndex.page_in`): its first searches would otherwise
    fault its mapped vectors and neighbour lists in one page at a time.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._index: FaissIndex | NumpyIndex | None = None
        self._manifest: dict | None = None
        self._stamp: tuple[int, int] | None = None
        self._loading = threading.Lock()
        self.paging: threading.Thread | None = None  # the page-in of the last reloaded index

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.folder / MANIFEST_FILE).stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def manifest(self) -> dict | None:
        """The manifest of the index being served (after a reload check), or None."""
        try:
            return self.get()[1]
        except IndexNotBuilt:
            return None

    def get(self) -> tuple[FaissIndex | NumpyIndex, dict]:
        """The newest usable index and its manifest; IndexNotBuilt when there is none."""
        stamp = self._current_stamp()
        if stamp is not None and stamp != self._stamp and self._loading.acquire(blocking=self._index is None):
            try:
                if stamp != self._stamp:
                    self._load(stamp)
            finally:
                self._loading.release()
        if self._index is None or self._manifest is None:
            raise IndexNotBuilt(f"no index at {self.folder / INDEX_FILE}: run `ssehub index` first")
        return self._index, self._manifest

    def _load(self, stamp: tuple[int, int]) -> None:
        try:
            index, manifest = load_index(self.folder, mmap=True)  # vectors paged in, shared by workers
        except IndexNotBuilt:
            return
        except Exception as exc:  # a half-copied or foreign file must not take search down
            log.warning("cannot load the index at %s (%s); keeping the previous one", self.folder, exc)
            self._stamp = stamp
            return
        reload = self._index is not None
        self._stamp = stamp
        self._index, self._manifest = index, manifest
        log.info("loaded index: %s vectors, built at %s", manifest.get("count"), manifest.get("built_at"))
        if reload:
            self.paging = threading.Thread(target=_page_in, args=(index,), name="ssehub-page-in", daemon=True)
            self.paging.start()


def _page_in(index: FaissIndex | NumpyIndex) -> None:
    try:
        index.page_in(read=False)  # written by `ssehub index` moments ago: in the page cache, only to be mapped
    except Exception:  # searches page the vectors in themselves
        log.exception("could not page the reloaded index in")
