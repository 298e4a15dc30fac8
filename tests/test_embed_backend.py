"""The ONNX Runtime embedding backend: torch's vectors, a cached export safe across processes, its own id when int8."""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import pipeline
from ssehub import onnxembed
from ssehub.ann import read_manifest
from ssehub.embed import SentenceTransformerEmbedder, embedder_backend, load_embedder
from ssehub.errors import ConfigError
from ssehub.models import Document
from ssehub.settings import Settings
from ssehub.store import Store
from ssehub.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]
# Real texts of the kinds the model sees: passages with a title, a long one past the 256-token limit, a short query,
# accents, and an empty string.
TEXTS = [
    ("Women's cooperatives in rural Burkina Faso. Shea butter cooperatives give women income, credit and a voice in "
     "village decisions; members pool their harvest and sell it at a fair price to cosmetics firms in Europe."),
    "Coopératives d'habitat : les habitants gèrent ensemble leur immeuble et en partagent les charges.",
    "fair trade cocoa",
    "Participatory budgeting lets residents decide how part of a municipal budget is spent. " * 30,
    ("The social and solidarity economy employs about 6.3% of the workforce of the European Union, in cooperatives, "
     "mutual societies, associations and foundations."),
    "",
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def onnx_embedder() -> onnxembed.OnnxEmbedder:
    embedder = load_embedder(Settings(embed_backend="onnx"))
    assert isinstance(embedder, onnxembed.OnnxEmbedder)
    return embedder


@pytest.fixture(scope="module")
def int8_embedder() -> onnxembed.OnnxEmbedder:
    embedder = load_embedder(Settings(embed_backend="onnx-int8"))
    assert isinstance(embedder, onnxembed.OnnxEmbedder)
    return embedder


def test_fp32_onnx_gives_the_torch_vectors_and_shares_their_id(torch_embedder: SentenceTransformerEmbedder,
                                                                 onnx_embedder: onnxembed.OnnxEmbedder) -> None:
    want = torch_embedder.encode(TEXTS, batch_size=4)
    got = onnx_embedder.encode(TEXTS, batch_size=4)
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(got * want, axis=1)) >= 0.9999
    # Alone (a query) or in any batch, a text gets the same vector: padding does not leak into the mean.
    np.testing.assert_allclose(onnx_embedder.encode(TEXTS[2:3], kind="query"), got[2:3], atol=1e-5)
    np.testing.assert_allclose(onnx_embedder.encode(TEXTS[::-1], batch_size=32)[::-1], got, atol=1e-5)
    assert onnx_embedder.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)  # the chunker cuts where it did
    assert (onnx_embedder.name, onnx_embedder.dim, onnx_embedder.max_tokens) == (
        torch_embedder.name, torch_embedder.dim, torch_embedder.max_tokens)
    assert embedder_backend(onnx_embedder) == "onnx" and embedder_backend(torch_embedder) == "torch"


def test_int8_is_close_but_a_model_of_its_own(torch_embedder: SentenceTransformerEmbedder,
                                              int8_embedder: onnxembed.OnnxEmbedder) -> None:
    got, want = int8_embedder.encode(TEXTS), torch_embedder.encode(TEXTS)
    cosines = np.sum(got * want, axis=1)
    # Near (plain dynamic int8 reached only ~0.985 on passages: the outlier split), yet not the same vectors.
    assert np.min(cosines) > 0.99 and np.max(cosines) < 1 - 1e-5
    # int8 scales activations per run and runs one text at a time: a vector does not depend on its batch-mates.
    np.testing.assert_array_equal(int8_embedder.encode(TEXTS[::-1], batch_size=32)[::-1], got)
    np.testing.assert_array_equal(int8_embedder.encode(TEXTS[3:4]), got[3:4])
    assert int8_embedder.name == f"{torch_embedder.name}{onnxembed.INT8_SUFFIX}" and embedder_backend(int8_embedder) == "onnx-int8"
    import onnx

    nodes = onnx.load(str(int8_embedder.path), load_external_data=False).graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("MatMulInteger") == 36  # every weight MatMul of the six layers runs in int8
    # One split of x per layer's query/key/value (4 per layer, not 6), and no padding mask: one unpadded text a run.
    assert sum(n.name.endswith("/outliers/Mul") for n in nodes) == 24
    made_by = {out: n.op_type for n in nodes for out in n.output}
    assert ops.count("Softmax") == 6 and all(made_by[n.input[0]] != "Add" for n in nodes if n.op_type == "Softmax")
    assert int8_embedder.path.stat().st_size < onnxembed.graph_path(int8_embedder.folder, torch_embedder.name).stat().st_size * 0.7


