"""Locks and file writes that hold across processes.

Several `ssehub` commands (a cron harvest, a curator's index run, `serve --workers N`) share one data folder and one
model cache, so whatever must happen once (a store's migration, an index run, a source's harvest, a cached graph's
export) is guarded by an exclusive `flock` on a lock file. The kernel drops such a lock when its file closes, also when
the process is killed, so a crash never leaves anything locked.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def held(path: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the file `path` (made if missing) for the block, waiting for another process that
    holds it; `waiting` is called first when that happens (to say why the command pauses)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if waiting is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waiting()
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def try_hold(path: Path) -> IO[bytes] | None:
    """The file `path` open with its exclusive lock held (closing it releases the lock), or None at once when another
    process holds it."""
    handle = open(path, "ab")  # noqa: SIM115 - returned open: the lock lasts as long as the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def write_atomically(target: Path, write: Callable[[str], object]) -> None:
    """Call write(tmp_path), then rename onto target: readers see no file or a whole one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a cached graph from other users of a shared cache
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
