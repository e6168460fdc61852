"""Hybrid retrieval on the warm path at ~13k chunks of real text: dense, lexical, and hybrid
as it was (dense, then the one-statement BM25 join, one after the other) against hybrid as it
is (both searches at once, BM25 ranked inside FTS5 alone and pruned exactly), side by side in
one run.

    python benchmarks/hybrid.py [--n 13000] [--questions 256] [--rounds 7] [--k 10]
        [--corpus DIR ...] [--data-dir DIR] [--quick] [--out FILE]

Corpus: REAL TEXT, SYNTHETIC VECTORS. The chunks are real files, read and chunked as
`ragcli ingest` does (the local model's tokenizer, chunk_tokens/overlap of the defaults):
the Django documentation of eval/django_docs/corpus when it has been built
(`python eval/django_docs/build_corpus.py`), then the running Python's standard library
sources (always there, offline), in path order, until `--n` chunks. Their vectors are not
embeddings: they come from benchmarks/synthetic.py's Gaussian mixture (embedding 13k chunks
takes ~10 minutes on 2 cores, and a search's cost does not depend on what the vectors mean),
in a real Chroma index (cosine, M=16, ef_construction=128, ef_search=64, built through
`indexing.rebuild`); the query vectors are fresh points near cluster centres. So the dense
rows time real HNSW searches of the right size and the lexical rows real FTS5 BM25 over real
text with real questions: the 40 Django questions and the 40 of the sample corpus, then
word windows of random chunks ("How do I …" + 3 to 8 consecutive words) up to `--questions`.

Rows, all on one warm Searcher (`ragcli.retrieval.search`), k=10 (lists of 40 for fusion),
whole corpus:
  dense            Searcher.dense: Chroma HNSW in a thread, unknown ids dropped;
  lexical before   the BM25 query as it was (one statement: every match joined to its chunk
                   and document, ORDER BY bm25 LIMIT), on the catalogue's connection;
  lexical after    Catalog.lexical_search: FTS5 ranks alone, rows that can only hold common
                   words pruned exactly (ragcli/index/catalog_lexical.py), then the k
                   rowids mapped to ids, on a read connection of its own;
  hybrid before    dense, then lexical before, then fusion (the old Searcher.rank);
  hybrid after     Searcher.rank: the dense search handed to its thread first, the lexical
                   search run meanwhile, then fusion;
  2 lexical at once  calibration: two lexical searches overlapped as hybrid overlaps its
                   two (one in a worker thread): ~1× one search when a core is free, ~2×
                   when other processes hold the cores (no overlap can show then).
and the same rows scoped to the largest partition (the filtered path: candidate rows joined
to their documents, pruned the same way). How the lexical searches went (one query, pruned
after one step, two steps, filtered) is counted. The rows of a round are interleaved
question by question (their order rotating), one warm-up pass first; each row's p50 and p95
are the median over `--rounds` rounds of that round's percentile. Every question's before
and after results are compared: they must be identical (ids, scores, order), else the
script exits 1.

`--quick`: 3,000 chunks, 40 questions, 3 rounds. `--data-dir DIR` keeps the data directory
(and reuses it when it exists). Writes benchmarks/results/hybrid.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
import benchmeta  # noqa: E402
import synthetic  # noqa: E402

from ragcli.core.config import Settings  # noqa: E402
from ragcli.core.datadir import DataDir  # noqa: E402
from ragcli.core.records import Chunk, Document, FileRef  # noqa: E402
from ragcli.embedders.local import LocalEmbedder  # noqa: E402
from ragcli.index import indexing  # noqa: E402
from ragcli.index.catalog import Catalog, LexicalFilter  # noqa: E402
from ragcli.index.store import HnswParams, Store  # noqa: E402
from ragcli.ingest.chunking import chunk_long_text  # noqa: E402
from ragcli.ingest.documents import discover, load  # noqa: E402
from ragcli.retrieval.scope import Scope  # noqa: E402
from ragcli.retrieval.search import Hits, Searcher, fuse, search_depth, started  # noqa: E402
from tests.support.lexical import oracle  # noqa: E402

REPO = benchmeta.REPO
DJANGO = REPO / "eval/django_docs/corpus"
QUESTION_FILES = (
    REPO / "eval/django_docs/questions.jsonl",
    REPO / "tests/fixtures/sample_questions.jsonl",
)
PARAMS = HnswParams(m=16, ef_construction=128, ef_search=64)
STDLIB_PARTITION = "python-stdlib"
ROWS = (
    "dense",
    "lexical before",
    "lexical after",
    "hybrid before",
    "hybrid after",
    "2 lexical at once",
)
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


# -- the corpus -----------------------------------------------------------------------------
def default_corpora() -> list[Path]:
    found = [DJANGO] if DJANGO.is_dir() and any(DJANGO.iterdir()) else []
    return [*found, Path(sysconfig.get_paths()["stdlib"])]


def refs_of(root: Path) -> list[FileRef]:
    """ingest's own discovery for a documentation folder; the .py files of the standard
    library (test suites and site-packages left out) as one partition."""
    root = root.resolve()
    if root == Path(sysconfig.get_paths()["stdlib"]).resolve():
        skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__"}
        files = sorted(
            p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts[:-1])
        )
        return [FileRef(p, root, STDLIB_PARTITION) for p in files]
    return [r for r in discover([root]) if isinstance(r, FileRef)]


def read_corpus(roots: Sequence[Path], n: int) -> list[tuple[Document, list[Chunk]]]:
    """Documents chunked as ingest chunks them, in order, until `n` chunks."""
    settings = Settings()
    tokenizer = LocalEmbedder.from_settings(settings)
    docs: list[tuple[Document, list[Chunk]]] = []
    total = 0
    for root in roots:
        for ref in refs_of(root):
            doc = load(ref)
            if not isinstance(doc, Document):
                continue
            chunks = chunk_long_text(
                doc.text, tokenizer.token_spans, settings.chunk_tokens, settings.chunk_overlap
            )[: n - total]
            if chunks:
                docs.append((doc, chunks))
                total += len(chunks)
            if total >= n:
                return docs
    return docs


def build(path: Path, roots: Sequence[Path], n: int, seed: int) -> dict[str, Any]:
    """A data directory of real chunks and synthetic vectors (reused when `path` holds one)."""
    setup_file = path / "hybrid-bench.json"
    if setup_file.exists():
        setup: dict[str, Any] = json.loads(setup_file.read_text())
        if setup.get("n_requested") == n and setup.get("roots") == [str(r) for r in roots]:
            log(f"reusing {path}")
            return setup
        raise SystemExit(f"{path} holds another benchmark data directory; choose another")
    t = time.perf_counter()
    docs = read_corpus(roots, n)
    chunks = sum(len(c) for _, c in docs)
    log(f"corpus: {len(docs):,} files, {chunks:,} chunks read and chunked")
    vectors = synthetic.make_corpus(chunks, clusters=max(1, chunks // 40), seed=seed, words=1)
    dirs = DataDir(path)
    catalog = Catalog(dirs.catalog)
    try:
        catalog.apply(docs, [], synthetic.EMBEDDER_ID)
        ids = [cid for cid, _ in catalog.chunk_texts()]
        row = {cid: i for i, cid in enumerate(ids)}

        async def source(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
            return vectors.vectors[[row[cid] for cid, _ in pairs]]

        asyncio.run(indexing.rebuild(catalog, Store(dirs.chroma), PARAMS, source))
        partitions = catalog.partitions()
    finally:
        catalog.close()
    setup = {
        "n_requested": n,
        "roots": [str(r) for r in roots],
        "files": len(docs),
        "chunks": chunks,
        "partitions": partitions,
        "seed": seed,
        "build_s": round(time.perf_counter() - t, 1),
        "note": "real text chunked as ingest does; SYNTHETIC vectors (benchmarks/synthetic.py)",
    }
    setup_file.write_text(json.dumps(setup, indent=2))
    log(f"data directory built in {setup['build_s']} s: {path}")
    return setup


def questions(catalog: Catalog, count: int, seed: int) -> list[str]:
    """Real questions first, then word windows of random chunks."""
    found: list[str] = []
    for f in QUESTION_FILES:
        if f.exists():
            found += [json.loads(line)["question"] for line in f.read_text().splitlines() if line]
    rng = random.Random(seed)
    texts = [t for _, t in catalog.chunk_texts()]
    while len(found) < count:
        words = re.findall(r"[^\W\d_]\w+", rng.choice(texts))
        if len(words) >= 10:
            n = rng.randint(3, 8)
            i = rng.randrange(len(words) - n)
            found.append("How do I " + " ".join(words[i : i + n]) + "?")
    return found[:count]


# -- the searches as they were ------------------------------------------------------------
# Catalog.lexical_search as it was (one statement joining every match to its chunk and
# document, on the catalogue's connection): the tests' oracle, measured here.
lexical_before = oracle


async def hybrid_before(
    s: Searcher, info: indexing.IndexInfo, q: str, vec: np.ndarray, k: int, scope: Scope
) -> list[Hits]:
    """Searcher.rank as it was: dense, then lexical, one after the other."""
    depth = search_depth(k, "hybrid")
    found = await s.dense(info, vec, depth, scope)
    return [fuse(found[0], lexical_before(s.catalog, q, depth, scope.sql), s.hybrid_weight)[:k]]


async def two_at_once(s: Searcher, a: str, b: str, k: int, scope: Scope) -> None:
    """Two lexical searches, one in a worker thread and one here, as hybrid overlaps its
    two searches: the calibration row. Both release the GIL while SQLite works, so this takes
    about one search's time when the machine has a core to spare, and two when it has not
    (other processes using it): then no overlap can show in the hybrid row either."""
    other = started(s.catalog.lexical_search, b, k, scope.sql)
    s.catalog.lexical_search(a, k, scope.sql)
    await other


# -- measuring ------------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Timed = Callable[[int], Awaitable[Any]]


async def measure(
    rows: dict[str, Timed], count: int, rounds: int
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]]:
    """One warm-up pass, then `rounds` passes; in each, every question goes through every row
    (the rows' order rotating per question). Returns per-row medians of the per-round p50 and
    p95 (ms), and each row's results of the last pass."""
    names = list(rows)
    results: dict[str, list[Any]] = {name: [None] * count for name in names}
    per_round: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds + 1):
        ms: dict[str, list[float]] = {name: [] for name in names}
        for i in range(count):
            shift = (i + r) % len(names)
            for name in names[shift:] + names[:shift]:
                t = time.perf_counter()
                results[name][i] = await rows[name](i)
                ms[name].append((time.perf_counter() - t) * 1000)
        if r:  # round 0 warms up
            for name in names:
                per_round[name].append((pct(ms[name], 0.5), pct(ms[name], 0.95)))
    summary = {
        name: {
            "p50": statistics.median(p50 for p50, _ in per_round[name]),
            "p95": statistics.median(p95 for _, p95 in per_round[name]),
            "rounds_p50": [round(p50, 4) for p50, _ in per_round[name]],
        }
        for name in names
    }
    return summary, results


