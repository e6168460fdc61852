"""A partition that holds most of the corpus: what its own Chroma collection costs (build time,
disk) and what a scoped question costs without one, at 10k and 100k chunks, for partitions
holding 100 % down to 2 % of the chunks. The data behind ragcli/index/partition_rule.py (which
partitions get a collection of their own) and retrieval/search.py's `search_in_scope` (how a
scoped question searches the global collection when its partitions have none).

    python benchmarks/partitions.py [--sizes 10000 100000] [--shares 100 90 70 50 30 10 2]
        [--queries 100] [--warmup 10] [--margin 2.0] [--seed 0] [--quick] [--out FILE]
    python benchmarks/partitions.py --render benchmarks/results/partitions.json

SYNTHETIC VECTORS (benchmarks/synthetic.py): 384-d unit vectors drawn as a mixture of Gaussian
clusters (n/50 clusters, lognormal sizes, a direction all share), so that neighbourhoods are
topical as with real sentence embeddings; fixed seed. Partitions are topical too: the clusters,
in a random order, are cut into nested bands, so the partition of share s (2 %, 10 %, ...,
100 %) is the union of whole clusters holding about s of the chunks, and each smaller one lies
inside the larger. A real ragcli catalogue (`Catalog.apply`; each band a partition) and a real
embedded Chroma (chromadb.PersistentClient in a temporary folder, through ragcli's `Store`,
HnswParams M=16, ef_construction=128, ef_search=64: ragcli's defaults) hold the corpus.

Per size: the global collection is built once (every chunk; its metadata is the catalogue's,
plus a key `share_S` = "in"/"out" per share S for the rows that filter). Per share: the
partition's own collection is built (`Store.create` + `Store.upsert` of its chunks: build
seconds; disk = growth of the Chroma folder; first query = loading it), then single-query
searches, k=10, fetching 20 (k + min(k, 10), as `Searcher.dense` does), each row followed by
the catalogue check the search path makes, rows interleaved query by query:

  a. own collection      `retrieval.search.filtered` on the partition's collection: one
                         `Store.query` in a worker thread, then the catalogue's `known_ids`;
  b. global + where      the same on the global collection with the `where` filter
                         {"share_S": "in"};
  c. global, no filter   (share 100 % only) the same on the global collection, unfiltered;
  d. global, over-fetch  `retrieval.search.search_in_scope` (no depth cap): the global
                         collection asked for ceil(20 / share × margin) hits unfiltered, their
                         partitions read from the catalogue (`chunk_partitions`), those in the
                         scope kept; a question left with fewer than 20 (10 at 100 %) is asked
                         again with the where filter of b (counted as fallbacks).

Two query sets per share: "in" (fresh points near clusters of the partition: a question about
what the partition holds) and, below 100 %, "out" (near clusters outside it: a question whose
neighbourhood the partition does not reach, the worst case for d). Recall@10 of each row
against exact search (numpy) within the partition. For d, also the share of "in" and "out"
questions that would fall back at margins 1, 1.5, 2, 3 and 4 (read from one untimed deep search
per question: the prefix of its hits). `--quick`: 10k only, 30 queries, 5 warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmeta  # noqa: E402
import synthetic  # noqa: E402

from ragcli.index.catalog import Catalog  # noqa: E402
from ragcli.index.store import HnswParams, Store  # noqa: E402
from ragcli.retrieval.scope import Scope  # noqa: E402
from ragcli.retrieval.search import filtered, global_depth, search_in_scope  # noqa: E402

PARAMS = HnswParams()  # ragcli's defaults: M 16, ef_construction 128, ef_search 64
K = 10
FETCH = K + min(K, 10)
MARGINS = (1.0, 1.5, 2.0, 3.0, 4.0)
GLOBAL = "bench-global"
T0 = time.perf_counter()

Search = Callable[[np.ndarray], list[str]]  # one query vector → its top-K ids


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q * 100))


def disk_bytes(path: Path) -> int:
    """Bytes on disk under `path` (allocated blocks, as du counts them)."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


