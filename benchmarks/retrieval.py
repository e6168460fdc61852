"""Retrieval at 100k chunks, in one run, on SYNTHETIC vectors.

    python benchmarks/retrieval.py [--n 100000] [--clusters 2000] [--queries 256]
        [--batches 40] [--runs 300] [--profile-runs 50] [--keep-data-dir DIR] [--quick]
        [--out FILE]

The corpus is synthetic (see benchmarks/synthetic.py): 384-d unit vectors drawn from a
mixture of Gaussian clusters (topical neighbourhoods, like real embeddings; uniform random
vectors have none), pseudo-word texts, 10 partitions. Queries are fresh points near cluster
centres, never corpus members. A real ragcli data directory is built from it without the
embedding model: the catalogue with `Catalog.apply`, the index (Chroma, cosine, M=16,
ef_construction=128: the global collection, and one per partition where `indexing` builds
them) with `indexing.rebuild` fed the synthetic vectors. Parts a–c search that global
collection and, for b and c, partition collections of their own (same parameters), so they
measure Chroma whatever the pipeline does; part d measures whatever the pipeline does.

  a. exact search (numpy matrix product + argpartition) vs HNSW at ef_search 16/64/128:
     latency p50/p95 and recall@10 against exact;
  b. one partition of 10: the whole collection, the partition as its own collection, the
     same partition through a Chroma `where` filter on the whole collection (and exact search
     over the partition); the same for three partitions (`$in` filter vs querying three
     collections) and for the whole corpus (one global collection vs all ten partition
     collections queried and merged): latency, recall@10 and the share of the corpus each
     searches;
  c. one query per Chroma call vs a batch of 32 in one call (per-query latency);
  d. the warm request path through the real pipeline (`Pipeline.ask`, in process): p50/p95
     of question received → LLM request, and of each stage, with every cache hot and with
     caches switched off in turn. The question is embedded by the real local model.
     Dense retrieval (the vector index alone), so that the HNSW path is what is timed;
  e. the same data directory through the CLI, `ragcli --data-dir DIR profile QUESTION
     --runs N --json [flags]` in fresh processes, with the default (hybrid) retrieval and
     with `--retrieval dense`, whole corpus and partitions: what a user measures.

Every Chroma search goes through `ragcli.index.store.Store.query`, as the pipeline's does. Latency
rows take `--queries` distinct queries after `--warmup` excluded ones; the rows of one table
are interleaved query by query, so machine noise hits them alike. Prints markdown tables;
writes JSON (default benchmarks/results/retrieval.json). `--keep-data-dir DIR` leaves the
data directory, for `ragcli --data-dir DIR profile "QUESTION"`. `--quick`: 5,000 chunks in
100 clusters, 32 queries per row, 4 batches, 20 pipeline runs, 10 profile runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmeta  # noqa: E402
import synthetic  # noqa: E402

from ragcli.core.config import Settings  # noqa: E402
from ragcli.core.datadir import DataDir  # noqa: E402
from ragcli.index import indexing  # noqa: E402
from ragcli.index.catalog import Catalog  # noqa: E402
from ragcli.index.store import Hit, HnswParams, Store  # noqa: E402
from ragcli.profile.runs import run_once  # noqa: E402
from ragcli.retrieval.events import Query  # noqa: E402
from ragcli.retrieval.pipeline import Pipeline  # noqa: E402

REPO = synthetic.REPO
K = 10
PARAMS = HnswParams(m=16, ef_construction=128, ef_search=64)
T0 = time.perf_counter()


LOAD: list[tuple[str, float]] = []  # (phase, 1-minute load average when it started)


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", flush=True)
    LOAD.append((msg, os.getloadavg()[0]))


# -- statistics ---------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (as the other benchmarks here)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50": pct(ms, 0.50),
        "p95": pct(ms, 0.95),
        "mean": float(np.mean(ms)),
        "min": min(ms),
        "n": len(ms),
    }


def recall(found: Sequence[Sequence[str]], exact: Sequence[Sequence[str]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return hits / sum(len(e) for e in exact)


def fmt_ms(v: float) -> str:
    return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"


def md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    align = ["---"] + ["---:"] * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# -- searches -----------------------------------------------------------------------------
Search = Callable[[np.ndarray], list[list[str]]]  # (b, dims) queries → top-K ids per query


def exact_search(matrix: np.ndarray, ids: Sequence[str], k: int = K) -> Search:
    """Brute force: one matrix product, argpartition, then sort the k best."""

    def search(q: np.ndarray) -> list[list[str]]:
        scores = q @ matrix.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        out = []
        for row, cand in zip(scores, top, strict=True):
            best = cand[np.argsort(-row[cand])]
            out.append([ids[i] for i in best])
        return out

    return search


def chroma_search(store: Store, name: str, where: dict | None = None, k: int = K) -> Search:
    def search(q: np.ndarray) -> list[list[str]]:
        return [[h.id for h in row] for row in store.query(name, q, k, where)]

    return search


def fanout_search(
    store: Store, names: Sequence[str], pool: ThreadPoolExecutor | None = None, k: int = K
) -> Search:
    """Query several collections (sequentially, or on a thread pool) and merge their top-k."""

    def search(q: np.ndarray) -> list[list[str]]:
        if pool is None:
            parts = [store.query(n, q, k) for n in names]
        else:
            parts = list(pool.map(lambda n: store.query(n, q, k), names))
        out = []
        for i in range(len(q)):
            hits: list[Hit] = [h for part in parts for h in part[i]]
            hits.sort(key=lambda h: -h.score)
            out.append([h.id for h in hits[:k]])
        return out

    return search


def time_rows(
    searches: dict[str, Search], queries: np.ndarray, warmup: int
) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Per query, one call to each search in rotating order. Returns (ms, ids) per search for
    the queries after the first `warmup`."""
    names = list(searches)
    out: dict[str, tuple[list[float], list[list[str]]]] = {n: ([], []) for n in names}
    for i, q in enumerate(queries):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            t = time.perf_counter_ns()
            got = searches[name](q[None, :])[0]
            ms = (time.perf_counter_ns() - t) / 1e6
            if i >= warmup:
                out[name][0].append(ms)
                out[name][1].append(got)
    return out