def _one_matmul(path: Path, weight: np.ndarray) -> None:
    """A graph computing x @ weight, for the outlier split's own tests."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="layer/dense/MatMul")], "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, weight.shape[1]])],
        [numpy_helper.from_array(weight.astype(np.float32), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_outlier_features_split_off_keep_the_product_and_cut_the_int8_error(tmp_path: Path) -> None:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(7)
    weight = rng.normal(0, 0.05, (64, 32))
    x = rng.normal(0, 1, (1, 20, 64)).astype(np.float32)
    x[..., 5] *= 30  # one feature far above the others, as in MiniLM's LayerNorm and GELU outputs
    _one_matmul(tmp_path / "fp32.onnx", weight)
    model = onnx.load(str(tmp_path / "fp32.onnx"))
    peaks = {"x": np.abs(x[0]).max(axis=0)}
    exact = onnxembed._split_outliers(model, peaks, 2)
    assert exact == ["layer/dense/MatMul/outliers/MatMul"]
    index = next(i for i in model.graph.initializer if i.name.endswith("/index"))
    chosen = onnx.numpy_helper.to_array(index).tolist()
    assert len(chosen) == 2 and 5 in chosen  # the outlier is among the two features of highest peak
    onnx.save(model, str(tmp_path / "split.onnx"))

    def run(name: str) -> np.ndarray:
        session = onnxruntime.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    want = x @ weight.astype(np.float32)
    np.testing.assert_allclose(run("split.onnx"), want, rtol=1e-5, atol=1e-4)  # the rewrite alone changes nothing
    for source, target, exclude in (("fp32.onnx", "plain.onnx", []), ("split.onnx", "int8.onnx", exact)):
        quantize_dynamic(str(tmp_path / source), str(tmp_path / target), per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude)
    plain, split = (float(np.sqrt(np.mean((run(n) - want) ** 2))) for n in ("plain.onnx", "int8.onnx"))
    assert split < plain / 4  # the other features' step is set by their own range, not by the outlier's


def _attention(path: Path, rng: np.random.Generator) -> None:
    """One masked self-attention head as the export lays it out: query, key and value MatMuls reading one x, and the
    mask's Add ((1 - mask) * -10000, from the attention_mask input) before the Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(rng.normal(0, 0.2, (16, 16)).astype(np.float32), n) for n in ("wq", "wk", "wv")]
    consts = [numpy_helper.from_array(np.asarray(v, dtype=np.float32), n) for n, v in (("one", 1.0), ("big", -10000.0))]
    nodes = [helper.make_node("MatMul", ["x", f"w{n}"], [n], name=f"layer/{n}/MatMul") for n in "qkv"]
    nodes += [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
              helper.make_node("MatMul", ["q", "kt"], ["scores"]),
              helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
              helper.make_node("Sub", ["one", "m"], ["m1"]), helper.make_node("Mul", ["m1", "big"], ["m2"]),
              helper.make_node("Unsqueeze", ["m2", "axis"], ["m3"]), helper.make_node("Add", ["scores", "m3"], ["masked"]),
              helper.make_node("Softmax", ["masked"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["y"])]
    graph = helper.make_graph(nodes, "attention",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 16]),
                               helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, 16])],
                              [*weights, *consts, numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_int8_layout_shares_the_split_and_drops_the_padding_mask_without_changing_an_unpadded_run(tmp_path: Path) -> None:
    import onnx
    import onnxruntime

    rng = np.random.default_rng(3)
    _attention(tmp_path / "fp32.onnx", rng)
    x = rng.normal(0, 1, (1, 9, 16)).astype(np.float32)
    x[..., 2] *= 20

    def run(model: onnx.ModelProto, mask: np.ndarray) -> np.ndarray:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x, "attention_mask": mask})[0]

    model = onnx.load(str(tmp_path / "fp32.onnx"))
    ones, padded = np.ones((1, 9), dtype=np.int64), np.asarray([[1] * 6 + [0] * 3])
    want = run(model, ones)
    assert onnxembed._unpadded(model) == 1
    assert not {"Add", "Cast", "Sub", "Unsqueeze"} & {n.op_type for n in model.graph.node}  # the mask's nodes are gone
    np.testing.assert_array_equal(run(model, ones), want)  # it added zeros: one unpadded text gets the same bits
    assert not np.allclose(run(model, padded), run(onnx.load(str(tmp_path / "fp32.onnx")), padded))  # why never padded
    exact = onnxembed._split_outliers(model, {"x": np.abs(x[0]).max(axis=0)}, 2)
    assert len(exact) == 3
    kinds = [n.op_type for n in model.graph.node]
    assert kinds.count("Mul") == 1 and kinds.count("Gather") == 1  # q, k and v read one split of x
    np.testing.assert_allclose(run(model, ones), want, rtol=1e-5, atol=1e-5)