async def run_scope(
    s: Searcher,
    info: indexing.IndexInfo,
    qs: Sequence[str],
    vecs: np.ndarray,
    k: int,
    scope: Scope,
    rounds: int,
) -> dict[str, Any]:
    depth = search_depth(k, "hybrid")
    rows: dict[str, Timed] = {
        "dense": lambda i: s.dense(info, vecs[i : i + 1], depth, scope),
        "lexical before": lambda i: asyncio.sleep(
            0, lexical_before(s.catalog, qs[i], depth, scope.sql)
        ),
        "lexical after": lambda i: asyncio.sleep(
            0, s.catalog.lexical_search(qs[i], depth, scope.sql)
        ),
        "hybrid before": lambda i: hybrid_before(s, info, qs[i], vecs[i : i + 1], k, scope),
        "hybrid after": lambda i: s.rank(info, [qs[i]], vecs[i : i + 1], k, scope),
        "2 lexical at once": lambda i: two_at_once(s, qs[i], qs[(i + 1) % len(qs)], depth, scope),
    }
    plans = dict(s.catalog.readers.plans)
    summary, results = await measure(rows, len(qs), rounds)
    after = s.catalog.readers.plans
    plans = {name: after[name] - plans.get(name, 0) for name in after}
    same = {
        "lexical": sum(
            a == b for a, b in zip(results["lexical before"], results["lexical after"], strict=True)
        ),
        "hybrid": sum(
            a == b for a, b in zip(results["hybrid before"], results["hybrid after"], strict=True)
        ),
        "questions": len(qs),
    }
    dense = summary["dense"]["p50"]
    ratios = {
        "hybrid_before_over_dense": summary["hybrid before"]["p50"] / dense,
        "hybrid_after_over_dense": summary["hybrid after"]["p50"] / dense,
        "hybrid_speedup": summary["hybrid before"]["p50"] / summary["hybrid after"]["p50"],
        "lexical_speedup": summary["lexical before"]["p50"] / summary["lexical after"]["p50"],
        # ~1: a core to spare for the second search; ~2: none (the machine was busy)
        "two_lexical_over_one": summary["2 lexical at once"]["p50"]
        / summary["lexical after"]["p50"],
    }
    return {"rows": summary, "ratios": ratios, "identical": same, "plans": plans}