def exact_ids(matrix: np.ndarray, ids: Sequence[str], queries: np.ndarray) -> list[list[str]]:
    search = exact_search(matrix, ids)
    return [row for i in range(0, len(queries), 64) for row in search(queries[i : i + 64])]


# -- the benchmark ------------------------------------------------------------------------
def reopen(path: Path, name: str, ef_search: int) -> tuple[Store, float]:
    """Set ef_search and reopen the index: chromadb 1.5.9 keeps a loaded HNSW index (and the
    ef_search it was loaded with) for the life of its client, so `modify` alone changes
    nothing in a process that has already searched the collection. Returns the store and the
    seconds the first query took (loading the index)."""
    from chromadb.api.client import SharedSystemClient

    Store(path).set_ef_search(name, ef_search)
    SharedSystemClient.clear_system_cache()
    store = Store(path)
    t = time.perf_counter()
    store.query(name, np.full((1, synthetic.DIMS), 1.0, dtype=np.float32), 1)
    return store, time.perf_counter() - t


def part_a(
    corpus: synthetic.Corpus, path: Path, name: str, ids: list[str], args: argparse.Namespace
) -> tuple[dict[str, Any], Store]:
    log("a. exact vs HNSW at ef_search 16/64/128")
    rng = np.random.default_rng(args.seed + 1)
    queries = queries_near(corpus, args.warmup + args.queries, rng)
    truth = exact_ids(corpus.vectors, ids, queries[args.warmup :])
    rows: dict[str, Any] = {}
    timed = time_rows({"exact": exact_search(corpus.vectors, ids)}, queries, args.warmup)
    ms, got = timed["exact"]
    rows["exact (numpy)"] = {**summary(ms), "recall": recall(got, truth)}
    for ef in (16, 64, 128):
        store, load_s = reopen(path, name, ef)
        timed = time_rows({"hnsw": chroma_search(store, name)}, queries, args.warmup)
        ms, got = timed["hnsw"]
        rows[f"HNSW ef_search={ef}"] = {
            **summary(ms),
            "recall": recall(got, truth),
            "index_load_s": load_s,
        }
    # The evidence for `reopen`: modify ef_search to 16 on the store that loaded the index
    # at 128, without reopening, and measure recall again (it stays at 128's).
    store.set_ef_search(name, 16)
    got = chroma_search(store, name)(queries[args.warmup :])
    stale = {"loaded_with": 128, "modified_to": 16, "recall": recall(got, truth)}
    # Back to what the data directory records; this store serves parts b and c.
    store = reopen(path, name, PARAMS.ef_search)[0]
    result = {"queries": args.queries, "warmup": args.warmup, "rows": rows, "modify_only": stale}
    return result, store


