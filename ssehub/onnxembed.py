"""A sentence-transformers model (mean pooling) run by ONNX Runtime, from a graph exported once from its local weights.

The graph (transformer + mean pooling + L2 normalisation, so one call returns the sentence vectors) is exported with
torch (in a child process) the first time a model is used and cached under `cache_dir()` in a file named by a hash of the weights and of
the export settings: a changed model or exporter makes a new file, never a stale one. Exports are written to a
temporary file and renamed, under a file lock, so two processes starting at once export once and never read half a
file. Later loads need neither torch nor transformers: onnxruntime and the `tokenizers` package only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssehub.filelock import held, write_atomically

log = logging.getLogger(__name__)
# Part of the cache key: change it with anything below that changes the exported or quantised graph.
EXPORT_SETTINGS = {"version": 1, "opset": 17, "attention": "eager", "pooling": "mean", "normalize": True}
# Dynamic int8 of the weight MatMuls (the embedding tables stay fp32: a look-up gains nothing from int8 and lost
# precision): weights per output channel, 7-bit (reduce_range) because without VNNI the AVX2 u8*s8 kernels add pairs of
# products in 16 bits, which full-range weights can overflow (onnxruntime's quantisation notes). Activations get one
# scale per run, which a few outlier features (one at ~28 where the median feature peaks at ~2) would set for every
# token: each MatMul's `outliers` input features with the highest calibrated peaks are split off and multiplied in fp32
# (LLM.int8()'s decomposition, ~1% of the FLOPs). On 300 SciFact passages this cut 1 - cosine to fp32 from 0.0065 to
# 0.0018 at the same speed. Calibration: the peaks of the 169 UN SDG target texts (English, `ssehub.sdg`), packaged.
# `encode` runs one text at a time, so an int8 vector depends on its text alone.
# "graph": how the same arithmetic is laid out (2: one outlier split per input shared by its MatMuls, no padding mask);
# a new layout makes a new cached file but, giving bit-identical vectors, keeps INT8_SUFFIX.
INT8_V2 = {"version": 2, "per_channel": True, "reduce_range": True, "weights": "QInt8", "ops": ["MatMul"],
           "outliers": 4, "calibration": "sdg targets en", "graph": 2}
# int8v3: int8v2's weights, split and calibration, run cheaper (MiniLM 36.9 -> 32.4 ms of CPU a passage, one thread):
# each bias is added to the int8 product before the fp32 outlier product, so ONNX Runtime folds it into the int8
# MatMul's output pass instead of a pass of its own; and ONNX Runtime's SkipLayerNormalization fusion is off, because
# its CPU kernel took ~210 us a call at 170 tokens where the Add and LayerNormalization it replaces take ~70. Sums are
# rounded in another order, so int8 buckets move (1 - cosine to int8v2 up to 6e-4; to fp32 unchanged, mean 1.85e-3):
# vectors of their own id. "disabled": ONNX Runtime optimisers left off in every session on the graph.
INT8_V3 = INT8_V2 | {"version": 3, "graph": 3, "bias": "before outliers", "disabled": ["SkipLayerNormFusion"]}
# Each int8 vector id and its graph: an index keeps the id its manifest names (`backend_for`), a new one gets the last.
INT8_LAYOUTS = {"-int8v2": INT8_V2, "-int8v3": INT8_V3}
# The id of the int8 vectors a new index holds: a new one with each change of INT8_SETTINGS that moves them.
INT8_SUFFIX = "-int8v3"
INT8_SETTINGS = INT8_LAYOUTS[INT8_SUFFIX]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def backend_for(index_dir: Path) -> str:
    """The backend `embed_backend = "auto"` picks: the one whose vectors the index in `index_dir` holds, int8 for none.

    int8 became the default once it kept SciFact's nDCG@10 within 0.005 of fp32 (bench/results). An index built
    before holds fp32 vectors (its manifest names the plain model): it keeps them, so its queries are encoded as its
    passages were and `ssehub index` stays incremental; `SSEHUB_EMBED_BACKEND=onnx-int8 ssehub index` converts it.
    An int8 index of an older layout (`INT8_LAYOUTS`) keeps it too: backend `onnx-int8v2`, say.
    """
    from ssehub.ann import MANIFEST_FILE

    try:
        model = str(json.loads((index_dir / MANIFEST_FILE).read_text(encoding="utf-8"))["model"])
    except (OSError, ValueError, KeyError, TypeError):
        return "onnx-int8"
    older = [s for s in INT8_LAYOUTS if s != INT8_SUFFIX and model.endswith(s)]
    if older:
        return f"onnx{older[0]}"
    return "onnx-int8" if "-int8" in model else "onnx"  # the first int8 (`-int8`) is rebuilt in the newest layout


def int8_layout(backend: str) -> str:
    """The int8 vector id (`INT8_LAYOUTS`) a backend name runs: `onnx-int8` the newest, `onnx-int8v2` that one; ""
    for fp32 backends."""
    if backend == "onnx-int8":
        return INT8_SUFFIX
    return backend.removeprefix("onnx") if backend.removeprefix("onnx") in INT8_LAYOUTS else ""


def cache_dir() -> Path:
    """Where exported graphs are kept: $SSEHUB_ONNX_CACHE, else $XDG_CACHE_HOME/ssehub/onnx (~/.cache/ssehub/onnx)."""
    if os.environ.get("SSEHUB_ONNX_CACHE"):
        return Path(os.environ["SSEHUB_ONNX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssehub" / "onnx"


def model_digest(folder: Path) -> str:
    """Hash of the files that define the model's outputs (weights, config, tokenizer)."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "sentence_bert_config.json"):
        path = folder / name
        if path.is_file():
            h.update(name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def mean_pooled(folder: Path) -> bool:
    """True when the folder is a sentence-transformers model this backend reproduces: transformer, mean pooling."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text())
    except (OSError, ValueError, StopIteration, KeyError):
        return False
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    kinds = {m["type"].rsplit(".", 1)[-1] for m in modules}
    return bool(config.get("pooling_mode_mean_tokens")) and not others and kinds <= {"Transformer", "Pooling", "Normalize"}


def cpu_session(path: Path, threads: int, disabled: Sequence[str] = ()) -> Any:
    """An ONNX Runtime CPU session of `threads` intra-op threads, fully optimised but for the `disabled` optimisers,
    whose idle threads do not spin (they would spin on the other core, which the index workers or the server need);
    opened on `optimised(path, disabled)`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(threads, 1)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(optimised(path, disabled)), options, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=list(disabled))


