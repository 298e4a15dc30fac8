"""SDG tagger features: embedding similarity to the UN texts, stemmed word overlap with them (en/fr/es), keyword queries."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import cache

import numpy as np

from ssehub.sdgquery import Matcher

LEXICAL_LANGS = ("en", "fr", "es")
_STEMMERS = {"en": "english", "fr": "french", "es": "spanish"}
_FUNCTION_WORDS = {
    "en": frozenset(["the", "of", "and", "to", "in", "is", "are", "for", "that", "with", "this", "on", "by", "from", "as", "be", "which"]),
    "fr": frozenset(["le", "la", "les", "des", "du", "de", "et", "est", "une", "un", "dans", "pour", "que", "qui", "sur", "par", "au", "aux", "ces", "sont", "avec"]),
    "es": frozenset(["el", "la", "los", "las", "del", "de", "y", "es", "una", "un", "en", "para", "que", "por", "con", "se", "al", "su", "sus", "son", "como"]),
}
_WORD = re.compile(r"[^\W\d_]{2,}")
EMBEDDING = ["sim_max", "sim_top3", "sim_title", "sim_margin", "sim_rank", "sim_max_z", "sim_top3_z"]
LEXICAL = ["lex_max", "lex_top3", "lex_max_z", "lex_top3_z"]
GOAL_LEXICAL = ["glex", "glex_z"]


def language(text: str) -> str:
    """'en', 'fr', 'es' from the share of function words, else 'other' (cheap: runs on every passage)."""
    ws = re.findall(r"\w+", text.lower())
    if not ws:
        return "other"
    shares = {lang: sum(w in fw for w in ws) / len(ws) for lang, fw in _FUNCTION_WORDS.items()}
    best = max(shares, key=lambda k: shares[k])
    if shares[best] < 0.08:
        return "other"
    if best in ("fr", "es"):  # function words both share ("de", "la", "que", "en", "se") often tip the count
        return _french_or_spanish(text)
    return best


FR_ES_SAMPLE = 1000  # characters: plenty for two languages apart, and py3langid's cost grows with the sample


@cache
def _fr_es_identifier():  # py3langid's LanguageIdentifier, imported on first use
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(["fr", "es"])
    return identifier


def _french_or_spanish(text: str) -> str:
    """French or Spanish by py3langid's character n-grams over those two only. The function-word count misread 11 of
    the 421 French UN targets and indicators as Spanish ("Proportion de la population ... en ...") and 4 Spanish as
    French ("Tasa de mortalidad materna"); this reads all 842 right, in ~0.1 ms a text."""
    return str(_fr_es_identifier().classify(text[:FR_ES_SAMPLE])[0])


@cache
def _stemmer(lang: str):
    import snowballstemmer

    return snowballstemmer.stemmer(_STEMMERS[lang])


_STEM_MEMO: dict[str, dict[str, str]] = {lang: {} for lang in LEXICAL_LANGS}
_STEM_MEMO_MAX = 200_000


def stems(text: str, lang: str) -> list[str]:
    """Snowball stems of a text's words (two letters or more) in one of `LEXICAL_LANGS`."""
    # Snowball in pure Python costs ~0.3 ms a word; words repeat, so a memo makes stemming nearly free.
    # NFC first: the shipped UN texts are decomposed (é as e + U+0301), and \w does not match a combining accent,
    # so "éliminer" would split into "e" + "liminer" and never meet the same word typed as one character.
    return stem_words(words(text), lang)


def words(text: str) -> list[str]:
    """A text's lower-case words of two letters or more (NFC, as `stems` reads them)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def function_word(word: str, lang: str) -> bool:
    """Whether a lower-case word is one of the language guesser's function words of `lang`."""
    return word in _FUNCTION_WORDS.get(lang, ())


def stem_words(ws: Sequence[str], lang: str) -> list[str]:
    """Snowball stems of lower-case words, one for each (memoised)."""
    memo = _STEM_MEMO[lang]
    new = [w for w in set(ws) if w not in memo]
    if new:
        if len(memo) > _STEM_MEMO_MAX:
            memo.clear()
        memo.update(zip(new, _stemmer(lang).stemWords(new), strict=True))
    return [memo[w] for w in ws]


