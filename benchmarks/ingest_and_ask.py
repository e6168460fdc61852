"""End-to-end timings on the embedded default, in one run: what a user feels at the shell.

    python benchmarks/ingest_and_ask.py [--corpus sample_corpus] [--repeats 7]
        [--profile-runs 30] [--embed-rounds 3] [--quick] [--out FILE]

Measures, each in fresh processes (wall clock from the parent):
  * `ragcli --help`
  * first `ingest` of the corpus (empty data directory, empty embedding cache)
  * re-`ingest` of the unchanged corpus
  * `ragcli ask` in a fresh process with no cache (imports, model load, index open) and
    with the answer cached, alternating
and, in one process, the warm pipeline's per-stage p50/p95 (`ragcli profile --json`) on the
first-time path (retrieval and answer caches off) and with every cache on; and, in this
process, the local embedder's throughput on the corpus's chunks (the model loaded and warm:
the embedding phase alone, no catalogue, Chroma or FTS writes).
Prints a table and writes JSON (default benchmarks/results/ingest_and_ask.json).
`--quick`: 2 repeats, 5 profile runs, 1 embedding round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchmeta

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How do I rotate the on-call pager?"


def ragcli(home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env["RAGCLI_HOME"] = str(home)
    # Fresh processes with nothing warm, as the rows say: a plain `ask` would be answered by
    # the data dir's warm daemon after the first one (its figures: benchmarks/daemon.py).
    env["RAGCLI_DAEMON"] = "off"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ragcli", *args], capture_output=True, text=True, env=env, cwd=REPO
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ragcli {' '.join(args)} failed: {proc.stderr.strip()}")
    return elapsed, proc


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": statistics.median(values), "p95": p95, "min": ordered[0], "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="sample_corpus", help="relative to the repository")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile-runs", type=int, default=30)
    parser.add_argument("--embed-rounds", type=int, default=3)
    benchmeta.add_common(parser, "ingest_and_ask")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, repeats=2, profile_runs=5, embed_rounds=1)
    runs = str(args.profile_runs)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        helps = [ragcli(home, "--help")[0] for _ in range(args.repeats)]
        first_s, first = ragcli(home, "ingest", args.corpus, "--json")
        again_s, again = ragcli(home, "ingest", args.corpus, "--json")
        first_r, again_r = json.loads(first.stdout), json.loads(again.stdout)
        # Fresh processes, alternating so that machine noise hits both alike.
        uncached, cached = [], []
        ragcli(home, "ask", QUESTION)  # puts the answer in the cache
        for _ in range(args.repeats):
            uncached.append(ragcli(home, "ask", QUESTION, "--no-cache", "all")[0])
            cached.append(ragcli(home, "ask", QUESTION)[0])
        _, prof = ragcli(
            home, "profile", QUESTION, "--runs", runs, "--json", "--no-cache", "retrieval,answer"
        )
        _, prof_hot = ragcli(home, "profile", QUESTION, "--runs", runs, "--json")
        first_time, hot = json.loads(prof.stdout), json.loads(prof_hot.stdout)
        embedding = local_embedder_throughput(home, args.embed_rounds)

    rows = [
        ("ragcli --help", summary(helps)),
        ("ask, fresh process, no cache", summary(uncached)),
        ("ask, fresh process, answer cached", summary(cached)),
    ]
    result = {
        "corpus": {"path": args.corpus, "documents": first_r["new"], "chunks": first_r["chunks"]},
        "help_s": summary(helps),
        "ingest_first_s": first_s,
        "ingest_first_embedded": first_r["embedded"],
        "ingest_rerun_s": again_s,
        "ingest_rerun_embedded": again_r["embedded"],
        "ingest_first_report": first_r,
        "ingest_rerun_report": again_r,
        "ask_fresh_process_uncached_s": summary(uncached),
        "ask_fresh_process_cached_s": summary(cached),
        "profile_first_time_path": first_time,
        "profile_all_caches": hot,
        "local_embedder": embedding,
    }
    print(f"corpus: {first_r['new']} documents, {first_r['chunks']} chunks")
    print(f"{'wall clock of a whole command':<40}{'p50':>10}{'p95':>10}{'n':>5}")
    for name, s in rows:
        print(f"{name:<40}{s['p50'] * 1000:>8.0f}ms{s['p95'] * 1000:>8.0f}ms{s['n']:>5}")
    print(
        f"{'ingest, first (all embedded)':<40}{first_s * 1000:>8.0f}ms"
        f"   ({first_r['embedded']} chunks embedded)"
    )
    print(
        f"{'ingest, re-run (unchanged)':<40}{again_s * 1000:>8.0f}ms"
        f"   ({again_r['embedded']} chunks embedded)"
    )
    for title, data in (
        ("first-time path (retrieval+answer caches off)", first_time),
        ("all caches on", hot),
    ):
        print(
            f"\nprofile, {title}: cold TTFT from process start "
            f"{data['cold']['ttft_ms']:.0f} ms; warm runs:"
        )
        for stage, s in data["warm"]["stats"].items():
            if s.get("n") and stage != "output_per_s":
                print(f"  {stage:<38}{s['p50']:>8.3f}ms{s['p95']:>8.3f}ms{s['n']:>5}")
    print(
        f"\nlocal embedder, model warm, {embedding['chunks']} chunks per round: "
        f"{embedding['chunks_per_s']:.1f} chunks/s (p50 of {embedding['rounds']} rounds; "
        f"model load {embedding['load_s']:.2f} s)"
    )
    benchmeta.write_result(args.out, result, args)


def local_embedder_throughput(home: Path, rounds: int) -> dict:
    """The corpus's chunks embedded by the local model in this process, after loading it and
    one warm-up batch: chunks per second of the embedding phase alone."""
    sys.path.insert(0, str(REPO))
    from ragcli.core.datadir import DataDir
    from ragcli.embedders.local import LocalEmbedder
    from ragcli.index.catalog import Catalog

    catalog = Catalog(DataDir(home).catalog)
    try:
        texts = [text for _, text in catalog.chunk_texts()]
    finally:
        catalog.close()
    started = time.perf_counter()
    embedder = LocalEmbedder().load()
    load_s = time.perf_counter() - started
    embedder.embed(texts[:16])
    walls = []
    for _ in range(rounds):
        t = time.perf_counter()
        embedder.embed(texts)
        walls.append(time.perf_counter() - t)
    wall = statistics.median(walls)
    return {
        "chunks": len(texts),
        "rounds": rounds,
        "round_s": walls,
        "chunks_per_s": len(texts) / wall,
        "load_s": load_s,
    }


if __name__ == "__main__":
    main()
