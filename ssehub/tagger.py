"""SDG tagger: passage similarity to the UN goal/target texts (en/fr/es) plus public keyword queries, scored
by a small logistic model fitted on the labelled dev set (`scripts/build_tagger_data.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ssehub import sdg
from ssehub.sdgquery import Matcher, default_matcher

if TYPE_CHECKING:
    from ssehub.embed import Embedder

log = logging.getLogger(__name__)
PROTOTYPE_LANGS = ("en", "fr", "es")
EVIDENCE_CHARS = 300
PROTOTYPE_FILE = "data/sdg_prototypes.npz"  # vectors of `prototypes()` for the packaged model
MAX_DOCUMENT_TAGS = 6  # long documents touch many goals in passing; keep the strongest few
# A target is named only when the evidence passage is this close to its UN text (cosine) and within
# TARGET_MARGIN of the goal's best target: below that, targets are guesses among siblings.
TARGET_MIN_COSINE = 0.45
TARGET_MARGIN = 0.03
_EN_WORDS = frozenset("the of and to in is are for that with this on by from as be which".split())


class SdgTagger(Protocol):
    """What the indexer, the CLI and the API need of an SDG tagger."""

    def tag(self, text: str) -> list[dict[str, Any]]:
        """[{sdg, score, evidence, targets}] best first."""
        ...

    def tag_document(self, title: str, passages: Sequence[str], vectors: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Document tags aggregated from its passages (vectors: their embeddings, if already computed)."""
        ...


def prototypes() -> list[tuple[int, str, str]]:
    """(goal, target code or '' for the goal itself, text) for goals, targets and indicators in en/fr/es."""
    out: list[tuple[int, str, str]] = []
    for lang in PROTOTYPE_LANGS:
        for goal in sdg.goals(lang):
            out.append((goal.sdg, "", f"{goal.short}. {goal.title}"))
        for code, text in sdg.targets(lang).items():
            out.append((sdg.goal_of(code), code, text))
        for ind in sdg.indicators(lang).values():
            out.append((sdg.goal_of(ind["target"]), ind["target"], ind["text"]))
    return out


def prototype_vectors(embedder: Embedder, texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of the UN texts: shipped for the packaged model, else cached in `cache_dir`, else computed."""
    key = hashlib.sha1("\n".join([embedder.name, *texts]).encode("utf-8")).hexdigest()[:16]
    shipped = resources.files("ssehub").joinpath(PROTOTYPE_FILE)
    candidates = [shipped] + ([cache_dir / f"sdg_prototypes_{key}.npz"] if cache_dir else [])
    for path in candidates:
        if path.is_file():
            with path.open("rb") as f:
                data = np.load(f)
                if str(data["key"]) == key:
                    return data["vectors"].astype(np.float32)
    log.info("embedding %d UN goal/target/indicator texts (once; cached)", len(texts))
    vectors = embedder.encode(texts, kind="passage", batch_size=32)
    if cache_dir:
        save_prototypes(cache_dir / f"sdg_prototypes_{key}.npz", key, vectors)
    return vectors


def save_prototypes(path: Path, key: str, vectors: np.ndarray) -> None:
    """Write prototype vectors as float16 (cosines move by ~1e-3) through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, key=np.array(key), vectors=vectors.astype(np.float16))
    os.replace(tmp, path)


def is_english(text: str) -> bool:
    """Cheap check (function words) deciding whether the English keyword queries apply."""
    ws = re.findall(r"[a-z]+", text.lower())
    return len(ws) > 0 and sum(w in _EN_WORDS for w in ws) / len(ws) >= 0.08


def load_params() -> dict[str, Any]:
    """The fitted model shipped with the package."""
    return json.loads(resources.files("ssehub").joinpath("data/sdg_tagger.json").read_text(encoding="utf-8"))


