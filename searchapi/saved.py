"""Arrays built from the store, saved beside the index and memory-mapped by the next process that needs them.

Each saved value is a folder `<kind>-<stamp>` of `.npy` files plus `meta.json`, where the stamp fingerprints what the
arrays were built from (e.g. `Store.keyword_stamp`): a process whose store has another stamp never reads them. The folder
is written under a temporary name and renamed into place, so a reader sees a complete one or none; older folders of
the same kind are removed after a save (a process still mapping them keeps its pages: Linux frees them on unmap).
Loading maps the files read-only (`np.load(mmap_mode="r")`): start-up costs no reading, and `serve --workers N`
processes share one copy in the page cache.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the layout of a saved value changes: old folders are then ignored
STAMP = re.compile(r"[0-9a-f]{8,64}")


def _name(kind: str, stamp: str) -> str:
    if not STAMP.fullmatch(stamp):
        raise ValueError(f"not a stamp: {stamp!r}")
    return f"{kind}-{stamp}"


def save(folder: Path, kind: str, stamp: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write `arrays` and `meta` as the `kind` value of `stamp` under `folder`; returns its folder."""
    target = folder / _name(kind, stamp)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=folder))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "stamp": stamp, **meta}), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in folder.glob(f"{kind}-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    log.info("saved %s to %s", kind, target)
    return target


def load(folder: Path, kind: str, stamp: str, names: Iterable[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays (memory-mapped, read-only) and meta saved for `stamp`, or None when there are none or another format."""
    target = folder / _name(kind, stamp)
    try:
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if meta.get("format") != FORMAT or meta.get("stamp") != stamp:
        return None
    return {name: np.load(target / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}, meta
