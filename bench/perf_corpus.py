"""Synthetic corpora of N passages for the performance suite, written through the project's own Store and index classes.

Texts are drawn from the words of the bundled demo sites (SSE literature, so query terms have realistic document
frequencies); vectors are real MiniLM embeddings of B topic passages plus Gaussian noise (cosine ~0.8 to their
topic), so a real query's cosines and the semantic floor behave as on real data. Built folders are cached under
data/bench/perf-<N> (keyed by this file's hash), so a re-run only measures.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "data" / "bench"
SITES = ROOT / "ssehub" / "demo" / "sites"
MODEL = "all-MiniLM-L6-v2-int8v3"  # what a new index holds by default (embed_backend auto: int8v3 passages and queries)
TOPICS = 192
WORDS_PER_PASSAGE = 120
PASSAGES_PER_DOC = 4
BATCH = 20_000
SOURCES = ["unsse", "ripess", "socioeco", "ilo", "oecd", "emes", "ciriec", "fao"]
LANGS = ["en"] * 6 + ["fr", "fr", "es", "de"]
TYPES = ["report", "article", "case-study", "policy-brief", "thesis", "other"]
QUERIES = [
    "women cooperatives in rural areas", "solidarity finance and microcredit", "renewable energy communities",
    "social enterprise public procurement", "community land trust affordable housing", "fair trade coffee producers",
    "worker cooperatives decent work", "mutual health insurance", "informal economy and social protection",
    "local currencies", "circular economy waste pickers", "food sovereignty and agroecology",
    "platform cooperatives", "social economy law", "youth employment training", "climate adaptation cooperatives",
]


def _code_key() -> str:
    """A hash of the code that builds a corpus (this file above the recall functions): other edits keep the cache."""
    text = Path(__file__).read_text(encoding="utf-8")
    return hashlib.sha256(text[: text.index("\ndef recall_at_10")].encode()).hexdigest()[:10]


def demo_sentences() -> list[str]:
    """Sentences of the demo sites' visible text."""
    out: dict[str, None] = {}
    for path in sorted(SITES.rglob("*.html")):
        text = re.sub(r"(?s)<(script|style)[^>]*>.*?</\1>", " ", path.read_text(encoding="utf-8", errors="ignore"))
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            if 8 <= len(sentence.split()) <= 60:
                out.setdefault(sentence, None)
    return list(out)


def topic_passages(rng: np.random.Generator) -> list[list[str]]:
    """TOPICS word lists, each from a run of consecutive demo sentences (a topic's vocabulary)."""
    sentences = demo_sentences()
    out = []
    for _ in range(TOPICS):
        start = int(rng.integers(0, max(1, len(sentences) - 12)))
        out.append(" ".join(sentences[start : start + 12]).split())
    return out