class Tagger:
    """Tags texts with SDGs; build once per process (embeds the UN texts once)."""

    def __init__(self, embedder: Embedder, params: dict[str, Any] | None = None, offset: float = 0.0,
                 matcher: Matcher | None = None, cache_dir: Path | None = None) -> None:
        self.embedder = embedder
        self.params = params if params is not None else load_params()
        self.offset = offset
        self.matcher = matcher or default_matcher()
        protos = prototypes()
        self.proto_goal = np.array([g for g, _, _ in protos])
        self.proto_target = [t for _, t, _ in protos]
        self.proto_vecs = prototype_vectors(embedder, [t for _, _, t in protos], cache_dir)
        self._is_title = np.array([t == "" for _, t, _ in protos])
        if self.params.get("model") not in (None, embedder.name):
            log.warning("tagger weights were fitted for %s, not %s: scores are uncalibrated",
                        self.params.get("model"), embedder.name)

    # -- features ---------------------------------------------------------------------------

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine of each passage to each prototype: (passages, prototypes)."""
        return np.asarray(vectors, dtype=np.float32) @ self.proto_vecs.T

    def features(self, texts: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features (passages, 17, F), is-English flags (passages,)); names in `feature_names()`."""
        sims = self.similarities(vectors)
        n = len(texts)
        smax = np.zeros((n, 17), np.float32)
        top3 = np.zeros((n, 17), np.float32)
        title = np.zeros((n, 17), np.float32)
        for g in range(17):
            cols = sims[:, self.proto_goal == g + 1]
            smax[:, g] = cols.max(axis=1)
            top3[:, g] = np.sort(cols, axis=1)[:, -3:].mean(axis=1)
            title[:, g] = sims[:, (self.proto_goal == g + 1) & self._is_title].max(axis=1)
        others = np.sort(smax, axis=1)
        best_other = np.where(smax >= others[:, -1:], others[:, -2:-1], others[:, -1:])
        rank = (smax[:, :, None] < smax[:, None, :]).sum(axis=2)
        # Similarities standardised across the 17 goals of one passage: the level of raw cosines shifts with
        # the passage's language (same-language word pieces), their spread much less.
        zmax = (smax - smax.mean(axis=1, keepdims=True)) / (smax.std(axis=1, keepdims=True) + 1e-6)
        ztop = (top3 - top3.mean(axis=1, keepdims=True)) / (top3.std(axis=1, keepdims=True) + 1e-6)
        english = np.array([is_english(t) for t in texts])
        kw = [self.matcher.counts(t) if e else None for t, e in zip(texts, english, strict=True)]
        systems = self.matcher.systems
        kwf = np.zeros((n, 17, len(systems) + 1), np.float32)
        for i, counts in enumerate(kw):
            if counts is None:
                continue
            for s, system in enumerate(systems):
                kwf[i, :, s] = np.log1p(counts[system])
            total = np.array([sum(counts[s][g] for s in systems) for g in range(17)], np.float32)
            kwf[i, :, -1] = total / total.sum() if total.sum() else 0.0
        emb = np.stack([smax, top3, title, smax - best_other, 1.0 / (1.0 + rank), zmax, ztop], axis=2)
        return np.concatenate([emb, kwf], axis=2), english

    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return ["sim_max", "sim_top3", "sim_title", "sim_margin", "sim_rank", "sim_max_z", "sim_top3_z", *[f"kw_{s}" for s in self.matcher.systems],
                "kw_share"]

    def probabilities(self, feats: np.ndarray, english: np.ndarray) -> np.ndarray:
        """P(goal addressed) per passage and goal: the full model for English, the similarity-only one otherwise."""
        out = np.zeros(feats.shape[:2], np.float32)
        for key, rows in (("full", english), ("similarity", ~english)):
            if rows.any():
                out[rows] = apply_model(self.params[key], feats[rows])
        return out

    def thresholds(self, english: bool) -> np.ndarray:
        """Per-goal decision thresholds (plus the configured offset)."""
        return np.asarray(self.params["full" if english else "similarity"]["thresholds"], np.float32) + self.offset

    # -- tagging ----------------------------------------------------------------------------

    def tag(self, text: str) -> list[dict[str, Any]]:
        """Tags of one passage-length text (longer texts are scored passage by passage by `tag_document`)."""
        return self.tag_many([text])[0]

    def tag_many(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """`tag` for many texts, embedded in one batch."""
        vectors = self.embedder.encode(list(texts), kind="passage", batch_size=16)
        feats, english = self.features(texts, vectors)
        probs = self.probabilities(feats, english)
        sims = self.similarities(vectors)
        return [self._tags([text], probs[i : i + 1], sims[i : i + 1], english[i], None) for i, text in enumerate(texts)]

    def tag_document(self, title: str, passages: Sequence[str], vectors: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Document tags: a goal's score is its best passage's; the title counts with the first passage."""
        if not passages:
            passages = [title] if title.strip() else []
            vectors = None
        if not passages:
            return []
        texts = list(passages)
        if title.strip():
            texts[0] = f"{title.strip()}. {texts[0]}"
        # Vectors from another model (a tagger shared across a model change) would compare apples with pears.
        if vectors is None or vectors.shape != (len(texts), self.proto_vecs.shape[1]):
            vectors = self.embedder.encode(texts, kind="passage", batch_size=16)
        feats, english = self.features(texts, vectors)
        probs = self.probabilities(feats, english)
        return self._tags(list(passages), probs, self.similarities(vectors), bool(english.mean() >= 0.5),
                          MAX_DOCUMENT_TAGS)

    def _tags(self, passages: list[str], probs: np.ndarray, sims: np.ndarray, english: bool,
              limit: int | None) -> list[dict[str, Any]]:
        best = probs.argmax(axis=0)
        score = probs.max(axis=0)
        chosen = np.flatnonzero(score >= self.thresholds(english))
        tags = []
        for g in sorted(chosen, key=lambda g: -score[g])[:limit]:
            p = int(best[g])
            tags.append({"sdg": int(g + 1), "score": round(float(score[g]), 4), "evidence": evidence(passages[p]),
                         "targets": self._targets(sims[p], int(g + 1))})
        return tags

    def _targets(self, sims: np.ndarray, goal: int) -> list[str]:
        best: dict[str, float] = {}
        for i in np.flatnonzero(self.proto_goal == goal):
            code = self.proto_target[i]
            if code and sims[i] > best.get(code, -1.0):
                best[code] = float(sims[i])
        if not best:
            return []
        top = max(best.values())
        keep = [c for c, s in best.items() if s >= TARGET_MIN_COSINE and s >= top - TARGET_MARGIN]
        return sorted(keep, key=lambda c: -best[c])[:3]


def evidence(passage: str, limit: int = EVIDENCE_CHARS) -> str:
    """A passage trimmed to about `limit` characters at a word boundary."""
    text = " ".join(passage.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def apply_model(model: dict[str, Any], feats: np.ndarray) -> np.ndarray:
    """Logistic model over its standardised feature columns plus a per-goal bias: (n, 17, F) -> (n, 17)."""
    x = (feats[..., model["columns"]] - np.asarray(model["mean"])) / np.asarray(model["scale"])
    z = x @ np.asarray(model["weights"]) + np.asarray(model["goal_bias"]) + model["bias"]
    return 1.0 / (1.0 + np.exp(-z))