def optimised(path: Path, disabled: Sequence[str] = ()) -> Path:
    """The graph at `path` after ONNX Runtime's portable (extended) optimisations but the `disabled` ones, saved once
    beside it, so that a session skips those passes: `ssehub index` opens four (a MiniLM and an e5 session in each
    worker). CPU-s to open one: MiniLM int8 0.16-0.29 -> 0.09-0.10, e5 int8 0.19-0.26 -> 0.10-0.11; vectors
    bit-identical. Named by the runtime's version (the fused operators are its own) and the optimisers left off;
    `path` itself when the copy cannot be written."""
    import onnxruntime

    off = "".join(f"-no{name}" for name in sorted(disabled))
    target = path.with_name(f"{path.stem}.ort-{onnxruntime.__version__}{off}.onnx")
    if target.is_file():
        return target

    def write(tmp: str) -> None:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = tmp
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                     disabled_optimizers=list(disabled))

    try:
        with held(target.with_suffix(".lock")):
            if not target.is_file():
                write_atomically(target, write)
    except OSError as exc:  # a read-only cache: the plain graph gives the same vectors, a little slower to open
        log.info("ONNX Runtime's optimised copy of %s not saved (%s)", path.name, exc)
        return path
    return target


def run_in_child(module: str, function: str, source: Path, target: Path, what: str) -> None:
    """`module.function(source, target)` in a fresh interpreter (an export: torch's OpenMP threads, once started in a
    process, hang the index workers it forks later); a failure raises RuntimeError with the child's last line."""
    code = f"import sys; from pathlib import Path; from {module} import {function}; {function}(Path(sys.argv[1]), Path(sys.argv[2]))"
    here = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", code, str(source), str(target)], env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"{what} failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")


def _export(folder: Path, target: Path) -> None:
    """Export in a fresh interpreter: torch's OpenMP threads, once started in this process, hang forked workers in e5.

    (The first `ssehub index` of 128+ documents on a machine without the cached graph hung for good that way: its
    embedding workers are forked from this process and run multilingual-e5, whose OpenMP is torch's libgomp.)
    """
    run_in_child("ssehub.onnxembed", "_trace", folder, target, "ONNX export")


