"""Embedding throughput against an OpenAI-compatible API, four ways, in one run.

    python benchmarks/embedding_throughput.py [--n 5000] [--latency 0.15] [--per-token-us 2]
        [--max-in-flight 10] [--concurrency 8] [--overload 32] [--naive-budget 20]

The test server (tests/support/openai_server.py) runs in its own process, configured like a
real API: `--latency` seconds per request plus `--per-token-us` per input token, and HTTP 429
with Retry-After above `--max-in-flight` requests in flight. The same N chunks (~200 tokens
each, generated from a fixed seed) are embedded through ragcli's own path — OpenAIEmbedder,
the official `openai` client, VectorFetcher committing each batch to a real SQLite cache:

  1. one request per chunk, sequentially (embed_batch_size=1, embed_concurrency=1)
  2. batched, sequentially (embed_concurrency=1)
  3. batched and concurrent (embed_concurrency=--concurrency)
  4. a re-run of 3 served from the cache
  5. (with --overload C) batched at concurrency C, above the server's in-flight limit: the
     adaptive limit meets 429s and must still lose nothing

The naive way is stopped after --naive-budget seconds and extrapolated to N (labelled).
"Chunks lost" counts chunks of the run missing from the cache afterwards, or whose cached
vector differs from the server's. Prints a table; writes JSON (default
benchmarks/results/embedding_throughput.json).

What the wall times cover: the embedding phase of an ingest only (planning the requests by
tokens, the requests, committing each batch to the SQLite embedding cache), with the `openai`
client and tiktoken already loaded. Not in them: imports, reading and chunking files, the
catalogue, Chroma and FTS writes (`benchmarks/ingest_and_ask.py` times a whole `ingest`).
`--quick`: 500 chunks, the naive way stopped after 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmeta  # noqa: E402

from ragcli.caches.keys import embedding_key  # noqa: E402
from ragcli.caches.sqlite import SqliteEmbeddingCache  # noqa: E402
from ragcli.embedders.cached import VectorFetcher  # noqa: E402
from ragcli.embedders.openai_embedder import OpenAIEmbedder  # noqa: E402
from tests.support.openai_server import fake_vector  # noqa: E402

MODEL = "text-embedding-3-small"
TEXT = (
    "the on-call engineer rotates the pager every Monday before ten and hands over open "
    "incidents with a short written summary of customer impact, mitigation, next steps and "
    "owners; database failover is rehearsed each quarter, backups are restored into a "
    "staging cluster and checked against checksums, while capacity reviews compare forecast "
    "and actual load per region; expense claims need receipts, travel is booked through the "
    "portal, leave requests go to the manager two weeks ahead, and payroll closes on the "
    "twenty-fifth; deployments roll out behind feature flags with canaries, automatic "
    "rollback on error budgets, and a changelog entry linking the ticket and the review"
)
WORDS = TEXT.split(" ")


def make_chunks(n: int, seed: int = 42) -> list[str]:
    rng = random.Random(seed)
    return [f"Chunk {i}: " + " ".join(rng.choice(WORDS) for _ in range(150)) for i in range(n)]


class Server:
    """The test server as a subprocess (so that it does not share the client's GIL)."""

    def __init__(self, args: argparse.Namespace) -> None:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.openai_server",
            "--latency",
            str(args.latency),
            "--per-token",
            str(args.per_token_us / 1e6),
            "--max-in-flight",
            str(args.max_in_flight),
            "--retry-after",
            str(args.retry_after),
            "--dimensions",
            str(args.dims),
            "--record-bodies",
            "0",
            "--record-texts",
            "0",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        self.root = self.base_url.removesuffix("/v1")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.root}/_stats") as r:
            return json.load(r)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.root}/_reset", data=b"{}", method="POST")
        urllib.request.urlopen(req).close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def lost_chunks(cache: SqliteEmbeddingCache, e: OpenAIEmbedder, texts: list[str]) -> int:
    """Chunks missing from the cache, or cached with a vector the server did not send."""
    import numpy as np

    keys = [embedding_key(e.cache_id, e.dimensions, t) for t in texts]
    found = cache.get_many(keys)
    lost = 0
    for key, text in zip(keys, texts, strict=True):
        blob = found.get(key)
        if blob is None:
            lost += 1
            continue
        vec = np.frombuffer(blob, dtype=np.float32)
        if not np.allclose(vec, fake_vector(text, e.dimensions), atol=1e-5):
            lost += 1
    return lost