def corpus_stats(corpus: synthetic.Corpus, seed: int, pairs: int = 20000) -> dict[str, Any]:
    """The shape of the synthetic space: cosines between chunks of different clusters and of
    one cluster (random pairs), cluster sizes, and the cosines of queries' 10 nearest chunks."""
    rng = np.random.default_rng(seed + 9)
    v = corpus.vectors
    i, j = rng.integers(0, corpus.n, pairs), rng.integers(0, corpus.n, pairs)
    cos = np.einsum("ij,ij->i", v[i], v[j])
    other = cos[(corpus.cluster[i] != corpus.cluster[j])]
    # same-cluster pairs: a random partner within the chunk's own cluster
    order = np.argsort(corpus.cluster, kind="stable")
    starts = np.searchsorted(corpus.cluster[order], np.arange(len(corpus.centres)))
    sizes = np.bincount(corpus.cluster, minlength=len(corpus.centres))
    a = rng.integers(0, corpus.n, pairs)
    ca = corpus.cluster[a]
    b = order[starts[ca] + (rng.random(pairs) * sizes[ca]).astype(int)]
    same = np.einsum("ij,ij->i", v[a], v[b])[a != b]
    queries = queries_near(corpus, 256, rng)
    top = np.sort(queries @ v.T, axis=1)[:, -K:]
    docs = len(np.unique(corpus.doc))

    def spread(x: np.ndarray) -> dict[str, float]:
        return {
            "mean": float(x.mean()),
            "p5": float(np.percentile(x, 5)),
            "p95": float(np.percentile(x, 95)),
        }

    return {
        "cosine_different_clusters": spread(other),
        "cosine_same_cluster": spread(same),
        "cosine_query_top10": spread(top.ravel()),
        "cluster_size": {
            "min": int(sizes[sizes > 0].min()),
            "median": float(np.median(sizes[sizes > 0])),
            "max": int(sizes.max()),
        },
        "documents": docs,
    }


def queries_near(corpus: synthetic.Corpus, count: int, rng: np.random.Generator, **kw: Any):
    return synthetic.queries_near(corpus, count, rng, **kw)


def build_partitions(
    corpus: synthetic.Corpus, ids: list[str], catalog: Catalog, store: Store
) -> dict[str, Any]:
    """Each partition as its own collection (same HNSW parameters, same metadata)."""
    log(f"b. building {corpus.partitions} partition collections (one per partition)")
    started = time.perf_counter()
    sizes = {}
    for p in range(corpus.partitions):
        name = synthetic.partition_name(p)
        rows = np.flatnonzero(corpus.partition == p)
        pids = [ids[i] for i in rows]
        store.create(name, PARAMS)
        store.upsert(name, pids, corpus.vectors[rows], catalog.chunk_metadata(pids))
        sizes[name] = len(rows)
        log(f"  {name}: {len(rows):,} vectors ({time.perf_counter() - started:.1f} s so far)")
    return {"seconds": time.perf_counter() - started, "sizes": sizes}


