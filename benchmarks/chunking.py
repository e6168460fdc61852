"""Chunking throughput, old path against new, side by side in one run: chunks/s and MB/s for
both tokenizers (the local all-MiniLM-L6-v2 wordpieces, tiktoken's cl100k for
openai:text-embedding-3-small) on three corpora.

    python benchmarks/chunking.py [--rounds 3] [--small-files 5000] [--size 200]
        [--overlap 40] [--quick] [--out FILE]

Corpora (REAL TEXT, read as `ragcli ingest` reads it: discover + load, front matter stripped):
  django        eval/django_docs/corpus (`python eval/django_docs/build_corpus.py`), if built;
  sample        sample_corpus/ (43 files, the corpus of the tests and the status digest);
  5000 small    `--small-files` texts of 2 to 8 consecutive paragraphs (~0.3–3 kB) cut from
                django (else sample) at seeded random places: the many-small-files shape.

Paths, each over the whole corpus, the rounds interleaved (path order rotating), the median
wall time of `--rounds` kept, with its process CPU time (CPU/wall above 1: several cores):
  old per document   what ingest did: `chunk_long_text` one document at a time with the old
                     per-token code (tests/support/chunking_reference.py: tiktoken offsets in a
                     Python loop per token, a call per token to judge each cut);
  new per document   `chunk_long_text` one document at a time on today's code (vectorised
                     tiktoken offsets, the inlined cut), one tokeniser call per document;
  chunk_many         `chunk_many(texts, embedder.token_spans_batch, ...)`: texts and windows
                     tokenised together, two windows (400k characters) per call, on every core
                     (tokenizers' Rust encode_batch; tiktoken on a thread per core).
Every path's chunks are compared with the old path's: they must be identical (else exit 1).
MB is the UTF-8 size of the texts. The machine is often shared: compare rows of one run.

`--quick`: 1 round, 500 small files, the first 60 django files. Writes
benchmarks/results/chunking.json.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
import benchmeta  # noqa: E402

from ragcli.core.records import Chunk, Document, FileRef  # noqa: E402
from ragcli.embedders.local import LocalEmbedder  # noqa: E402
from ragcli.embedders.openai_embedder import OpenAIEmbedder  # noqa: E402
from ragcli.ingest.chunking import chunk_long_text, chunk_many  # noqa: E402
from ragcli.ingest.documents import discover, load  # noqa: E402
from ragcli.providers import tokens  # noqa: E402
from tests.support import chunking_reference as ref  # noqa: E402

REPO = benchmeta.REPO
DJANGO = REPO / "eval/django_docs/corpus"
SAMPLE = REPO / "sample_corpus"
PATHS = ("old per document", "new per document", "chunk_many")
T0 = time.perf_counter()

Run = Callable[[list[str]], list[list[Chunk]]]


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


# -- corpora -----------------------------------------------------------------------------------
def read(root: Path, limit: int | None = None) -> list[str]:
    docs = (load(r) for r in discover([root]) if isinstance(r, FileRef))
    texts = [d.text for d in docs if isinstance(d, Document)]
    return texts[:limit]


def small_files(source: list[str], n: int, seed: int) -> list[str]:
    """`n` texts of 2–8 consecutive paragraphs of `source`, from seeded random places."""
    paragraphs = [p for text in source for p in text.split("\n\n") if p.strip()]
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        at = rnd.randrange(len(paragraphs))
        out.append("\n\n".join(paragraphs[at : at + rnd.randint(2, 8)]))
    return out


def corpora(args: argparse.Namespace) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if DJANGO.is_dir() and any(DJANGO.iterdir()):
        found["django"] = read(DJANGO, 60 if args.quick else None)
    found["sample"] = read(SAMPLE)
    found[f"{args.small_files} small"] = small_files(
        found.get("django", found["sample"]), args.small_files, args.seed
    )
    return found


# -- the paths ---------------------------------------------------------------------------------
def paths(name: str, emb: Any, size: int, overlap: int) -> dict[str, Run]:
    if name == "tiktoken":
        enc = emb._enc()

        def old_spans(text: str) -> list[tuple[int, int]]:
            return ref.tiktoken_token_spans(enc, text)
    else:
        old_spans = emb.token_spans  # the local tokenizer's offsets did not change
    return {
        "old per document": lambda texts: [
            ref.chunk_long_text(t, old_spans, size, overlap) for t in texts
        ],
        "new per document": lambda texts: [
            chunk_long_text(t, emb.token_spans, size, overlap) for t in texts
        ],
        "chunk_many": lambda texts: chunk_many(texts, emb.token_spans_batch, size, overlap),
    }


def timed(run: Run, texts: list[str]) -> tuple[float, float, list[list[Chunk]]]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = run(texts)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def bench_one(
    corpus: str, texts: list[str], name: str, runs: dict[str, Run], rounds: int
) -> list[dict[str, Any]]:
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    walls: dict[str, list[float]] = {p: [] for p in PATHS}
    cpus: dict[str, list[float]] = {p: [] for p in PATHS}
    expected: list[list[Chunk]] | None = None
    identical = {p: True for p in PATHS}
    for r in range(rounds):
        for path in PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]:
            wall, cpu, out = timed(runs[path], texts)
            walls[path].append(wall)
            cpus[path].append(cpu)
            if expected is None:  # round 0 starts with the old path: the reference
                expected = out
            identical[path] = identical[path] and out == expected
            del out
    n_chunks = sum(map(len, expected or []))
    old = statistics.median(walls["old per document"])
    rows = []
    for path in PATHS:
        wall = statistics.median(walls[path])
        cpu = statistics.median(cpus[path])
        rows.append(
            {
                "corpus": corpus,
                "tokenizer": name,
                "path": path,
                "docs": len(texts),
                "mb": round(mb, 3),
                "chunks": n_chunks,
                "wall_s": round(wall, 4),
                "cpu_s": round(cpu, 4),
                "cpu_per_wall": round(cpu / wall, 2) if wall else None,
                "chunks_per_s": round(n_chunks / wall, 1) if wall else None,
                "mb_per_s": round(mb / wall, 3) if wall else None,
                "speedup": round(old / wall, 2) if wall else None,
                "identical": identical[path],
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'corpus':12} {'tokenizer':9} {'path':17} {'docs':>5} {'MB':>6} {'chunks':>6} "
        f"{'wall s':>7} {'cpu s':>6} {'cpu/w':>5} {'chunks/s':>9} {'MB/s':>6} {'x old':>6} same"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['corpus']:12} {r['tokenizer']:9} {r['path']:17} {r['docs']:>5} "
            f"{r['mb']:>6.2f} {r['chunks']:>6} {r['wall_s']:>7.3f} {r['cpu_s']:>6.2f} "
            f"{r['cpu_per_wall']:>5.2f} {r['chunks_per_s']:>9.0f} {r['mb_per_s']:>6.2f} "
            f"{r['speedup']:>6.2f} {'yes' if r['identical'] else 'NO'}"
        )
    return "\n".join(lines)


def warm(emb: Any) -> float:
    """Load the tokenizer (and tiktoken's byte-length table, built once): its seconds."""
    t = time.perf_counter()
    emb.token_spans_batch(["warm up, é"])
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=200, help="chunk_tokens")
    parser.add_argument("--overlap", type=int, default=40, help="chunk_overlap")
    parser.add_argument("--seed", type=int, default=0)
    benchmeta.add_common(parser, "chunking")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, rounds=1, small_files=500)
    texts_of = corpora(args)
    embedders = {
        "local": LocalEmbedder(),
        "tiktoken": OpenAIEmbedder("text-embedding-3-small"),
    }
    first_call = {name: round(warm(emb), 3) for name, emb in embedders.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    log(f"{cores} cores; tiktoken on {tokens.threads()} threads; corpora: {list(texts_of)}")
    rows: list[dict[str, Any]] = []
    for corpus, texts in texts_of.items():
        for name, emb in embedders.items():
            log(f"{corpus} / {name}")
            runs = paths(name, emb, args.size, args.overlap)
            rows += bench_one(corpus, texts, name, runs, args.rounds)
    print(table(rows), flush=True)
    setup = {
        "cores": cores,
        "tiktoken_threads": tokens.threads(),
        "tokenizers_threads": os.environ.get("RAYON_NUM_THREADS", f"{cores} (rayon default)"),
        "size": args.size,
        "overlap": args.overlap,
        "batch_chars": "2 windows (400,000 characters)",
        "first_call_s": first_call,
        "load_average_note": "shared machine: compare rows of one run",
    }
    benchmeta.write_result(args.out, {"setup": setup, "rows": rows}, args)
    if not all(r["identical"] for r in rows):
        print("chunks differ from the old path", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