async def run_mode(
    server: Server,
    cache_path: Path,
    texts: list[str],
    args: argparse.Namespace,
    *,
    concurrency: int,
    batch_size: int,
    budget: float | None = None,
) -> dict:
    server.reset()
    e = OpenAIEmbedder(
        MODEL,
        base_url=server.base_url,
        api_key="sk-bench",
        dimensions=args.dims,
        concurrency=concurrency,
        batch_size=batch_size,
        seed=1,
    )
    await e.warm()  # the one-time costs (importing openai, loading tiktoken) are not timed
    cache = SqliteEmbeddingCache(cache_path)
    try:
        marks: list[tuple[float, int]] = []  # (when, chunks committed) after each batch
        fetch = VectorFetcher(
            e, cache, lambda _p, done, _t: marks.append((time.perf_counter(), done))
        )
        started = time.perf_counter()
        capped = False
        try:
            await asyncio.wait_for(fetch.vectors(texts), budget)
        except TimeoutError:
            capped = True
        wall = time.perf_counter() - started
        done = fetch.embedded + fetch.hits
        attempted = texts[:done] if capped else texts
        stats = server.stats()
        row = {
            "wall_s": wall,
            "capped": capped,
            "chunks_done": done,
            "requests": stats["requests"],
            "batches_committed": len(marks),
            "throttled_429": stats["throttled"],
            "retries": e.stats.retries,
            "embedded": fetch.embedded,
            "cache_hits": fetch.hits,
            "lowest_concurrency": e.stats.lowest_limit,
            "chunks_lost": None if capped else lost_chunks(cache, e, attempted),
            "concurrency": concurrency,
            "batch_size": batch_size,
        }
        if capped and len(marks) >= 2:
            # Start-up (planning all N, the first request) once, then the steady pace.
            (t1, d1), (tk, dk) = marks[0], marks[-1]
            pace = (tk - t1) / max(1, dk - d1)
            row["wall_s_extrapolated"] = (t1 - started) + (len(texts) - d1) * pace
            row["s_per_chunk_steady"] = pace
        return row
    finally:
        cache.close()
        await e.aclose()


async def main_async(args: argparse.Namespace) -> dict:
    texts = make_chunks(args.n)
    server = Server(args)
    tmp = Path(tempfile.mkdtemp(prefix="ragcli-bench-"))
    try:
        rows: dict[str, dict] = {}
        rows["one request per chunk, sequential"] = await run_mode(
            server,
            tmp / "naive.db",
            texts,
            args,
            concurrency=1,
            batch_size=1,
            budget=args.naive_budget,
        )
        rows["batched, sequential"] = await run_mode(
            server, tmp / "seq.db", texts, args, concurrency=1, batch_size=args.batch_size
        )
        rows[f"batched + concurrent ({args.concurrency})"] = await run_mode(
            server,
            tmp / "conc.db",
            texts,
            args,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
        )
        rows["re-run, from the cache"] = await run_mode(
            server,
            tmp / "conc.db",
            texts,
            args,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
        )
        if args.overload:
            rows[f"batched + concurrent ({args.overload}, over the limit)"] = await run_mode(
                server,
                tmp / "over.db",
                texts,
                args,
                concurrency=args.overload,
                batch_size=args.batch_size,
            )
    finally:
        server.close()
    modes = ("naive", "sequential", "concurrent", "cached", "overload")
    for mode, row in zip(modes, rows.values(), strict=False):
        row["mode"] = mode  # a stable name for benchmarks/render.py
    from ragcli.providers.tokens import encoding

    enc = encoding("cl100k_base")
    tokens = sum(len(x) for x in enc.encode_ordinary_batch(texts))
    return {"rows": rows, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="chunks (default 5000)")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--per-token-us", type=float, default=2.0, help="µs per input token")
    parser.add_argument("--max-in-flight", type=int, default=10)
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a 429")
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--overload", type=int, default=32, help="0: skip that row")
    parser.add_argument("--naive-budget", type=float, default=20.0, help="seconds")
    benchmeta.add_common(parser, "embedding_throughput")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, n=500, naive_budget=3.0)
    result = asyncio.run(main_async(args))
    rows = result["rows"]
    naive = next(iter(rows.values()))
    naive_s = naive.get("wall_s_extrapolated", naive["wall_s"])
    print(
        f"{args.n} chunks, {result['tokens']} tokens; server: {args.latency * 1000:.0f} ms per "
        f"request + {args.per_token_us:g} µs per token, 429 above {args.max_in_flight} in flight "
        f"(Retry-After {args.retry_after:g} s); {os.cpu_count()} CPUs"
    )
    header = (
        f"{'way':<46}{'wall':>10}{'ms/chunk':>10}{'requests':>10}{'429s':>6}{'retries':>8}"
        f"{'lost':>6}{'speed-up':>10}"
    )
    print(header)
    table = []
    for name, r in rows.items():
        wall = r.get("wall_s_extrapolated", r["wall_s"])
        label = name + (" *" if r["capped"] else "")
        requests = (
            f"~{round(r['batches_committed'] * args.n / max(1, r['chunks_done']))}"
            if r["capped"]
            else str(r["requests"])
        )
        lost = "-" if r["chunks_lost"] is None else str(r["chunks_lost"])
        speed = naive_s / wall if wall > 0 else float("inf")
        r["speedup_vs_naive"] = speed
        table.append(
            (
                label,
                f"{wall:.2f} s",
                f"{wall * 1000 / args.n:.2f}",
                requests,
                str(r["throttled_429"]),
                str(r["retries"]),
                lost,
                f"{speed:.0f}×",
            )
        )
        print(
            f"{label:<46}{wall:>9.2f}s{wall * 1000 / args.n:>10.2f}{requests:>10}"
            f"{r['throttled_429']:>6}{r['retries']:>8}{lost:>6}{speed:>9.0f}×"
        )
    if naive["capped"]:
        print(
            f"* stopped after {naive['wall_s']:.1f} s and {naive['chunks_done']} chunks "
            f"({naive['requests']} requests); wall time and requests extrapolated to {args.n}"
        )
    result.update({"n": args.n, "naive_extrapolated_s": naive_s, "table": table})
    benchmeta.write_result(args.out, result, args)


if __name__ == "__main__":
    main()
