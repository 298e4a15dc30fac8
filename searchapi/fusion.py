"""Ranking helpers: chunk hits -> document rankings, and reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very first ranks


def best_per_document(hits: Iterable[tuple[int, float]], owner: Mapping[int, str]) -> dict[str, tuple[float, int]]:
    """Document id -> (best chunk score, that chunk's id); chunks unknown to the store (a stale index) are skipped."""
    best: dict[str, tuple[float, int]] = {}
    for chunk_id, score in hits:
        doc = owner.get(chunk_id)
        if doc is not None and (doc not in best or score > best[doc][0]):
            best[doc] = (score, chunk_id)
    return best


def ranked(scores: Mapping[str, tuple[float, int]]) -> list[str]:
    """Document ids by descending score (ties by id, so pages are stable)."""
    return sorted(scores, key=lambda d: (-scores[d][0], d))


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion, normalised so a document first in every ranking scores 1.0."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    top = len(rankings) / (k + 1) if rankings else 1.0
    return {doc: s / top for doc, s in fused.items()}


def minmax(scores: Mapping[str, float], low: float | None = None) -> dict[str, float]:
    """Scores rescaled to [0, 1] between `low` (default: the lowest score) and the highest."""
    if not scores:
        return {}
    top = max(scores.values())
    low = min(scores.values()) if low is None else low
    span = top - low
    return {d: (max(s, low) - low) / span if span > 0 else 1.0 for d, s in scores.items()}


def convex(keyword: Mapping[str, float], semantic: Mapping[str, float], weight: float) -> dict[str, float]:
    """`weight` * keyword + (1 - weight) * semantic, both already in [0, 1]; a document missing from one scores 0 there."""
    return {
        d: weight * keyword.get(d, 0.0) + (1.0 - weight) * semantic.get(d, 0.0) for d in set(keyword) | set(semantic)
    }
