"""Pages of memory-mapped files brought in ahead of use: read in large blocks into the page cache, then mapped.

A mapped file costs nothing to open, but each first touch of a page is a fault. On this project's 2-core machine (the
1M-passage FAISS file, 1.5 GB of vectors): with the file in the page cache, the first 60 searches of a fresh process
took 5-40 ms against 1.4 once mapped (minor faults); with the file out of the cache, 183 ms median (major faults, each
a small read at ~3 ms). Faulting the whole file in page by page took 680 s there, while reading it front to back in
8 MB blocks took 8.6 s (0.4 s when cached), and mapping the cached pages with MADV_POPULATE_READ 0.5 s (0.2 s CPU).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
BLOCK = 8 << 20  # bytes per read and per populate call: large reads for the disk, and a stop check between steps
PAGE = os.sysconf("SC_PAGE_SIZE")
MADV_POPULATE_READ = 22  # Linux 5.14+: fault a range in, read-only, in one call (no Python per page)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int
# glibc's mallopt parameters: allocations of at least M_MMAP_THRESHOLD bytes get a fresh mapping of their own, and free
# memory above M_TRIM_THRESHOLD at the top of a heap goes back to the kernel.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit (half a thread arena's heap)
KEEP_TRIM_THRESHOLD = 256 << 20


def read_ahead(path: Path, stop: threading.Event | None = None, start: int = 0, length: int | None = None) -> int:
    """Read a file (or `length` bytes from `start`) in BLOCK-sized reads so its pages sit in the page cache; the bytes read.

    Costs page cache, not this process's resident memory (nothing is kept). POSIX_FADV_WILLNEED does not replace it:
    the kernel reads ahead only its readahead window (8 MB here) per call.
    """
    buffer = bytearray(BLOCK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        f.seek(start)
        left = os.fstat(f.fileno()).st_size - start if length is None else length
        while left > 0 and not (stop is not None and stop.is_set()):
            read = f.readinto(memoryview(buffer)[: min(BLOCK, left)])
            if not read:
                break
            total += read
            left -= read
    return total


def populate(address: int, length: int, stop: threading.Event | None = None) -> int:
    """Map the pages of [address, address + length) of a mapping into this process; the bytes covered.

    MADV_POPULATE_READ where the kernel has it (the call releases the GIL: requests keep running), else one read per
    page. Pages already read ahead cost a minor fault each, in the kernel. The caller keeps the mapping alive; any
    error other than an unknown advice ends the work (pages are never touched where the kernel refused them).
    """
    start = address - address % PAGE
    end = address + length
    done = start
    use_madvise = True
    while done < end and not (stop is not None and stop.is_set()):
        step = min(BLOCK, end - done)
        if use_madvise and _libc.madvise(done, step, MADV_POPULATE_READ) != 0:
            error = ctypes.get_errno()
            if error != errno.EINVAL:  # not an unknown advice: an unmapped or unreadable range
                log.warning("could not page in a mapped range: %s", os.strerror(error))
                break
            log.debug("MADV_POPULATE_READ unavailable; touching pages one by one")
            use_madvise = False
        if not use_madvise:
            pages = np.frombuffer((ctypes.c_char * step).from_address(done), dtype=np.uint8)
            int(pages[::PAGE].max())  # a read of one byte per page faults it in
        done += step
    return done - start


def read_only_mapping(address: int, path: Path) -> tuple[int, int] | None:
    """(start, end) of this process's read-only mapping of `path` that holds `address`, from /proc/self/maps; else None."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[5] != target or "w" in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return start, end
    return None


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse instead of returning them to the kernel; whether
    it took the settings (False elsewhere than glibc).

    A keyword search at a million passages allocates ~12 MB of short-lived arrays (its dense score array alone is 8 MB)
    and frees them together. glibc's defaults map a large block afresh, or give a heap's free top back to the kernel
    once it passes twice the largest block freed so far, so the next search faulted thousands of new zeroed pages in:
    840 minor faults and ~2.5 ms of CPU a keyword search at 1M (in `ssehub serve`), 3-13 faults with these settings.
    Memory freed by a search stays in the process for the next one (a few searches' peak per malloc arena).
    """
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD))
