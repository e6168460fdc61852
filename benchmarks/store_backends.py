"""Embedded Chroma vs a Chroma server, and SQLite vs Redis caches, side by side in one run.

    python benchmarks/store_backends.py [--queries 300] [--synthetic 20000]

Starts its own `chroma run` and redis-server on 127.0.0.1 (tests/support/servers.py), ingests
the sample corpus twice (embedded and server), then measures, interleaving the two backends so
machine noise hits both alike:
  - one top-10 HNSW query (Store.query, one 384-d vector) on the sample corpus (200 chunks)
    and, with --synthetic N, on N random unit vectors;
  - a warm cache GET on each cache (embedding get_many of one key, retrieval get, answer get),
    SQLite vs Redis, with entries present (the hit path);
  - a whole warm `ask` answered from the answer cache (Pipeline.ask, in process).
Prints a table; writes benchmarks/results/store_backends.json.
`--quick`: 30 timings per row, 2,000 synthetic vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmeta  # noqa: E402

from ragcli.caches.backends import open_caches  # noqa: E402
from ragcli.core.config import load_settings  # noqa: E402
from ragcli.embedders.local import LocalEmbedder  # noqa: E402
from ragcli.index.store import HnswParams, Store  # noqa: E402
from ragcli.ingest.run import ingest  # noqa: E402
from ragcli.retrieval.events import DoneEvent, Query  # noqa: E402
from ragcli.retrieval.pipeline import Pipeline  # noqa: E402
from tests.support.servers import ChromaServer, RedisServer  # noqa: E402

QUESTION = "How do I rotate the on-call pager?"


def p50_us(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t) / 1e3)
    return statistics.median(times)


def side_by_side(a: Callable[[], Any], b: Callable[[], Any], n: int) -> tuple[float, float]:
    """p50 µs of a and b, alternating in rounds of 10 so drift hits both alike."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(max(1, n // 10)):
        ta.append(p50_us(a, 10))
        tb.append(p50_us(b, 10))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=20000, help="0: skip")
    benchmeta.add_common(parser, "store_backends")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, queries=30, synthetic=2000)
    load_s: dict[str, float] = {}
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="ragcli-bench-backends-"))
    chroma = ChromaServer(tmp / "chroma-data", tmp / "chroma.log")
    redis = RedisServer(tmp / "redis.log")
    rows: list[dict[str, Any]] = []
    try:
        emb = LocalEmbedder()
        homes = {"embedded": tmp / "embedded", "server": tmp / "server"}
        urls = {"embedded": "", "server": chroma.url}
        settings = {
            k: load_settings({"data_dir": homes[k], "chroma_url": urls[k]}, environ={})
            for k in homes
        }
        for k in homes:
            asyncio.run(ingest([REPO / "sample_corpus"], settings[k], emb))
        stores: dict[str, Store] = {}
        names: dict[str, str] = {}
        for k in homes:
            pipe = Pipeline(settings[k])
            asyncio.run(pipe.open())
            names[k] = pipe._index().name
            pipe.close()
            stores[k] = Store(url=chroma.url) if urls[k] else Store(homes[k] / "chroma")
        q = emb.embed([QUESTION]).astype(np.float32)
        for k in stores:
            stores[k].query(names[k], q, 10)  # load HNSW
        e, s = side_by_side(
            lambda: stores["embedded"].query(names["embedded"], q, 10),
            lambda: stores["server"].query(names["server"], q, 10),
            args.queries,
        )
        rows.append(
            {"what": "HNSW top-10 query, sample corpus", "key": "query_sample", "a": e, "b": s}
        )

        if args.synthetic:
            rng = np.random.default_rng(0)
            vecs = rng.standard_normal((args.synthetic, 384)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            ids = [f"s{i}" for i in range(len(vecs))]
            metas = [{"partition": "p"}] * len(vecs)
            for k in stores:
                stores[k].create("bench-synthetic", HnswParams())
                t = time.perf_counter()
                stores[k].upsert("bench-synthetic", ids, vecs, metas)
                load_s[k] = time.perf_counter() - t
                print(f"{k}: {len(vecs)} vectors in {load_s[k]:.1f} s", flush=True)
                stores[k].query("bench-synthetic", q, 10)
            e, s = side_by_side(
                lambda: stores["embedded"].query("bench-synthetic", q, 10),
                lambda: stores["server"].query("bench-synthetic", q, 10),
                args.queries,
            )
            rows.append(
                {
                    "what": f"HNSW top-10 query, {len(vecs):,} random 384-d vectors",
                    "key": "query_synthetic",
                    "a": e,
                    "b": s,
                }
            )
            for k in stores:
                stores[k].drop("bench-synthetic")

        # Caches: the same entries in SQLite and in Redis, then warm GETs.
        home = tmp / "caches"
        sqlite = open_caches(load_settings({"data_dir": home}, environ={}))
        red = open_caches(load_settings({"data_dir": home, "redis_url": redis.url}, environ={}))
        vec = q[0].tobytes()
        for c in (sqlite, red):
            c.embedding.put_many("m", 384, [("ekey", vec)])
            c.retrieval.put("rkey", [(f"c{i}", 0.5) for i in range(10)], 1)
            c.answer.put(
                "akey",
                scope="{}",
                question=QUESTION,
                vector=vec,
                answer="To rotate the pager, open PageRelay. " * 8,
                sources=[(f"c{i}", 0.5) for i in range(5)],
                generator="extractive",
                index_version=1,
            )
        for key, label, call in (
            (
                "embedding_get",
                "embedding cache GET (1 key, hit)",
                lambda c: c.embedding.get_many(["ekey"]),
            ),
            ("retrieval_get", "retrieval cache GET (hit)", lambda c: c.retrieval.get("rkey")),
            ("answer_get", "answer cache GET (hit)", lambda c: c.answer.get("akey")),
        ):
            a, b = side_by_side(partial(call, sqlite), partial(call, red), args.queries)
            rows.append({"what": label, "key": key, "a": a, "b": b, "cache": True})
        sqlite.close()
        red.close()

        # A whole ask served from the answer cache, warm pipeline, both stacks.
        def asker(url_chroma: str, url_redis: str, home: Path) -> Callable[[], Any]:
            pipe = Pipeline(
                load_settings(
                    {"data_dir": home, "chroma_url": url_chroma, "redis_url": url_redis},
                    environ={},
                ),
                emb,
            )
            loop = asyncio.new_event_loop()

            async def one() -> None:
                async for ev in pipe.ask(Query(QUESTION)):
                    if isinstance(ev, DoneEvent):
                        assert ev.cached, "expected an answer-cache hit"

            async def first() -> None:
                async for _ in pipe.ask(Query(QUESTION)):
                    pass

            loop.run_until_complete(first())
            return lambda: loop.run_until_complete(one())

        a, b = side_by_side(
            asker("", "", homes["embedded"]),
            asker(chroma.url, redis.url, homes["server"]),
            args.queries,
        )
        rows.append(
            {
                "what": "whole warm ask answered from the answer cache (in process)",
                "key": "ask_cached",
                "a": a,
                "b": b,
                "cache": True,
            }
        )
    finally:
        chroma.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'measure (p50)':<44} {'embedded/SQLite':>16} {'server/Redis':>14} {'ratio':>7}")
    for r in rows:
        print(f"{r['what']:<44} {r['a']:>13.0f} µs {r['b']:>11.0f} µs {r['b'] / r['a']:>6.2f}x")
    result = {"queries": args.queries, "synthetic_load_s": load_s, "rows": rows}
    benchmeta.write_result(args.out, result, args)


if __name__ == "__main__":
    main()
