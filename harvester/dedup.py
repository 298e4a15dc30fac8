"""Near-duplicate texts: MinHash over word shingles, LSH bands kept in the store, Jaccard checked on signatures."""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import numpy as np

from ssehub.store import Store

SHINGLE = 5  # words per shingle: long enough that unrelated texts share few, short enough to survive small edits
PERMUTATIONS = 128
BANDS = 16  # 16 bands of 8 rows: candidates from Jaccard ~0.7 up, so little is missed at the 0.85 threshold
ROWS = PERMUTATIONS // BANDS
THRESHOLD = 0.85
MIN_SHINGLES = 20  # shorter texts (a title, a one-line summary) are too short to call duplicates
_PRIME = (1 << 61) - 1
_rng = np.random.RandomState(20240611)  # fixed: signatures are stored and compared across runs
_A = _rng.randint(1, 1 << 32, size=PERMUTATIONS, dtype=np.uint64)
_B = _rng.randint(0, 1 << 32, size=PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str) -> set[bytes]:
    """Lower-cased word 5-grams of a text."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


def signature(text: str) -> np.ndarray | None:
    """MinHash signature (uint64[PERMUTATIONS]) of a text, or None when it is too short to compare."""
    grams = shingles(text)
    if len(grams) < MIN_SHINGLES:
        return None
    # crc32 is stable across processes (unlike hash()) and fast; 32-bit values keep a*x+b inside uint64.
    values = np.fromiter((zlib.crc32(g) for g in grams), dtype=np.uint64, count=len(grams))
    hashed = (np.outer(values, _A) + _B) % _PRIME
    return hashed.min(axis=0)


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 63-bit key per LSH band (band number included, so equal rows in different bands differ)."""
    keys = []
    for band in range(BANDS):
        digest = hashlib.blake2b(sig[band * ROWS : (band + 1) * ROWS].tobytes(), digest_size=8, person=bytes([band]) * 8)
        keys.append(int.from_bytes(digest.digest(), "big", signed=True))
    return keys


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.mean(a == b))


@dataclass
class Match:
    """The stored document a text nearly duplicates."""

    document_id: str
    similarity: float


class NearDuplicates:
    """Finds and records near-duplicate documents through the store's LSH band table."""

    def __init__(self, store: Store, threshold: float = THRESHOLD) -> None:
        self.store = store
        self.threshold = threshold

    def find(self, sig: np.ndarray | None, exclude: str = "", record: str | None = None) -> Match | None:
        """The most similar stored document at or above the threshold, if any; for a text too short to compare, the
        document with the very same record (`record`: Document.hash, over title, text, date, authors and type)."""
        if sig is None:
            if record is None:
                return None
            key, blob = exact_key(record)
            same = sorted(d for d, b in self.store.minhash_candidates([key], exclude=exclude).items() if b == blob)
            return Match(same[0], 1.0) if same else None
        best: Match | None = None
        for doc_id, blob in sorted(self.store.minhash_candidates(band_keys(sig), exclude=exclude).items()):
            if len(blob) != PERMUTATIONS * 8:
                continue  # a short text's record key (exact_key), sharing a band key by chance
            score = similarity(sig, np.frombuffer(blob, dtype=np.uint64))
            if score >= self.threshold and (best is None or score > best.similarity):
                best = Match(doc_id, score)
        return best

    def remember(self, doc_id: str, sig: np.ndarray | None, record: str | None = None) -> None:
        """Store a document's signature, or for a text too short to compare its record's key (exact_key)."""
        if sig is not None:
            self.store.set_minhash(doc_id, sig.tobytes(), band_keys(sig))
        elif record is not None:
            key, blob = exact_key(record)
            self.store.set_minhash(doc_id, blob, [key])


def exact_key(record: str) -> tuple[int, bytes]:
    """The band key and stored blob of a short text's whole record, kept in the MinHash tables.

    A text under MIN_SHINGLES is too short to call a near-duplicate (two news items may share a one-line summary), so
    such a page at a second URL (a second source reaching it, a renamed source, a site moved to another host) was
    stored as a second document. The very same record (title, text, date, authors, type) is the same document.
    """
    digest = hashlib.blake2b(record.encode(), digest_size=8, person=b"ssehub-record")
    return int.from_bytes(digest.digest(), "big", signed=True), b"record:" + record.encode()