def part_b(
    corpus: synthetic.Corpus,
    store: Store,
    name: str,
    pstore: Store,
    ids: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    n = corpus.n
    sizes = np.bincount(corpus.partition, minlength=corpus.partitions)
    target = int(np.argsort(sizes)[len(sizes) // 2])  # a partition of median size
    three = [target, (target + 1) % corpus.partitions, (target + 2) % corpus.partitions]
    names = [synthetic.partition_name(p) for p in range(corpus.partitions)]
    rng = np.random.default_rng(args.seed + 2)
    pool = ThreadPoolExecutor(max_workers=corpus.partitions)
    groups: dict[str, Any] = {}

    def subset(parts: Sequence[int]) -> tuple[np.ndarray, list[str]]:
        rows = np.flatnonzero(np.isin(corpus.partition, parts))
        return np.ascontiguousarray(corpus.vectors[rows]), [ids[i] for i in rows]

    # (title, queries' partitions, eligible partitions, {row: (search, graph size)})
    one_m, one_ids = subset([target])
    three_m, three_ids = subset(three)
    pname = names[target]
    three_names = [names[p] for p in three]
    cases = [
        (
            f"one partition ({pname}, {sizes[target]:,} chunks)",
            [target],
            {
                "whole collection, no filter": (chroma_search(store, name), n),
                "partition's own collection": (chroma_search(pstore, pname), sizes[target]),
                "whole collection + where filter": (
                    chroma_search(store, name, {"partition": pname}),
                    n,
                ),
                "exact (numpy) over the partition": (exact_search(one_m, one_ids), len(one_ids)),
            },
        ),
        (
            f"three partitions ({', '.join(three_names)}, {len(three_ids):,} chunks)",
            three,
            {
                "whole collection + where $in filter": (
                    chroma_search(store, name, {"partition": {"$in": three_names}}),
                    n,
                ),
                "3 partition collections, one after another": (
                    fanout_search(pstore, three_names),
                    len(three_ids),
                ),
                "3 partition collections, 3 threads": (
                    fanout_search(pstore, three_names, pool),
                    len(three_ids),
                ),
                "exact (numpy) over the 3 partitions": (
                    exact_search(three_m, three_ids),
                    len(three_ids),
                ),
            },
        ),
        (
            "whole corpus",
            None,
            {
                "global collection": (chroma_search(store, name), n),
                "10 partition collections, one after another": (fanout_search(pstore, names), n),
                "10 partition collections, 10 threads": (fanout_search(pstore, names, pool), n),
            },
        ),
    ]
    for title, parts, searches in cases:
        log(f"b. {title}")
        queries = queries_near(corpus, args.warmup + args.queries, rng, partitions=parts)
        eligible = corpus.n if parts is None else int(sum(sizes[p] for p in parts))
        scoped_m, scoped_ids = (corpus.vectors, ids) if parts is None else subset(parts)
        truth_scoped = exact_ids(scoped_m, scoped_ids, queries[args.warmup :])
        truth_global = exact_ids(corpus.vectors, ids, queries[args.warmup :])
        timed = time_rows({k: v[0] for k, v in searches.items()}, queries, args.warmup)
        rows = {}
        for row, (ms, got) in timed.items():
            unscoped = row == "whole collection, no filter"
            graph = searches[row][1]
            rows[row] = {
                **summary(ms),
                "recall": recall(got, truth_global if unscoped else truth_scoped),
                "recall_against": "whole corpus" if unscoped else "the partitions asked",
                "vectors_indexed": int(graph),
                "vectors_eligible": int(n if unscoped else eligible),
                "share_indexed": graph / n,
                "share_eligible": (n if unscoped else eligible) / n,
            }
        groups[title] = rows
    pool.shutdown()
    return {"partition": pname, "partition_sizes": sizes.tolist(), "groups": groups}


def part_c(
    corpus: synthetic.Corpus,
    store: Store,
    name: str,
    pstore: Store,
    ids: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    log(f"c. one query per call vs a batch of {args.batch} in one call")
    rng = np.random.default_rng(args.seed + 3)
    pname = synthetic.partition_name(0)
    searches: dict[str, Search] = {
        "exact (numpy), whole corpus": exact_search(corpus.vectors, ids),
        "HNSW, global collection": chroma_search(store, name),
        f"HNSW, one partition's collection ({pname})": chroma_search(pstore, pname),
        f"HNSW, global collection + where filter ({pname})": chroma_search(
            store, name, {"partition": pname}
        ),
    }
    scoped = {list(searches)[2], list(searches)[3]}
    warm = 2
    single: dict[str, list[float]] = {k: [] for k in searches}
    batched: dict[str, list[float]] = {k: [] for k in searches}
    for b in range(warm + args.batches):
        for row, search in searches.items():
            q = queries_near(corpus, args.batch, rng, partitions=[0] if row in scoped else None)
            t = time.perf_counter_ns()
            search(q)
            batch_ms = (time.perf_counter_ns() - t) / 1e6
            each = []
            for v in q:
                t = time.perf_counter_ns()
                search(v[None, :])
                each.append((time.perf_counter_ns() - t) / 1e6)
            if b >= warm:
                batched[row].append(batch_ms / args.batch)
                single[row] += each
    rows = {
        row: {
            "single": summary(single[row]),
            "batched_per_query": summary(batched[row]),
            "speedup_p50": pct(single[row], 0.5) / pct(batched[row], 0.5),
        }
        for row in searches
    }
    return {"batch": args.batch, "batches": args.batches, "rows": rows}


async def pipeline_runs(settings: Settings, query: Query, runs: int, warmup: int) -> dict[str, Any]:
    p = Pipeline(settings)
    await p.open()
    pre_llm: list[float] = []
    from_call: list[float] = []
    stages: dict[str, list[float]] = {}
    answered_from: dict[str, int] = {}
    try:
        for i in range(warmup + runs):
            called = time.perf_counter_ns()
            run = await run_once(p, query)
            if i < warmup:
                continue
            spans = run.spans
            llm = next(s for s in spans if s.name == "llm.first_token")
            received = min([run.started_ns] + [s.start_ns for s in spans])
            pre_llm.append((llm.start_ns - received) / 1e6)
            from_call.append((llm.start_ns - called) / 1e6)
            for s in spans:
                stages.setdefault(s.name, []).append(s.ms)
            key = run.cached or "generated"
            answered_from[key] = answered_from.get(key, 0) + 1
        counters = p.counters()
    finally:
        p.close()
    return {
        "pre_llm": summary(pre_llm),
        "from_call": summary(from_call),
        "stages": {k: summary(v) for k, v in stages.items()},
        "stage_counts": {k: len(v) for k, v in stages.items()},
        "answered": answered_from,
        "cache_counters": counters,
    }


def part_d(data_dir: Path, corpus: synthetic.Corpus, args: argparse.Namespace) -> dict[str, Any]:
    question = synthetic.question_text(corpus)
    # Part d times the vector index (HNSW) path: dense, not the hybrid default (part e and
    # benchmarks/quality.py measure hybrid, FTS5 included).
    base = Settings(
        data_dir=data_dir, embedder="local", llm="extractive", retrieval="dense"
    ).validate()
    pname = synthetic.partition_name(0)
    # How the pipeline scopes a partition depends on the index it finds: its own collection
    # where `indexing` built one, else a `where` filter on the global collection.
    catalog = Catalog(DataDir(data_dir).catalog)
    try:
        info = indexing.current(catalog)
    finally:
        catalog.close()
    own = pname in getattr(info, "partitions", {})
    how = "partition's own collection" if own else "where filter on the global collection"
    configs = [
        ("all caches hot (answer-cache hit)", "", ()),
        ("answer cache off: retrieval-cache hit, prompt, extractive LLM", "answer", ()),
        (
            "retrieval + answer caches off: cached query vector, HNSW, prompt",
            "retrieval,answer",
            (),
        ),
        (f"as above, --partition {pname} ({how})", "retrieval,answer", (pname,)),
        (f"all caches hot, --partition {pname}", "", (pname,)),
    ]
    out: dict[str, Any] = {
        "question": question,
        "warmup": args.pipeline_warmup,
        "partition_scoping": how,
        "configs": {},
    }
    for title, no_cache, parts in configs:
        log(f"d. pipeline: {title}")
        settings = dataclasses.replace(base, no_cache=no_cache).validate()
        query = Query(question, partitions=parts)
        res = asyncio.run(pipeline_runs(settings, query, args.runs, args.pipeline_warmup))
        out["configs"][title] = {"no_cache": no_cache, "partitions": list(parts), **res}
    return out


def part_e(data_dir: Path, corpus: synthetic.Corpus, args: argparse.Namespace) -> dict[str, Any]:
    """`ragcli profile` on the data directory, each row a fresh process."""
    question = synthetic.question_text(corpus)
    names = [synthetic.partition_name(p) for p in range(3)]
    first_time = ["--no-cache", "retrieval,answer"]
    rows = [
        ("all caches warm", []),
        ("--no-cache retrieval,answer (hybrid, the default)", first_time),
        ("--no-cache retrieval,answer --retrieval dense", [*first_time, "--retrieval", "dense"]),
        (f"--partition {names[0]} (all caches warm)", ["--partition", names[0]]),
        (
            f"--partition {names[0]} --no-cache retrieval,answer",
            ["--partition", names[0]] + first_time,
        ),
        (
            "three partitions, --no-cache retrieval,answer",
            [x for n in names for x in ("--partition", n)] + first_time,
        ),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    out: dict[str, Any] = {"question": question, "runs": args.profile_runs, "rows": {}}
    for title, flags in rows:
        log(f"e. ragcli profile {title}")
        cmd = [sys.executable, "-m", "ragcli", "--data-dir", str(data_dir), "profile", question]
        cmd += ["--runs", str(args.profile_runs), "--json", *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"ragcli profile {' '.join(flags)}: {proc.stderr.strip()[-500:]}")
        report = json.loads(proc.stdout)
        stats = report["warm"]["stats"]
        out["rows"][title] = {
            "flags": flags,
            "pre_llm": stats["pre_llm"],
            "retrieve": stats["retrieve"],
            "ttft": stats["ttft"],
            "cached_runs": report["warm"].get("cached_runs"),
            "cold_ttft_ms": report["cold"]["ttft_ms"],
            "settings": report["settings"],
        }
    return out


def machine() -> dict[str, Any]:
    import chromadb
    import onnxruntime

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "chromadb": chromadb.__version__,
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


# -- report -------------------------------------------------------------------------------
def report(result: dict[str, Any]) -> str:
    out: list[str] = []
    a = result["a"]
    out.append(
        f"a. exact vs HNSW, whole corpus ({result['n']:,} chunks), top-{K}, "
        f"{a['queries']} queries each (after {a['warmup']} warm-up), ms per query:\n"
    )
    exact_p50 = a["rows"]["exact (numpy)"]["p50"]
    out.append(
        md_table(
            ["search", "p50 ms", "p95 ms", f"recall@{K}", "speed-up vs exact (p50)"],
            [
                [
                    k,
                    fmt_ms(r["p50"]),
                    fmt_ms(r["p95"]),
                    f"{r['recall']:.3f}",
                    f"{exact_p50 / r['p50']:.1f}×",
                ]
                for k, r in a["rows"].items()
            ],
        )
    )
    m = a["modify_only"]
    loads = [r["index_load_s"] for r in a["rows"].values() if "index_load_s" in r]
    out.append(
        f"\nEach ef_search was set and the index reopened (first query, loading it: "
        f"{min(loads):.2f}–{max(loads):.2f} s). Setting ef_search={m['modified_to']} on a client "
        f"that had loaded the index at {m['loaded_with']} changed nothing: recall "
        f"{m['recall']:.3f} (chromadb {result['machine']['chromadb']} keeps the loaded index)."
    )
    b = result["b"]
    out.append(
        f"\nb. partitions ({len(b['partition_sizes'])} partitions of "
        f"{min(b['partition_sizes']):,}–{max(b['partition_sizes']):,} chunks; "
        f"built as their own collections in {result['timings_s']['partition_collections']:.0f} s), "
        "ms per query; recall against exact search over what was asked:\n"
    )
    for title, rows in b["groups"].items():
        out.append(f"{title}:\n")
        out.append(
            md_table(
                ["search", "p50 ms", "p95 ms", f"recall@{K}", "vectors indexed", "eligible"],
                [
                    [
                        k,
                        fmt_ms(r["p50"]),
                        fmt_ms(r["p95"]),
                        f"{r['recall']:.3f}",
                        f"{r['vectors_indexed']:,} ({r['share_indexed']:.0%})",
                        f"{r['vectors_eligible']:,} ({r['share_eligible']:.0%})",
                    ]
                    for k, r in rows.items()
                ],
            )
        )
        out.append("")
    c = result["c"]
    out.append(
        f"c. one query per call vs {c['batch']} queries in one call ({c['batches']} batches, "
        f"{c['batches'] * c['batch']} queries each way), ms per query:\n"
    )
    out.append(
        md_table(
            ["search", "single p50", "single p95", "batched p50", "batched p95", "speed-up"],
            [
                [
                    k,
                    fmt_ms(r["single"]["p50"]),
                    fmt_ms(r["single"]["p95"]),
                    fmt_ms(r["batched_per_query"]["p50"]),
                    fmt_ms(r["batched_per_query"]["p95"]),
                    f"{r['speedup_p50']:.1f}×",
                ]
                for k, r in c["rows"].items()
            ],
        )
    )
    d = result["d"]
    out.append(
        f"\nd. the warm request path through `Pipeline.ask`, in process, {result['n']:,} "
        f"chunks, {result['runs']} runs each after {d['warmup']} warm-up; question "
        f"{d['question']!r}; ms:\n"
    )
    stage_names = ["embed", "retrieve", "answer_cache", "prompt", "llm.first_token"]
    out.append(
        md_table(
            ["path", "question → LLM request p50", "p95", "from the caller p50"]
            + [f"{s} p50" for s in stage_names],
            [
                [
                    title,
                    f"{r['pre_llm']['p50']:.3f}",
                    f"{r['pre_llm']['p95']:.3f}",
                    f"{r['from_call']['p50']:.3f}",
                ]
                + [f"{r['stages'][s]['p50']:.3f}" if s in r["stages"] else "–" for s in stage_names]
                for title, r in d["configs"].items()
            ],
        )
    )
    e = result["e"]
    out.append(f"\ne. `ragcli profile --runs {e['runs']} --json` on the data directory, ms:\n")
    out.append(
        md_table(
            ["flags", "question → LLM request p50", "p95", "retrieve p50", "TTFT p50"],
            [
                [
                    title,
                    f"{r['pre_llm']['p50']:.3f}",
                    f"{r['pre_llm']['p95']:.3f}",
                    f"{r['retrieve']['p50']:.3f}",
                    f"{r['ttft']['p50']:.3f}",
                ]
                for title, r in e["rows"].items()
            ],
        )
    )
    t = result["timings_s"]
    disk = result["disk_mib"]
    load = [v for _, v in result["load_average_1m"]]
    out.append(
        f"\ndisk: the data directory's index ({result['index_collections']} collections) "
        f"{disk['data_dir_index']:.0f} MiB, part b's {len(b['partition_sizes'])} partition "
        f"collections {disk['partition_collections']:.0f} MiB, catalogue "
        f"{disk['catalogue']:.0f} MiB; 1-minute load average during the run "
        f"{min(load):.2f}–{max(load):.2f} on {result['machine']['nproc']} cores"
    )
    out.append(
        "\nbuild: corpus {corpus:.1f} s, catalogue {catalogue:.1f} s, the data directory's "
        "index by indexing.rebuild ({cols} collections) {index:.1f} s, part b's {parts} "
        "partition collections {partition_collections:.1f} s; whole run {total:.0f} s".format(
            cols=result["index_collections"], parts=len(b["partition_sizes"]), **t
        )
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="chunks (default 100000)")
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queries", type=int, default=256, help="timed queries per row")
    parser.add_argument("--warmup", type=int, default=20, help="excluded queries per row")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--runs", type=int, default=300, help="pipeline runs per path")
    parser.add_argument("--pipeline-warmup", type=int, default=5)
    parser.add_argument("--profile-runs", type=int, default=50, help="runs per part e row")
    parser.add_argument("--keep-data-dir", type=Path, help="build the data directory here, keep it")
    benchmeta.add_common(parser, "retrieval")
    args = parser.parse_args()
    benchmeta.apply_quick(
        args,
        parser,
        n=5000,
        clusters=100,
        queries=32,
        warmup=4,
        batches=4,
        runs=20,
        pipeline_warmup=2,
        profile_runs=10,
    )
    if args.partitions < 3:
        parser.error("--partitions must be at least 3")

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ragcli-retrieval-") as tmp:
        data_dir = args.keep_data_dir or Path(tmp) / "data"
        if args.keep_data_dir and args.keep_data_dir.exists() and any(args.keep_data_dir.iterdir()):
            parser.error(f"--keep-data-dir {args.keep_data_dir} must be empty or absent")
        t = time.perf_counter()
        log(f"synthetic corpus: {args.n:,} chunks, {args.clusters:,} clusters, seed {args.seed}")
        corpus = synthetic.make_corpus(
            args.n, clusters=args.clusters, partitions=args.partitions, seed=args.seed
        )
        timings["corpus"] = time.perf_counter() - t
        log(f"data directory {data_dir}")
        built = synthetic.build_data_dir(corpus, data_dir, PARAMS, progress=log)
        timings["catalogue"], timings["index"] = built.catalogue_s, built.index_s
        pstore = Store(Path(tmp) / "partitions")
        catalog = Catalog(DataDir(data_dir).catalog)
        try:
            result: dict[str, Any] = {
                "synthetic": True,
                "n": corpus.n,
                "dims": corpus.vectors.shape[1],
                "clusters": len(corpus.centres),
                "seed": args.seed,
                "hnsw": dataclasses.asdict(PARAMS),
                "k": K,
                "runs": args.runs,
                "index_collections": built.collections,
                "corpus_stats": corpus_stats(corpus, args.seed),
            }
            chroma_dir = DataDir(data_dir).chroma
            result["a"], store = part_a(corpus, chroma_dir, built.collection, built.ids, args)
            t = time.perf_counter()
            result["partition_build"] = build_partitions(corpus, built.ids, catalog, pstore)
            timings["partition_collections"] = time.perf_counter() - t
            result["b"] = part_b(corpus, store, built.collection, pstore, built.ids, args)
            result["c"] = part_c(corpus, store, built.collection, pstore, built.ids, args)
            result["disk_mib"] = {
                "data_dir_index": _du(DataDir(data_dir).chroma) / 2**20,
                "partition_collections": _du(Path(tmp) / "partitions") / 2**20,
                "catalogue": _du(DataDir(data_dir).catalog) / 2**20,
            }
        finally:
            catalog.close()
        del store, pstore
        result["d"] = part_d(data_dir, corpus, args)
        result["e"] = part_e(data_dir, corpus, args)
        timings["total"] = time.perf_counter() - T0
        result["timings_s"] = timings
        result["load_average_1m"] = LOAD
        result["machine"] = machine()
        text = report(result)
        print()
        print(text)
        if args.keep_data_dir:
            print(
                f"\nkept: ragcli --data-dir {args.keep_data_dir} profile "
                f"{json.dumps(result['d']['question'])}"
            )
    benchmeta.write_result(args.out, result, args)


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


if __name__ == "__main__":
    main()