def test_int8_graph_is_cached_under_its_settings_and_calibration(int8_embedder: onnxembed.OnnxEmbedder,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path, name = int8_embedder.path, int8_embedder.name.removesuffix(onnxembed.INT8_SUFFIX)
    monkeypatch.setattr(onnxembed, "_quantise", lambda *a: pytest.fail("quantised again"))
    assert onnxembed.graph_path(int8_embedder.folder, name, int8=True) == path
    texts = onnxembed.calibration_texts()
    monkeypatch.setattr(onnxembed, "calibration_texts", lambda: texts[:-1])
    with pytest.raises(pytest.fail.Exception, match="quantised again"):  # other calibration texts: another graph
        onnxembed.graph_path(int8_embedder.folder, name, int8=True)
    monkeypatch.setattr(onnxembed, "calibration_texts", lambda: texts)
    monkeypatch.setattr(onnxembed, "INT8_SETTINGS", onnxembed.INT8_SETTINGS | {"outliers": 8})
    with pytest.raises(pytest.fail.Exception, match="quantised again"):
        onnxembed.graph_path(int8_embedder.folder, name, int8=True)


def test_the_export_is_cached_under_a_key_of_weights_and_settings(onnx_embedder: onnxembed.OnnxEmbedder,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = onnx_embedder.path
    assert path.parent == onnxembed.cache_dir() and path.is_file()
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(onnxembed, "_export", lambda *a: pytest.fail("exported again"))
    assert onnxembed.graph_path(onnx_embedder.folder, onnx_embedder.name) == path and path.stat().st_mtime_ns == stamp
    monkeypatch.setattr(onnxembed, "EXPORT_SETTINGS", onnxembed.EXPORT_SETTINGS | {"opset": 18})
    with pytest.raises(pytest.fail.Exception, match="exported again"):  # other settings: another file, a new export
        onnxembed.graph_path(onnx_embedder.folder, onnx_embedder.name)


def test_a_fresh_export_leaves_torch_out_of_this_process(tmp_path: Path, onnx_embedder: onnxembed.OnnxEmbedder) -> None:
    # Torch's OpenMP threads, started by an export in the indexing process, hung its forked workers in e5 for good.
    code = ("import sys; from pathlib import Path; from ssehub import onnxembed\n"
            "path = onnxembed.graph_path(Path(sys.argv[1]), 'all-MiniLM-L6-v2')\n"
            "print(path, 'torch' in sys.modules)")
    env = {**os.environ, "SSEHUB_ONNX_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code, str(onnx_embedder.folder)], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300).stdout.split()
    assert out[1] == "False" and Path(out[0]).parent == tmp_path / "cache"
    assert Path(out[0]).read_bytes() == onnx_embedder.path.read_bytes()  # the same graph as an export in process gave


def test_two_processes_exporting_at_once_write_one_whole_file(tmp_path: Path) -> None:
    # The export is replaced by a slow writer (the real one is exercised above): what is under test is the cache's
    # lock and rename, which must leave one complete file and one export when two processes start together.
    code = ("import sys, time; from pathlib import Path; from ssehub import onnxembed\n"
            "def slow(folder, target):\n"
            "    with open(target, 'wb') as f:\n"
            "        for _ in range(10):\n"
            "            f.write(b'x' * 100_000); f.flush(); time.sleep(0.05)\n"
            "    print('EXPORTED', flush=True)\n"
            "onnxembed._export = slow\n"
            "path = onnxembed.graph_path(Path(sys.argv[1]), 'model')\n"
            "print('PATH', path, path.stat().st_size)")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    env = {**os.environ, "SSEHUB_ONNX_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(model)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    paths = {line.split(" ", 1)[1] for out in outs for line in out.splitlines() if line.startswith("PATH ")}
    assert len(paths) == 1 and paths.pop().endswith(" 1000000")  # both see the same, whole file
    assert sum(out.count("EXPORTED") for out in outs) == 1  # the second waited for the first's file
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".lock", ".onnx"]  # no temporary file left


def test_sessions_open_on_a_pre_optimised_copy_with_the_same_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     int8_embedder: onnxembed.OnnxEmbedder) -> None:
    import onnxruntime

    graph = tmp_path / "cache" / "minilm.onnx"
    graph.parent.mkdir()
    graph.write_bytes(int8_embedder.path.read_bytes())
    copy = onnxembed.optimised(graph)
    assert copy.name == f"minilm.ort-{onnxruntime.__version__}.onnx" and copy.is_file()  # a new runtime: a new copy
    made = copy.stat().st_mtime_ns
    assert onnxembed.optimised(graph) == copy and copy.stat().st_mtime_ns == made  # made once, then reused
    plain = copy.with_name("plain.onnx")
    plain.write_bytes(graph.read_bytes())  # no copy beside it yet: opened below on the graph as exported
    plain_options = onnxruntime.SessionOptions()
    plain_options.intra_op_num_threads = 1
    plain_session = onnxruntime.InferenceSession(str(plain), plain_options, providers=["CPUExecutionProvider"])
    ids = np.asarray([[101, 2308, 1005, 1055, 26435, 1999, 3541, 102]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    np.testing.assert_array_equal(onnxembed.cpu_session(graph, 1).run(None, feed)[0], plain_session.run(None, feed)[0])
    copy.unlink()

    def read_only(target: Path, write: object) -> None:
        raise PermissionError(13, "Read-only file system", str(target))

    monkeypatch.setattr(onnxembed, "write_atomically", read_only)
    assert onnxembed.optimised(graph) == graph and not copy.exists()  # a cache it cannot write: the graph as exported


def test_a_failing_onnx_backend_falls_back_to_torch_with_a_log_line(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("export failed: no space left on device")

    monkeypatch.setattr(onnxembed, "OnnxEmbedder", broken)
    with caplog.at_level(logging.WARNING, logger="ssehub.embed"):
        embedder = load_embedder(Settings(embed_backend="onnx"))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert "embedding with torch: the ONNX backend failed (RuntimeError: export failed" in caplog.text


def test_an_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="embed_backend 'tensorrt' is not one of auto, onnx, onnx-int8, onnx-int8v2, torch"):
        load_embedder(Settings(embed_backend="tensorrt"))


def test_index_keeps_vectors_across_fp32_backends_and_reembeds_for_int8(
        tmp_path: Path, torch_embedder: SentenceTransformerEmbedder, onnx_embedder: onnxembed.OnnxEmbedder,
        int8_embedder: onnxembed.OnnxEmbedder) -> None:
    settings = Settings(data_dir=tmp_path, index_workers=0)
    store = Store(settings.store_path)
    for i, text in enumerate(TEXTS[:5]):
        store.upsert_document(Document(id=f"d{i}", source_id="test", title=f"Document {i}", text=text))
    store.close()
    tagger = Tagger(onnx_embedder)  # shipped UN-text vectors of the packaged model
    int8_tagger = copy.copy(tagger)  # the same tagger reading int8 vectors (its own UN-text vectors cost ~1 min to embed)
    int8_tagger.embedder = int8_embedder

    def run(embedder: object, tagger: Tagger) -> tuple[dict, set[str]]:
        report = pipeline.index(settings, embedder=embedder, tagger=tagger)  # type: ignore[arg-type]
        store = Store(settings.store_path)
        models = {r[0] for r in store.db.execute("SELECT model FROM chunks")}
        store.close()
        return report, models

    first, models = run(onnx_embedder, tagger)
    unique = first["embedded"]  # the long text repeats itself: two of its chunks are one text, embedded once
    assert 0 < unique < first["chunks"] and first["backend"] == "onnx" and models == {"all-MiniLM-L6-v2"}
    store = Store(settings.store_path)
    store.upsert_document(Document(id="d0", source_id="test", title="Document 0", text=TEXTS[0] + " Updated."))
    store.close()
    same, _ = run(torch_embedder, tagger)  # torch reads the vectors ONNX stored: only the changed document is embedded
    assert not same["rebuild"] and same["documents"] == 1 and same["embedded"] == 1
    switched, models = run(int8_embedder, int8_tagger)
    int8_id = f"all-MiniLM-L6-v2{onnxembed.INT8_SUFFIX}"
    assert switched["rebuild"] and switched["embedded"] == unique and models == {int8_id}
    assert read_manifest(settings.index_dir)["model"] == int8_id  # search refuses a query from another id
    back, models = run(onnx_embedder, tagger)
    assert back["rebuild"] and back["embedded"] == unique and models == {"all-MiniLM-L6-v2"}


def test_auto_keeps_an_existing_index_in_its_vectors_and_starts_new_ones_in_int8(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_embedder: onnxembed.OnnxEmbedder,
        int8_embedder: onnxembed.OnnxEmbedder, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SSEHUB_EMBED_BACKEND", raising=False)
    settings = Settings(data_dir=tmp_path, index_workers=0)
    assert settings.embed_backend == "auto" and onnxembed.backend_for(settings.index_dir) == "onnx-int8"
    store = Store(settings.store_path)
    for i, text in enumerate(TEXTS[:3]):
        store.upsert_document(Document(id=f"d{i}", source_id="test", title=f"Document {i}", text=text))
    store.close()
    with caplog.at_level(logging.WARNING, logger="ssehub.tagger"):
        int8_tagger = Tagger(int8_embedder)
    # int8 vectors are tagged against the packaged model's shipped UN-text vectors and fitted weights: nothing to
    # embed, no "uncalibrated" warning
    np.testing.assert_array_equal(int8_tagger.proto_vecs, Tagger(onnx_embedder).proto_vecs)
    assert "uncalibrated" not in caplog.text
    # An index built before int8 became the default: fp32 vectors, which auto keeps (queries as its passages were).
    pipeline.index(settings.model_copy(update={"embed_backend": "onnx"}), embedder=onnx_embedder, tagger=Tagger(onnx_embedder))
    assert onnxembed.backend_for(settings.index_dir) == "onnx"
    assert load_embedder(settings).name == onnx_embedder.name
    again = pipeline.index(settings, tagger=Tagger(onnx_embedder))  # auto: incremental, nothing re-embedded
    assert not again["rebuild"] and again["embedded"] == 0 and again["backend"] == "onnx"
    converted = pipeline.index(settings.model_copy(update={"embed_backend": "onnx-int8"}), tagger=int8_tagger)
    assert converted["rebuild"] and converted["backend"] == "onnx-int8"
    assert onnxembed.backend_for(settings.index_dir) == "onnx-int8" and load_embedder(settings).name == int8_embedder.name


def test_an_int8v2_index_keeps_its_layout_and_a_new_one_runs_v3_without_skip_layer_norm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, int8_embedder: onnxembed.OnnxEmbedder) -> None:
    import onnx

    monkeypatch.delenv("SSEHUB_EMBED_BACKEND", raising=False)
    settings = Settings(data_dir=tmp_path, index_workers=0)
    v2 = load_embedder(settings.model_copy(update={"embed_backend": "onnx-int8v2"}))
    assert isinstance(v2, onnxembed.OnnxEmbedder) and v2.name == "all-MiniLM-L6-v2-int8v2" and v2.path != int8_embedder.path
    assert (int8_embedder.name, int8_embedder.disabled, v2.disabled) == ("all-MiniLM-L6-v2-int8v3", ("SkipLayerNormFusion",), ())

    def fused(embedder: onnxembed.OnnxEmbedder) -> int:
        nodes = onnx.load(str(onnxembed.optimised(embedder.path, embedder.disabled)), load_external_data=False).graph.node
        return sum(n.op_type == "SkipLayerNormalization" for n in nodes)

    assert fused(v2) >= 6 and fused(int8_embedder) == 0  # v3's sessions keep Add + LayerNormalization (faster here)
    got, old = int8_embedder.encode(TEXTS), v2.encode(TEXTS)
    assert not np.array_equal(got, old) and np.min(np.sum(got * old, axis=1)) > 0.999  # near, yet other vectors
    store = Store(settings.store_path)
    for i, text in enumerate(TEXTS[:3]):
        store.upsert_document(Document(id=f"d{i}", source_id="test", title=f"Document {i}", text=text))
    store.close()
    tagger = Tagger(int8_embedder)
    built = pipeline.index(settings.model_copy(update={"embed_backend": "onnx-int8v2"}), tagger=tagger)
    assert built["backend"] == "onnx-int8v2" and read_manifest(settings.index_dir)["model"] == v2.name
    # auto: an index built before v3 keeps int8v2, for its queries and its next runs (nothing re-embedded)
    assert onnxembed.backend_for(settings.index_dir) == "onnx-int8v2" and load_embedder(settings).name == v2.name
    again = pipeline.index(settings, tagger=tagger)
    assert not again["rebuild"] and again["embedded"] == 0 and again["backend"] == "onnx-int8v2"
    converted = pipeline.index(settings.model_copy(update={"embed_backend": "onnx-int8"}), tagger=tagger)
    assert converted["rebuild"] and converted["embedded"] == built["embedded"] and converted["backend"] == "onnx-int8"
    assert onnxembed.backend_for(settings.index_dir) == "onnx-int8" and load_embedder(settings).name == int8_embedder.name


def test_the_bias_added_before_the_outliers_keeps_the_sum_and_is_folded_into_the_int8_matmul(tmp_path: Path) -> None:
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(11)
    weight, bias = rng.normal(0, 0.05, (64, 32)).astype(np.float32), rng.normal(0, 1, 32).astype(np.float32)
    x = rng.normal(0, 1, (1, 20, 64)).astype(np.float32)
    x[..., 5] *= 30
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="layer/dense/MatMul"),
         helper.make_node("Add", ["b", "y"], ["z"], name="layer/dense/Add")], "biased",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, None, 32])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    want = x @ weight + bias

    def adds(bias_first: bool) -> tuple[int, np.ndarray]:
        """Adds left once ONNX Runtime has optimised the int8 graph, and its output."""
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        exact = onnxembed._split_outliers(model, {"x": np.abs(x[0]).max(axis=0)}, 2)
        if bias_first:
            assert onnxembed._bias_first(model) == 1
            split = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            np.testing.assert_allclose(split.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-4)  # the same sum
        onnx.save(model, str(tmp_path / "split.onnx"))
        quantize_dynamic(str(tmp_path / "split.onnx"), str(tmp_path / "int8.onnx"), per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_exclude=exact)
        optimised = onnxembed.optimised(tmp_path / "int8.onnx")
        nodes = onnx.load(str(optimised)).graph.node
        out = onnxruntime.InferenceSession(str(optimised), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        optimised.unlink()
        return sum(n.op_type == "Add" for n in nodes), out

    (before, plain), (after, folded) = adds(False), adds(True)
    assert (before, after) == (2, 1)  # the bias rides the int8 MatMul's output pass
    assert np.sqrt(np.mean((folded - want) ** 2)) < 2 * np.sqrt(np.mean((plain - want) ** 2)) + 1e-6
