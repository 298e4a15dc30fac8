"""Where one search's time goes, in process: hybrid searches over a synthetic corpus with the in-memory catalog and
without it (every look-up through SQLite, as before it), and a cProfile split of the catalog run by stage.

cProfile sees one thread, so the profiled run computes the semantic half of each hybrid search in the request's
thread (as the server does when its helpers are busy): the stages then add up to one search's CPU work, including the
query embedding and the vector search, which otherwise run beside the keyword half.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import threading
import time
from typing import Any

from bench import perf_corpus
from bench.perf_search import queries

# Stage -> (file suffix, function names) whose cumulative time is the stage's (names of the array path and the older
# dict path: a profile of either code reads the same).
STAGES = {
    "keyword: FTS5 bm25 top chunks": ("ssehub/store.py", ("keyword_chunks",)),
    "keyword: in-memory bm25 top chunks": ("searchapi/keyword.py", ("top", "top_arrays")),
    "query embedding": ("ssehub/onnxembed.py", ("encode",)),
    "query embedding (torch)": ("ssehub/embed.py", ("encode",)),
    "vector index search": ("ssehub/ann.py", ("search",)),
    "typo corrections": ("searchapi/typo.py", ("corrections",)),
    "query operators (constraint)": ("searchapi/constraint.py", ("constraint_of",)),
    "candidates: owners + filters": ("searchapi/catalog.py", ("best", "best_arrays")),
    "facets": ("searchapi/catalog.py", ("facets",)),
    "hits: fields, snippets, locations": ("searchapi/search.py", ("_hits",)),
    "  of which snippets": ("searchapi/snippet.py", ("snippet",)),
    "data version checks": ("ssehub/store.py", ("data_version",)),
}


COMPARE_MAX = 200_000  # above, the SQLite and FTS5 comparisons take minutes a query set: the engine's figures only
# (searchapi/keyword.py's "keyword: in-memory bm25" below is where the corpus size shows)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _timed(searcher: Any, texts: list[str], mode: str) -> dict[str, float]:
    out = []
    for q in texts:
        t0 = time.perf_counter()
        searcher.search(q, mode=mode)
        out.append(time.perf_counter() - t0)
    out.sort()
    return {"p50_ms": round(1000 * statistics.median(out), 1), "p95_ms": round(1000 * out[int(0.95 * (len(out) - 1))], 1)}


def run(size: int, count: int = 30, log: Any = print) -> dict[str, Any]:
    """Cold hybrid latency with and without the catalog, the catalog's build time, and the per-stage profile."""
    import searchapi.search as search_module
    from searchapi.search import Searcher
    from ssehub.embed import load_embedder
    from ssehub.settings import Settings
    from ssehub.store import Store

    folder = perf_corpus.build(size, log=log)
    store = Store(folder / "ssehub.db")
    embedder = load_embedder(Settings(data_dir=folder))
    texts = queries(1)[:count]
    out: dict[str, Any] = {"size": size, "queries": len(texts)}
    compare = size <= COMPARE_MAX
    if compare:
        slow = Searcher(store, embedder, folder / "index")
        slow.catalog.get = lambda: None  # type: ignore[method-assign]  # every look-up through SQLite
        slow.keyword.get = lambda: None  # type: ignore[method-assign]  # and keyword pools from FTS5
        slow.search("warm up", mode="hybrid")
        out["sqlite_hybrid"] = _timed(slow, texts, "hybrid")
    fast = Searcher(store, embedder, folder / "index")
    t0 = time.perf_counter()
    fast.catalog.get()
    out["catalog_build_s"] = round(time.perf_counter() - t0, 2)
    if compare:
        fts = Searcher(store, embedder, folder / "index")  # the catalog, keyword pools from FTS5 (before issue 7's engine)
        fts.catalog = fast.catalog
        fts.keyword.get = lambda: None  # type: ignore[method-assign]
        fts.search("warm up", mode="hybrid")
        out["fts5_keyword_hybrid"] = _timed(fts, texts, "hybrid")
    rss = _rss_mb()
    t0 = time.perf_counter()
    engine = fast.keyword.get()
    out["keyword_build_s"] = round(time.perf_counter() - t0, 2)
    out["keyword_rss_growth_mb"] = round(_rss_mb() - rss)
    if engine is not None:
        arrays = engine.rowids.nbytes + engine.indptr.nbytes + engine.rows.nbytes + engine.values.nbytes
        out["keyword_engine_mb"] = round(arrays / 2**20, 1)
        out["keyword_terms"], out["keyword_postings"] = len(engine.vocab), len(engine.rows)
    fast.search("warm up", mode="hybrid")
    out["catalog_hybrid"] = _timed(fast, texts, "hybrid")
    out["cached_hybrid"] = _timed(fast, texts, "hybrid")  # the same queries again: next pages, facet clicks
    inline, profiled = (Searcher(store, embedder, folder / "index") for _ in range(2))  # caches empty: queries new to them
    inline.catalog = profiled.catalog = fast.catalog  # the same catalog and engine
    inline.keyword = profiled.keyword = fast.keyword
    helpers = search_module._helper_slots
    search_module._helper_slots = threading.Semaphore(0)  # no helper free: the semantic half runs in this thread
    profile = cProfile.Profile()
    try:
        out["inline_hybrid"] = _timed(inline, texts, "hybrid")  # one search's work end to end, one thread
        profile.enable()
        _timed(profiled, texts, "hybrid")
        profile.disable()
    finally:
        search_module._helper_slots = helpers
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    stages = {}
    for stage, (path, names) in STAGES.items():
        total = sum(v[3] for (file, _, func), v in stats.items() if file.endswith(path) and func in names)
        if total or not stage.endswith(")"):
            stages[stage] = round(1000 * total / len(texts), 1)
    mean = sum(v[3] for (file, _, func), v in stats.items() if file.endswith("searchapi/search.py") and func == "search")
    stages["all other work (ranking, fusion, Python)"] = round(
        1000 * mean / len(texts) - sum(v for k, v in stages.items() if not k.startswith(" ")), 1)
    stages["total (mean, under cProfile)"] = round(1000 * mean / len(texts), 1)
    out["stages_ms"] = stages
    store.close()
    log(f"  profile {size}: {out}")
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The profile figures as text."""
    head = "\nin-process hybrid (cold queries)  passages  SQLite look-ups p50/p95  catalog p50/p95  repeated p50/p95  "
    lines = [head + "catalog build s"]
    for r in rows:
        a, b, c = r.get("sqlite_hybrid", {"p50_ms": float("nan"), "p95_ms": float("nan")}), r["catalog_hybrid"], r["cached_hybrid"]
        lines.append(f"{'':34}{r['size']:>8}  {a['p50_ms']:10.1f}/{a['p95_ms']:<12.1f}{b['p50_ms']:7.1f}/{b['p95_ms']:<8.1f}"
                     f"{c['p50_ms']:7.1f}/{c['p95_ms']:<10.1f}{r['catalog_build_s']:>6}")
    for r in rows:
        f = r.get("fts5_keyword_hybrid")
        fts5 = f"hybrid with FTS5 keyword pools p50/p95 {f['p50_ms']}/{f['p95_ms']} ms; " if f else ""
        lines.append(f"  {r['size']} passages: {fts5}"
                     f"in-memory bm25 built or loaded in {r['keyword_build_s']} s, arrays {r.get('keyword_engine_mb')} MB, "
                     f"RSS +{r['keyword_rss_growth_mb']} MB, {r.get('keyword_postings')} postings")
    for r in rows:
        inline = r.get("inline_hybrid")
        halves = f"; semantic half inline, unprofiled p50/p95 {inline['p50_ms']}/{inline['p95_ms']} ms" if inline else ""
        lines.append(f"  where one hybrid search's time goes at {r['size']} passages (ms, cProfile, catalog on{halves}):")
        lines += [f"    {stage:38} {ms:7.1f}" for stage, ms in r["stages_ms"].items()]
    return "\n".join(lines)


def catalog_scale(size: int, pool: int = 1000) -> dict[str, Any]:
    """The catalog alone at `size` passages (4 per document, synthetic rows, no store): build time, memory, and the
    per-search work it replaces (owners + filters of a pool, facets of the result set)."""
    import tracemalloc

    import numpy as np

    from searchapi.catalog import Catalog
    from ssehub.store import Filters

    docs = size // perf_corpus.PASSAGES_PER_DOC
    rows = {
        "documents": [(f"d{i}", 1, perf_corpus.LANGS[i % 10], perf_corpus.SOURCES[i % 8], perf_corpus.TYPES[i % 6],
                       2000 + i % 26, f"{2000 + i % 26}-{1 + i % 12:02d}-01") for i in range(docs)],
        "chunks": [(c + 1, f"d{c // perf_corpus.PASSAGES_PER_DOC}") for c in range(size)],
        "sdgs": [(f"d{i}", 1 + (i * 7 + k) % 17) for i in range(docs) for k in range(1 + i % 3)],
    }
    tracemalloc.start()
    t0 = time.perf_counter()
    catalog = Catalog(rows, 0)
    build = time.perf_counter() - t0
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rng = np.random.default_rng(0)
    hits = [(int(c), float(s)) for c, s in zip(rng.integers(1, size + 1, pool), np.sort(rng.random(pool))[::-1], strict=True)]
    timings = {}
    for name, filters in (("no filter", Filters()), ("sdg+lang+years", Filters(sdg=[5, 8], lang=["en"], year_from=2010))):
        t0 = time.perf_counter()
        for _ in range(20):
            best = catalog.best(hits, filters)
            catalog.facets(catalog.numbers(best))
        timings[name] = round(1000 * (time.perf_counter() - t0) / 20, 2)
    t0 = time.perf_counter()
    numbers = catalog.browse(Filters(), 0, 10)[2]
    catalog.facets(numbers)
    timings["browse all + facets"] = round(1000 * (time.perf_counter() - t0), 1)
    return {"size": size, "documents": docs, "build_s": round(build, 2), "memory_mb": round(memory / 2**20),
            "per_search_ms": timings}