def _trace(folder: Path, target: Path) -> None:
    """Trace the model with torch into an ONNX graph that returns unit-length mean-pooled vectors."""
    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA path has Python branches on the mask that a trace would freeze.
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed, p=2, dim=1)

    # Traced with padding in the batch, so the graph keeps the masking path (an all-ones mask may be skipped).
    ids = torch.tensor([[101, 2054, 2003, 1037, 102], [101, 2054, 102, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.no_grad():
        torch.onnx.export(Pooled().eval(), (ids, mask, torch.zeros_like(ids)), str(target), input_names=list(INPUTS),
                          output_names=["embedding"], dynamic_axes=axes | {"embedding": {0: "batch"}},
                          opset_version=EXPORT_SETTINGS["opset"], dynamo=False)


def calibration_texts() -> list[str]:
    """The texts whose activations choose the outlier features: the UN's 169 SDG targets in English (packaged)."""
    from ssehub import sdg

    return list(sdg.targets("en").values())


def _activation_peaks(source: Path, folder: Path, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Largest |activation| of each input feature of each weight MatMul, over the texts (fp32 graph, one text a run)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()
    feeds = ({name: np.asarray([getattr(encoding, attr)], dtype=np.int64)
              for name, attr in zip(INPUTS, ("ids", "attention_mask", "type_ids"), strict=True)}
             for encoding in tokenizer.encode_batch(list(texts)))
    return activation_peaks(source, feeds)


def activation_peaks(source: Path, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Largest |activation| of each input feature of each weight MatMul of the graph at `source`, over the feeds (one
    run each): what `_split_outliers` ranks features by. Any graph (MiniLM's, e5's) and any inputs."""
    import onnx
    import onnxruntime

    model = onnx.load(str(source))
    weights = {i.name for i in model.graph.initializer}
    names = sorted({n.input[0] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights})
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    peaks: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks


def _split_outliers(model: Any, peaks: dict[str, np.ndarray], count: int) -> list[str]:
    """Rewrite each weight MatMul x @ W as (x * mask) @ W' + x[:, top] @ W[top]: the `count` features of x with the
    highest peaks go through a small fp32 MatMul, the rest (W' with those rows zeroed) is left for int8.

    MatMuls reading the same x (query, key and value) share one x * mask and one x[:, top]: their top features are the
    same (ranked by x's peaks), and one shared int8 input is quantised once instead of three times (bit-identical
    vectors; MiniLM int8 1.04x the passages per CPU-second with `_unpadded`). Returns the names of the fp32 MatMuls,
    which the quantiser must leave alone.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes: list[Any] = []
    exact: list[str] = []
    split: dict[str, tuple[str, str]] = {}  # x -> (x * mask, x[:, top])
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights or node.input[0] not in peaks or count <= 0:
            nodes.append(node)
            continue
        x, weight = node.input[0], numpy_helper.to_array(weights[node.input[1]])
        top = np.sort(np.argsort(-peaks[x], kind="stable")[:count]).astype(np.int64)
        p = f"{node.name}/outliers"
        if x not in split:
            mask = np.ones(weight.shape[0], dtype=np.float32)
            mask[top] = 0.0
            graph.initializer.extend([numpy_helper.from_array(mask, f"{p}/mask"), numpy_helper.from_array(top, f"{p}/index")])
            nodes += [helper.make_node("Mul", [x, f"{p}/mask"], [f"{p}/x_rest"], name=f"{p}/Mul"),
                      helper.make_node("Gather", [x, f"{p}/index"], [f"{p}/x_top"], axis=-1, name=f"{p}/Gather")]
            split[x] = (f"{p}/x_rest", f"{p}/x_top")
        x_rest, x_top = split[x]
        rest = weight.copy()
        rest[top] = 0.0
        graph.initializer.extend([numpy_helper.from_array(rest, f"{p}/rest"),
                                  numpy_helper.from_array(np.ascontiguousarray(weight[top]), f"{p}/weight")])
        nodes += [helper.make_node("MatMul", [x_rest, f"{p}/rest"], [f"{p}/y_rest"], name=node.name),
                  helper.make_node("MatMul", [x_top, f"{p}/weight"], [f"{p}/y_top"], name=f"{p}/MatMul"),
                  helper.make_node("Add", [f"{p}/y_rest", f"{p}/y_top"], list(node.output), name=f"{p}/Add")]
        exact.append(f"{p}/MatMul")
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]  # the original weights, now split
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return exact


def _unpadded(model: Any, mask_input: str = "attention_mask") -> int:
    """Drop the attention mask's Add before each Softmax, and the nodes that only fed it: a graph for one unpadded text
    per run (what `OnnxEmbedder.encode` and the e5 engine feed it), where that Add adds zeros, so vectors stay
    bit-identical. A padded batch would then attend to its padding: the int8 graphs are never fed one.

    The mask's Add is the one whose other input comes from `mask_input` (and from shapes), not from any token's values.
    Returns how many were dropped (0 for e5's graph, which has no mask input).
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}

    def sources(name: str) -> set[str]:
        """The graph inputs a tensor's values derive from (a Shape's output carries none of its input's values)."""
        seen, stack, found = set(), [name], set()
        while stack:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            node = producer.get(tensor)
            if node is None:
                found.add(tensor)
            elif node.op_type != "Shape":
                stack.extend(node.input)
        return found & {i.name for i in graph.input}

    bypass: dict[str, str] = {}
    for node in graph.node:
        add = producer.get(node.input[0]) if node.op_type == "Softmax" else None
        if add is not None and add.op_type == "Add":
            masks = [k for k, name in enumerate(add.input) if sources(name) == {mask_input}]
            if len(masks) == 1:
                bypass[add.output[0]] = add.input[1 - masks[0]]
    for node in graph.node:
        for k, name in enumerate(node.input):
            node.input[k] = bypass.get(name, name)
    live, kept = {out.name for out in graph.output}, []
    for node in reversed(graph.node):  # topological order: a node's consumers come after it
        if any(out in live for out in node.output):
            kept.append(node)
            live.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    return len(bypass)


def _bias_first(model: Any) -> int:
    """Rewrite each split MatMul's (y_rest + y_top) + bias as (y_rest + bias) + y_top: ONNX Runtime then folds the bias
    into the int8 MatMul that makes y_rest (its output pass scales the products anyway), so one pass over the output
    goes. Returns how many were rewritten."""
    graph = model.graph
    vectors = {i.name for i in graph.initializer if len(i.dims) == 1}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    count = 0
    for node in graph.node:
        after = readers.get(node.output[0], []) if node.name.endswith("/outliers/Add") else []
        if len(after) != 1 or after[0].op_type != "Add":
            continue
        bias = [name for name in after[0].input if name != node.output[0]]
        if len(bias) == 1 and bias[0] in vectors:
            y_rest, y_top = node.input
            node.input[:] = [y_rest, bias[0]]  # still before its reader: the order stays topological
            node.output[0] = f"{node.name}/with_bias"
            after[0].input[:] = [node.output[0], y_top]
            count += 1
    return count


def _quantise(source: Path, target: Path, folder: Path, settings: dict[str, Any]) -> None:
    """The int8 graph of `settings` from the fp32 export: outlier features split off, then dynamic quantisation."""
    quantise_split(source, target, _activation_peaks(source, folder, calibration_texts()), settings)


def quantise_split(source: Path, target: Path, peaks: dict[str, np.ndarray], settings: dict[str, Any]) -> None:
    """Split each weight MatMul's `settings["outliers"]` features of highest peak off into fp32 (its bias added before
    them if `bias` says so), then quantise the rest dynamically (weights per channel if `per_channel`, 7-bit if
    `reduce_range`): int8v2/v3, for MiniLM and e5 alike. The graph is for one unpadded text per run (`_unpadded`)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    _unpadded(model)
    exact = _split_outliers(model, peaks, int(settings["outliers"]))
    if settings.get("bias") == "before outliers":
        _bias_first(model)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        split = Path(tmp) / "split.onnx"
        onnx.save(model, str(split))
        logging.disable(logging.WARNING)  # the quantiser logs a line per tensor on the root logger, and a pre-processing hint
        try:
            quantize_dynamic(str(split), str(target), per_channel=bool(settings["per_channel"]),
                             reduce_range=bool(settings["reduce_range"]), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(settings["ops"]), nodes_to_exclude=exact)
        finally:
            logging.disable(logging.NOTSET)


def layout_settings(layout: str) -> dict[str, Any]:
    """The int8 settings of a vector id suffix (`INT8_LAYOUTS`); INT8_SETTINGS for the newest."""
    return INT8_SETTINGS if layout == INT8_SUFFIX else INT8_LAYOUTS[layout]


def graph_path(folder: Path, name: str, int8: bool = False, layout: str = "") -> Path:
    """The cached graph of a model folder, exported (and quantised, in `layout`, the newest if not given) first if
    missing. Torch is imported only then."""
    int8_settings = layout_settings(layout or INT8_SUFFIX)
    settings = EXPORT_SETTINGS | ({"int8": int8_settings, "calibration": calibration_texts()} if int8 else {})
    key = hashlib.sha256(json.dumps([model_digest(folder), settings], sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}-{'int8' if int8 else 'fp32'}-{key}.onnx"
    if target.is_file():
        return target
    with held(target.with_suffix(".lock")):
        if target.is_file():  # another process exported it while this one waited
            return target
        t0 = time.perf_counter()
        if int8:
            source = graph_path(folder, name, int8=False)
            write_atomically(target, lambda tmp: _quantise(source, Path(tmp), folder, int8_settings))
        else:
            write_atomically(target, lambda tmp: _export(folder, Path(tmp)))
        log.info("exported %s to %s in %.1f s (once; cached)", name, target, time.perf_counter() - t0)
    return target


class SessionOwner:
    """An embedder's ONNX Runtime session over the graph at `path` with `threads` intra-op threads (MiniLM's and e5's)."""

    path: Path
    threads: int
    session: Any = None
    disabled: tuple[str, ...] = ()  # ONNX Runtime optimisers the graph's layout runs without (INT8_V3)

    def set_threads(self, threads: int) -> None:
        """Open a new session with this thread count (a forked worker must: pool threads do not survive a fork)."""
        self.threads = threads
        self.session = cpu_session(self.path, threads, self.disabled)


class OnnxEmbedder(SessionOwner):
    """The Embedder interface over an exported graph: same tokens, pooling and normalisation as sentence-transformers."""

    def __init__(self, folder: Path, name: str, int8: bool = False, threads: int = 1, layout: str = "") -> None:
        """Args:
            layout: the int8 vector id suffix to make (`INT8_LAYOUTS`; the newest if not given): an index keeps its own.
        """
        # The tokenizer's own thread pool would compete with the workers and cannot survive their fork.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer

        layout = (layout or INT8_SUFFIX) if int8 else ""
        self.folder, self.int8, self.threads = folder, int8, threads
        self.backend = ("onnx-int8" if layout == INT8_SUFFIX else f"onnx{layout}") if int8 else "onnx"
        # fp32 vectors match torch's to ~1e-7 cosine (tests/test_embed_backend.py), so they share the model's id and its
        # stored vectors; int8 vectors differ by ~2e-3 and get an id of their own, so the two never mix in one index.
        self.name = f"{name}{layout}"
        self.approximates = name  # the fp32 vectors these stand for: the tagger reads that model's shipped UN-text vectors
        self.path = graph_path(folder, name, int8, layout)
        self.disabled = tuple(layout_settings(layout).get("disabled", ())) if int8 else ()
        bert = json.loads((folder / "sentence_bert_config.json").read_text()) if (folder / "sentence_bert_config.json").is_file() else {}
        self.max_tokens = int(bert.get("max_seq_length", 256))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()  # one sequence per run (`encode`)
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self.set_threads(threads)
        self.dim = int(self.session.get_outputs()[0].shape[1] or self.encode(["dimension"]).shape[1])

    def encode(self, texts: Sequence[str], kind: str = "passage", batch_size: int = 32) -> np.ndarray:
        """Embed texts one at a time, unpadded; rows in the order given (`batch_size` is ignored).

        One sequence per run costs less than length-sorted batches (CPU time per passage on the 349 bench passages, one
        thread: 16 per batch 1.17x, 4 per batch 1.04x), and a vector cannot depend on its batch-mates: int8 scales its
        activations per run, so batched int8 vectors moved by up to 0.02 a component with the texts beside them.
        """
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        rows = []
        for encoding in self._tokenizer.encode_batch([str(t) for t in texts]):
            feed = {name: np.asarray([getattr(encoding, attr)], dtype=np.int64)
                    for name, attr in zip(INPUTS, ("ids", "attention_mask", "type_ids"), strict=True)}
            rows.append(self.session.run(None, feed)[0][0])
        return np.stack(rows).astype(np.float32, copy=False)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece counts without special tokens, as the model will see them (before truncation)."""
        return [len(e.ids) for e in self._counter.encode_batch([str(t) for t in texts], add_special_tokens=False)]