class Lexicon:
    """TF-IDF over stems of the UN goal/target/indicator texts, one vocabulary and IDF per language.

    This is the keyword signal for French and Spanish: the public query systems are English-only, and the
    official fr/es UN texts give each goal its own words in those languages.
    """

    def __init__(self, texts: Sequence[str], langs: Sequence[str]) -> None:
        self.langs = np.asarray(langs)
        self.size = len(texts)
        self.vocab: dict[str, dict[str, int]] = {}
        self.idf: dict[str, np.ndarray] = {}
        self.matrix: dict[str, np.ndarray] = {}  # lang -> (vocab, prototypes of all languages), zero elsewhere
        for lang in LEXICAL_LANGS:
            rows = np.flatnonzero(self.langs == lang)
            docs = [Counter(stems(texts[i], lang)) for i in rows]
            df = Counter(s for d in docs for s in d)
            vocab = {s: j for j, s in enumerate(sorted(df))}
            idf = np.array([math.log((1 + len(docs)) / (1 + df[s])) + 1.0 for s in sorted(df)], np.float32)
            mat = np.zeros((len(vocab), self.size), np.float32)
            for i, d in zip(rows, docs, strict=True):
                for s, c in d.items():
                    mat[vocab[s], i] = (1 + math.log(c)) * idf[vocab[s]]
            mat /= np.linalg.norm(mat, axis=0, keepdims=True) + 1e-9
            self.vocab[lang], self.idf[lang], self.matrix[lang] = vocab, idf, mat

    def _weights(self, text: str, lang: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(vocabulary rows, unit TF-IDF weights) of a text's stems, or None when none is in the vocabulary."""
        if lang not in self.vocab:
            return None
        vocab, idf = self.vocab[lang], self.idf[lang]
        counts = Counter(s for s in stems(text, lang) if s in vocab)
        if not counts:
            return None
        idx = np.array([vocab[s] for s in counts])
        w = np.array([1 + math.log(c) for c in counts.values()], np.float32) * idf[idx]
        return idx, w / np.linalg.norm(w)

    def similarities(self, texts: Sequence[str], langs: Sequence[str]) -> np.ndarray:
        """Cosine of each text's TF-IDF vector to each prototype of its own language: (texts, prototypes)."""
        out = np.zeros((len(texts), self.size), np.float32)
        for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if (tw := self._weights(text, lang)) is not None:
                out[i] = tw[1] @ self.matrix[lang][tw[0]]
        return out

    def goal_matrices(self, proto_goal: np.ndarray, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per language, (vocab, 17): each goal's prototype vectors summed and normalised (a goal's own vocabulary)."""
        onehot = np.eye(17, dtype=np.float32)[np.asarray(proto_goal) - 1]
        if keep is not None:
            onehot = onehot * keep[:, None]
        out = {}
        for lang, mat in self.matrix.items():
            g = mat @ onehot
            out[lang] = g / (np.linalg.norm(g, axis=0, keepdims=True) + 1e-9)
        return out

    def goal_similarities(self, texts: Sequence[str], langs: Sequence[str], goal_mats: dict[str, np.ndarray]) -> np.ndarray:
        """Cosine of each text to each goal's whole UN vocabulary in the text's language: (texts, 17).

        One vector per goal pools the words of all its targets and indicators: a passage that uses several of a
        goal's words spread over different targets scores higher here than against any single target.
        """
        out = np.zeros((len(texts), 17), np.float32)
        for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if (tw := self._weights(text, lang)) is not None:
                out[i] = tw[1] @ goal_mats[lang][tw[0]]
        return out


def per_goal(sims: np.ndarray, proto_goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, mean of the top 3) similarity per goal: (n, 17) each."""
    n = sims.shape[0]
    smax, top3 = np.zeros((n, 17), np.float32), np.zeros((n, 17), np.float32)
    for g in range(17):
        cols = sims[:, proto_goal == g + 1]
        if cols.shape[1] == 0:
            continue
        smax[:, g] = cols.max(axis=1)
        top3[:, g] = np.sort(cols, axis=1)[:, -3:].mean(axis=1)
    return smax, top3


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised across the 17 goals of each row: the level of similarities shifts with language, the spread less."""
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)


def embedding_features(sims: np.ndarray, proto_goal: np.ndarray, is_title: np.ndarray) -> np.ndarray:
    """(n, 17, len(EMBEDDING)) from cosine similarities to the prototypes."""
    smax, top3 = per_goal(sims, proto_goal)
    title = np.zeros_like(smax)
    for g in range(17):
        cols = (proto_goal == g + 1) & is_title
        if cols.any():
            title[:, g] = sims[:, cols].max(axis=1)
    others = np.sort(smax, axis=1)
    best_other = np.where(smax >= others[:, -1:], others[:, -2:-1], others[:, -1:])
    rank = (smax[:, :, None] < smax[:, None, :]).sum(axis=2)
    return np.stack([smax, top3, title, smax - best_other, 1.0 / (1.0 + rank), zscore(smax), zscore(top3)], axis=2)


def lexical_features(lex_sims: np.ndarray, proto_goal: np.ndarray) -> np.ndarray:
    """(n, 17, len(LEXICAL)) from TF-IDF similarities to the prototypes."""
    smax, top3 = per_goal(lex_sims, proto_goal)
    return np.stack([smax, top3, zscore(smax), zscore(top3)], axis=2)


def goal_lexical_features(goal_sims: np.ndarray) -> np.ndarray:
    """(n, 17, len(GOAL_LEXICAL)) from `Lexicon.goal_similarities`."""
    return np.stack([goal_sims, zscore(goal_sims)], axis=2)


def keyword_features(matcher: Matcher, texts: Sequence[str], english: np.ndarray) -> np.ndarray:
    """(n, 17, systems + 1): log(1 + matched queries) per system and the goal's share of all matches (English
    texts, or French/Spanish ones glossed into English first: `ssehub.gloss`)."""
    systems = matcher.systems
    out = np.zeros((len(texts), 17, len(systems) + 1), np.float32)
    for i, text in enumerate(texts):
        if not english[i]:
            continue
        counts = matcher.counts(text)
        for s, system in enumerate(systems):
            out[i, :, s] = np.log1p(counts[system])
        total = np.array([sum(counts[s][g] for s in systems) for g in range(17)], np.float32)
        out[i, :, -1] = total / total.sum() if total.sum() else 0.0
    return out


def keyword_names(matcher: Matcher) -> list[str]:
    """Names of `keyword_features` columns."""
    return [*[f"kw_{s}" for s in matcher.systems], "kw_share"]