def topic_vectors(topics: list[list[str]]) -> np.ndarray:
    """Real MiniLM (int8v3, the default) embeddings of the topic passages (cached; ~15 s on one core)."""
    path = CACHE / f"topics-{_code_key()}.npy"
    if path.exists():
        return np.load(path)
    from ssehub.embed import load_embedder
    from ssehub.settings import Settings

    embedder = load_embedder(Settings(embed_backend="onnx-int8"))
    assert embedder.name == MODEL, embedder.name
    vectors = embedder.encode([" ".join(t[:WORDS_PER_PASSAGE]) for t in topics])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def noisy(base: np.ndarray, rng: np.random.Generator, spread: float = 0.75) -> np.ndarray:
    """Unit vectors around their base rows (cosine ~ 1/sqrt(1 + spread^2))."""
    x = base + rng.standard_normal(base.shape).astype(np.float32) * (spread / np.sqrt(base.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _analysed_words(topics: list[list[str]]) -> dict[str, list[np.ndarray]]:
    """Per analysis language, each topic's words as the keyword index holds them (`ssehub.analyze.analyse` of each
    word once; a punctuation-only word analyses to '')."""
    from ssehub.analyze import analyse, language

    out: dict[str, list[np.ndarray]] = {}
    for lang in dict.fromkeys(language(x) for x in LANGS):
        out[lang] = [np.array([analyse(w, lang) for w in words], dtype=object) for words in topics]
    return out


def _join(words: np.ndarray) -> str:
    return " ".join(w for w in words if w)


def build(size: int, log: Any = print) -> Path:
    """The data folder of a synthetic corpus of `size` passages (built once, then cached).

    Words are drawn with numpy and each distinct word is analysed once (per language), so a million passages load in
    minutes; a sample of every batch is checked against `analyse` of the whole text.
    """
    from ssehub.analyze import analyse, language
    from ssehub.ann import new_index, save_index
    from ssehub.store import Store

    folder = CACHE / f"perf-{size}-{_code_key()}"
    if (folder / "ready.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    topics = topic_passages(np.random.default_rng(0))  # the same topics (and cached vectors) at every size
    raw = [np.array(words, dtype=object) for words in topics]
    analysed = _analysed_words(topics)
    lengths = np.array([len(words) for words in topics])
    rng = np.random.default_rng(size)
    bases = topic_vectors(topics)
    store = Store(folder / "ssehub.db")
    t0 = time.perf_counter()
    index = new_index(bases.shape[1], size)
    for start in range(0, size, BATCH):
        n = min(BATCH, size - start)
        which = rng.integers(0, TOPICS, n)
        vectors = noisy(bases[which], rng)
        picks = (rng.random((n, WORDS_PER_PASSAGE)) * lengths[which][:, None]).astype(np.int64)
        docs, chunks, tags, rows = [], [], [], []
        for j in range(n):
            cid = start + j + 1
            doc_no = (cid - 1) // PASSAGES_PER_DOC
            doc_id = f"d{doc_no}"
            topic, lang = which[j], LANGS[doc_no % len(LANGS)]
            text = " ".join(raw[topic][picks[j]])
            seq = (cid - 1) % PASSAGES_PER_DOC
            title = f"{' '.join(topics[topic][:6])} {doc_no}"
            if seq == 0:
                docs.append({"id": doc_id, "source_id": SOURCES[doc_no % len(SOURCES)], "url": f"https://example.org/{doc_id}",
                             "title": title, "text": text, "lang": lang,
                             "published": f"{2000 + doc_no % 26}-{1 + doc_no % 12:02d}-{1 + doc_no % 28:02d}",
                             "type": TYPES[doc_no % len(TYPES)]})
                tags += [(doc_id, 1 + (doc_no * 7 + k) % 17, 0.5 + 0.1 * k) for k in range(1 + doc_no % 3)]
            forms = analysed[language(lang)][topic]
            rows.append((cid, _join(forms[:6]) + " " + str(doc_no), _join(forms[picks[j]])))
            chunks.append((cid, doc_id, seq, title, text, vectors[j].tobytes(), MODEL))
        for c, r in zip(chunks[:: max(1, n // 50)], rows[:: max(1, n // 50)], strict=True):
            lang = LANGS[((c[0] - 1) // PASSAGES_PER_DOC) % len(LANGS)]
            if r[1:] != (analyse(c[3], lang), analyse(c[4], lang)):
                raise AssertionError(f"chunk {c[0]}: the word-by-word analysis differs from analyse()")
        store.bulk_load_analysed(docs, chunks, tags, rows)
        index.add(np.arange(start + 1, start + n + 1, dtype=np.int64), vectors)
        log(f"  perf-{size}: {start + n} passages loaded ({time.perf_counter() - t0:.0f} s)")
    store.set_meta("model", MODEL)
    store.set_meta("dim", str(bases.shape[1]))
    store.db.execute("PRAGMA optimize")
    store.close()
    save_index(index, folder / "index", MODEL)
    (folder / "ready.json").write_text(json.dumps({"size": size, "build_seconds": time.perf_counter() - t0}))
    return folder


def recall_at_10(folder: Path, queries: int = 100) -> float:
    """Recall@10 of the folder's index against an exact scan of the same vectors, for noisy topic queries."""
    return recalls(folder, queries)[10]


def recalls(folder: Path, queries: int = 100, fetches: tuple[int, ...] = (10, 1000)) -> dict[int, float]:
    """Recall@10 of the folder's index against an exact scan, when the index is asked for k results (the first 10
    kept), per k: 10, and 1000 as search asks (searchapi/search.py's POOL; faiss's HNSW then explores max(efSearch, k))."""
    from ssehub.ann import FaissIndex, load_index
    from ssehub.store import Store

    index, _ = load_index(folder / "index")
    if getattr(index, "kind", "flat") == "flat":
        return dict.fromkeys(fetches, 1.0)
    store = Store(folder / "ssehub.db")
    exact = FaissIndex(index.dim, kind="flat")
    for ids, blobs in store.iter_embeddings(50_000):
        exact.add(np.asarray(ids), np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1))
    store.close()
    rng = np.random.default_rng(3)
    bases = topic_vectors(topic_passages(np.random.default_rng(0)))
    q = noisy(bases[rng.integers(0, len(bases), queries)], rng, spread=1.0)
    truth = exact.search(q, 10)[1]
    out = {}
    for k in fetches:
        found = index.search(q, k)[1][:, :10]
        out[k] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
    return out