def fmt(v: float) -> str:
    return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"


def table(name: str, part: dict[str, Any]) -> str:
    rows, dense = part["rows"], part["rows"]["dense"]["p50"]
    lines = [
        f"{name}: {part['identical']['questions']} questions, k=10 (fusion lists of 40)",
        "| row | p50 ms | p95 ms | p50 / dense p50 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in ROWS:
        r = rows[row]
        lines.append(f"| {row} | {fmt(r['p50'])} | {fmt(r['p95'])} | {r['p50'] / dense:.2f}× |")
    same = part["identical"]
    lines.append(
        f"identical results before/after: lexical {same['lexical']}/{same['questions']}, "
        f"hybrid {same['hybrid']}/{same['questions']}; "
        f"hybrid {part['ratios']['hybrid_speedup']:.2f}× "
        f"faster, lexical {part['ratios']['lexical_speedup']:.2f}× faster"
    )
    lines.append("lexical searches: " + ", ".join(f"{n} {c}" for n, c in part["plans"].items()))
    lines.append(
        f"2 lexical at once / 1: {part['ratios']['two_lexical_over_one']:.2f} "
        "(~1: a spare core for the overlap; ~2: none, the machine was busy)"
    )
    return "\n".join(lines)


async def bench(path: Path, setup: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    dirs = DataDir(path)
    catalog = Catalog(dirs.catalog)
    try:
        store = Store(dirs.chroma)
        info = indexing.current(catalog)
        assert info is not None
        qs = questions(catalog, args.questions, args.seed)
        rng = np.random.default_rng(args.seed)
        corpus = synthetic.make_corpus(
            setup["chunks"], clusters=max(1, setup["chunks"] // 40), seed=args.seed, words=1
        )
        vecs = synthetic.queries_near(corpus, len(qs), rng)
        searcher = Searcher(store, catalog, "hybrid", "hnsw", 1.0)
        await searcher.dense(info, vecs[:1], 1, Scope(None, "{}"))  # Chroma loads HNSW
        log(f"measuring: {len(qs)} questions x {args.rounds} rounds, whole corpus")
        whole = await run_scope(searcher, info, qs, vecs, args.k, Scope(None, "{}"), args.rounds)
        print(table("whole corpus", whole), flush=True)
        partition = max(setup["partitions"], key=lambda p: setup["partitions"][p])
        scope = Scope(
            {"partition": partition}, partition, LexicalFilter((partition,)), (partition,)
        )
        log(f"measuring: the same, scoped to partition {partition!r}")
        scoped = await run_scope(searcher, info, qs, vecs, args.k, scope, args.rounds)
        print(table(f"partition {partition!r}", scoped), flush=True)
    finally:
        catalog.close()
    return {"whole": whole, "partition": {"name": partition, **scoped}, "questions": len(qs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=13_000, help="chunks")
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, action="append", help="folders, in order")
    parser.add_argument("--data-dir", type=Path, help="keep (or reuse) the data directory")
    benchmeta.add_common(parser, "hybrid")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, n=3_000, questions=40, rounds=3)
    roots = [r.resolve() for r in (args.corpus or default_corpora())]
    with tempfile.TemporaryDirectory(prefix="ragcli-hybrid-") as tmp:
        path = args.data_dir or Path(tmp) / "data"
        setup = build(path, roots, args.n, args.seed)
        result = asyncio.run(bench(path, setup, args))
    result = {"setup": {**setup, "k": args.k, "rounds": args.rounds}, **result}
    benchmeta.write_result(args.out, result, args)
    failed = [
        name
        for name in ("whole", "partition")
        if result[name]["identical"]["hybrid"] != result[name]["identical"]["questions"]
        or result[name]["identical"]["lexical"] != result[name]["identical"]["questions"]
    ]
    if failed:
        print(f"before and after differ ({', '.join(failed)})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