# -- the corpus -------------------------------------------------------------------------------
def banded(n: int, shares: Sequence[int], seed: int) -> tuple[synthetic.Corpus, dict[int, int]]:
    """The synthetic corpus with its clusters cut into nested bands: band b holds the clusters
    that take the partition of the b-th smallest share to its size. Returns the corpus (its
    `cluster_partition` is the band) and share → the last band it covers."""
    corpus = synthetic.make_corpus(n, clusters=max(20, n // 50), partitions=1, seed=seed)
    rng = np.random.default_rng(seed + 17)
    order = rng.permutation(len(corpus.centres))
    sizes = np.bincount(corpus.cluster, minlength=len(corpus.centres))[order]
    cum = np.cumsum(sizes)
    band = np.empty(len(order), dtype=np.int64)
    last: dict[int, int] = {}
    start = 0
    for b, share in enumerate(sorted(shares)):
        end = len(order) if share >= 100 else int(np.searchsorted(cum, share / 100 * n)) + 1
        end = max(end, start + 1)
        band[order[start:end]] = b
        last[share] = b
        start = end
    band[order[start:]] = len(last) - 1  # rounding leftovers join the largest band
    corpus.cluster_partition = band
    return corpus, last


def build_catalogue(corpus: synthetic.Corpus, path: Path) -> tuple[Catalog, list[str], float]:
    t = time.perf_counter()
    docs = synthetic.documents(corpus)
    ids = synthetic.chunk_ids(corpus, docs)
    catalog = Catalog(path / "catalog.db")
    catalog.apply(docs, [], synthetic.EMBEDDER_ID)
    return catalog, ids, time.perf_counter() - t


def build(store: Store, name: str, ids: list[str], vectors: np.ndarray, metas: list[dict]) -> float:
    t = time.perf_counter()
    store.create(name, PARAMS)
    store.upsert(name, ids, vectors, metas)
    return time.perf_counter() - t


def first_query(store: Store, name: str) -> float:
    t = time.perf_counter()
    store.query(name, np.full((1, synthetic.DIMS), 1.0, dtype=np.float32), 1)
    return time.perf_counter() - t


# -- the searches -----------------------------------------------------------------------------
def plain(store: Store, catalog: Catalog, name: str, where: dict | None) -> Search:
    """retrieval.search.filtered (the shipped function): Store.query for FETCH in a worker
    thread, then the catalogue's known_ids, cut to K, as Searcher.dense does."""
    loop = asyncio.new_event_loop()

    def search(q: np.ndarray) -> list[str]:
        hits = loop.run_until_complete(filtered(store, catalog, name, q[None, :], K, where))
        return [cid for cid, _ in hits[0]]

    return search


def overfetch(
    store: Store, catalog: Catalog, scope: Scope, share: float, margin: float, stats: dict
) -> Search:
    """retrieval.search.search_in_scope (the shipped function), no cap on the depth."""
    loop = asyncio.new_event_loop()

    def search(q: np.ndarray) -> list[str]:
        before = store.queries
        hits = loop.run_until_complete(
            search_in_scope(
                store, catalog, GLOBAL, q[None, :], K, scope, share, margin, max_depth=10**9
            )
        )
        stats["fallbacks"] += store.queries - before - 1
        return [cid for cid, _ in hits[0]]

    return search


def time_rows(
    searches: dict[str, Search], queries: np.ndarray, warmup: int
) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Per query, each search once, in rotating order; (ms, ids) after the warm-up ones."""
    names = list(searches)
    out: dict[str, tuple[list[float], list[list[str]]]] = {n: ([], []) for n in names}
    for i, q in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t = time.perf_counter_ns()
            got = searches[name](q)
            ms = (time.perf_counter_ns() - t) / 1e6
            if i >= warmup:
                out[name][0].append(ms)
                out[name][1].append(got)
    return out


def exact(matrix: np.ndarray, ids: Sequence[str], queries: np.ndarray) -> list[list[str]]:
    scores = queries @ matrix.T
    top = np.argsort(-scores, axis=1)[:, :K]
    return [[ids[j] for j in row] for row in top]


def recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


def fallback_rates(
    store: Store, catalog: Catalog, wanted: set[str], share: float, queries: np.ndarray
) -> dict[str, float]:
    """Per margin, the share of questions whose over-fetch keeps too few in the scope (fewer
    than FETCH; K at 100 %), read from one deep search per question (its prefix stands for a
    shallower one)."""
    deepest = global_depth(FETCH, share, max(MARGINS))
    rows = store.query(GLOBAL, queries, deepest)
    partition = catalog.chunk_partitions(sorted({h.id for row in rows for h in row}))
    out: dict[str, float] = {}
    for margin in MARGINS:
        depth = global_depth(FETCH, share, margin)
        need = K if share >= 1.0 else FETCH  # as search_in_scope
        short = sum(
            sum(partition.get(h.id) in wanted for h in row[:depth]) < need and len(row) >= depth
            for row in rows
        )
        out[str(margin)] = short / len(rows)
    return out


# -- one share --------------------------------------------------------------------------------
def measure_share(
    ctx: dict[str, Any], share_pct: int, band: int, args: argparse.Namespace
) -> dict[str, Any]:
    corpus: synthetic.Corpus = ctx["corpus"]
    store: Store = ctx["store"]
    catalog: Catalog = ctx["catalog"]
    ids: list[str] = ctx["ids"]
    metas: list[dict] = ctx["metas"]
    rows = np.flatnonzero(corpus.partition <= band)
    names = tuple(synthetic.partition_name(b) for b in range(band + 1))
    counts = catalog.partitions()
    share = sum(counts.get(p, 0) for p in names) / sum(counts.values())
    own = f"bench-own-{share_pct}"
    before = disk_bytes(ctx["chroma"])
    own_ids = [ids[i] for i in rows]
    build_s = build(store, own, own_ids, corpus.vectors[rows], [metas[i] for i in rows])
    disk = disk_bytes(ctx["chroma"]) - before
    load_s = first_query(store, own)
    log(f"  {share_pct:>3} %: own collection of {len(rows):,} chunks in {build_s:.1f} s")
    key = f"share_{share_pct}"
    scope = Scope({key: "in"}, key, partitions=names)
    stats = {"fallbacks": 0}
    searches: dict[str, Search] = {
        "a. own collection": plain(store, catalog, own, None),
        "b. global + where": plain(store, catalog, GLOBAL, {key: "in"}),
    }
    if share >= 1.0:
        searches["c. global, no filter"] = plain(store, catalog, GLOBAL, None)
    searches["d. global, over-fetch"] = overfetch(store, catalog, scope, share, args.margin, stats)
    rng = np.random.default_rng(args.seed + share_pct)
    matrix = corpus.vectors[rows]
    sets = {"in": list(range(band + 1))}
    if share < 1.0:
        sets["out"] = list(range(band + 1, int(corpus.cluster_partition.max()) + 1))
    result: dict[str, Any] = {
        "share_pct": share_pct,
        "share": share,
        "chunks": len(rows),
        "own_build_s": build_s,
        "own_disk_bytes": disk,
        "own_first_query_s": load_s,
        "overfetch_depth": global_depth(FETCH, share, args.margin),
        "queries": {},
    }
    for label, parts in sets.items():
        total = args.warmup + args.queries
        queries = synthetic.queries_near(corpus, total, rng, partitions=parts)
        stats["fallbacks"] = 0
        timed = time_rows(searches, queries, args.warmup)
        truth = exact(matrix, own_ids, queries[args.warmup :])
        per_row = {
            row: {
                "p50_ms": pct(ms, 0.5),
                "p95_ms": pct(ms, 0.95),
                "mean_ms": float(np.mean(ms)),
                "recall": recall(got, truth),
                "n": len(ms),
            }
            for row, (ms, got) in timed.items()
        }
        tail = queries[args.warmup :]
        result["queries"][label] = {
            "rows": per_row,
            "d_fallbacks": stats["fallbacks"] / total,
            "d_fallback_rate_by_margin": fallback_rates(store, catalog, set(names), share, tail),
        }
    store.drop(own)
    return result


# -- one size ---------------------------------------------------------------------------------
def measure_size(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    log(f"{n:,} chunks: corpus")
    corpus, last = banded(n, args.shares, args.seed)
    path = workdir / f"n{n}"
    path.mkdir()
    catalog, ids, catalogue_s = build_catalogue(corpus, path)
    log(f"  catalogue in {catalogue_s:.1f} s")
    metas = catalog.chunk_metadata(ids)
    for m, b in zip(metas, corpus.partition.tolist(), strict=True):
        for share, top in last.items():
            m[f"share_{share}"] = "in" if b <= top else "out"
    chroma = path / "chroma"
    store = Store(chroma)
    global_s = build(store, GLOBAL, ids, corpus.vectors, metas)
    global_disk = disk_bytes(chroma)
    global_load = first_query(store, GLOBAL)
    log(f"  global collection of {n:,} chunks in {global_s:.1f} s")
    ctx = {"corpus": corpus, "store": store, "catalog": catalog, "ids": ids, "metas": metas}
    ctx["chroma"] = chroma
    shares = [measure_share(ctx, s, last[s], args) for s in sorted(args.shares, reverse=True)]
    catalog.close()
    return {
        "n": n,
        "clusters": len(corpus.centres),
        "catalogue_s": catalogue_s,
        "global_build_s": global_s,
        "global_disk_bytes": global_disk,
        "global_first_query_s": global_load,
        "shares": shares,
    }


# -- output -----------------------------------------------------------------------------------
def fmt_ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def table(size: dict[str, Any]) -> str:
    n = size["n"]
    lines = [
        f"{n:,} chunks ({size['clusters']:,} clusters); global collection: built in "
        f"{size['global_build_s']:.1f} s, {size['global_disk_bytes'] / 2**20:.1f} MiB",
        "",
        "| share | chunks | own: build s | own: MiB | query set | search | p50 ms | p95 ms "
        "| recall@10 |",
        "| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for s in size["shares"]:
        head = [
            f"{s['share'] * 100:.1f} %",
            f"{s['chunks']:,}",
            f"{s['own_build_s']:.1f}",
            f"{s['own_disk_bytes'] / 2**20:.1f}",
        ]
        for label, qs in s["queries"].items():
            for row, r in qs["rows"].items():
                name = row
                if row.startswith("d."):
                    name += f" (depth {s['overfetch_depth']}, {qs['d_fallbacks']:.0%} fell back)"
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            *head,
                            label,
                            name,
                            fmt_ms(r["p50_ms"]),
                            fmt_ms(r["p95_ms"]),
                            f"{r['recall']:.3f}",
                        ]
                    )
                    + " |"
                )
                head = ["", "", "", ""]
    lines.append("")
    lines.append("d's fallback rate by margin (in / out):")
    for s in size["shares"]:
        qs = s["queries"]
        rates = [
            f"{m}: {qs['in']['d_fallback_rate_by_margin'][m]:.0%}"
            + (f"/{qs['out']['d_fallback_rate_by_margin'][m]:.0%}" if "out" in qs else "")
            for m in qs["in"]["d_fallback_rate_by_margin"]
        ]
        lines.append(f"  {s['share'] * 100:5.1f} %: " + ", ".join(rates))
    return "\n".join(lines)


def cell(r: dict[str, Any]) -> str:
    return f"{fmt_ms(r['p50_ms'])} / {fmt_ms(r['p95_ms'])}"


def summary_tables(result: dict[str, Any]) -> str:
    """The tables of docs/benchmarks.md: what an own collection costs, then scoped-question
    latency (p50 / p95 ms) and recall@10 per query set."""
    lines = [
        "| corpus | partition | own collection: build | disk |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for size in result["sizes"]:
        g_s, g_b = size["global_build_s"], size["global_disk_bytes"]
        lines.append(
            f"| {size['n']:,} | (global collection) | {g_s:.1f} s | {g_b / 2**20:.1f} MiB |"
        )
        for s in size["shares"]:
            lines.append(
                f"| | {s['share']:.0%} ({s['chunks']:,}) | {s['own_build_s']:.1f} s "
                f"({s['own_build_s'] / g_s:.0%}) | {s['own_disk_bytes'] / 2**20:.1f} MiB "
                f"({s['own_disk_bytes'] / g_b:.0%}) |"
            )
    for label, title in (("in", "about the partition"), ("out", "outside its topics")):
        lines += [
            "",
            f"Questions {title} (p50 / p95 ms; recall@10 against exact search in the partition):",
            "",
            "| corpus | share | a. own collection | b. global + where | c. global, no filter "
            "| d. global, over-fetch | d: depth, fell back | recall a / b / c / d |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size in result["sizes"]:
            first = True
            for s in size["shares"]:
                if label not in s["queries"]:
                    continue
                q = s["queries"][label]
                rows = q["rows"]
                c = rows.get("c. global, no filter")
                recalls = " / ".join(
                    f"{rows[r]['recall']:.3f}" if r in rows else "–"
                    for r in (
                        "a. own collection",
                        "b. global + where",
                        "c. global, no filter",
                        "d. global, over-fetch",
                    )
                )
                lines.append(
                    f"| {size['n']:,}" * first
                    + "| " * (not first)
                    + f" | {s['share']:.0%} | {cell(rows['a. own collection'])} "
                    f"| {cell(rows['b. global + where'])} | {cell(c) if c else '–'} "
                    f"| {cell(rows['d. global, over-fetch'])} "
                    f"| {s['overfetch_depth']}, {q['d_fallbacks']:.0%} | {recalls} |"
                )
                first = False
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--shares", type=int, nargs="+", default=[100, 90, 70, 50, 30, 10, 2])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--margin", type=float, default=2.0, help="over-fetch margin of row d")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", metavar="FILE", help="print the tables of a result file")
    benchmeta.add_common(parser, "partitions")
    args = parser.parse_args()
    if args.render:
        print(summary_tables(json.loads(Path(args.render).read_text())))
        return
    benchmeta.apply_quick(args, parser, sizes=[10_000], queries=30, warmup=5)
    if any(not 0 < s <= 100 for s in args.shares) or 100 not in args.shares:
        parser.error("--shares: percentages in (0, 100], 100 among them")
    workdir = Path(tempfile.mkdtemp(prefix="ragcli-partitions-"))
    try:
        sizes = []
        for n in args.sizes:
            sizes.append(measure_size(n, args, workdir))
            print("\n" + table(sizes[-1]) + "\n", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "k": K,
        "fetch": FETCH,
        "params": {"m": PARAMS.m, "ef_construction": PARAMS.ef_construction},
        "ef_search": PARAMS.ef_search,
        "margin": args.margin,
        "sizes": sizes,
    }
    benchmeta.write_result(args.out, result, args)
    print("\n" + summary_tables(result))


if __name__ == "__main__":
    main()
