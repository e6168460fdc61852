"""The local embedder near its limit: batch size, threads, length sorting, the ingest batch,
and an int8 variant of the model, for speed and for retrieval quality.

    python benchmarks/local_embedder.py [--n 256] [--rounds 3] [--int8-batches 1,8,32] [--quality]
        [--keep DIR] [--download-dir DIR] [--quick] [--out FILE]

Part 1, speed (always). Texts: REAL CHUNKS, as `ragcli ingest` makes them (the local model's
tokenizer, chunk_tokens/overlap of the defaults) of the Django documentation
(eval/django_docs/corpus, `python eval/django_docs/build_corpus.py`), or of the running Python's
standard library sources when that is not built: whole documents taken in a seeded random
order, their chunks in document order (the order an ingest hands them over), until `--n`.
Each row embeds the same texts through `LocalEmbedder` (tokenising included, the session warm):

  fp32 b=B t=T      `embed()` with `batch_size` B on T intra-op threads (sorted by length);
  fp32 unsorted     batches of B in input order, each padded to its longest text;
  ingest path b=O   `embed_batches(texts, batch=O)`, as ingest calls it (shortest texts first,
                    O at a time, each through `embed()` at the default batch_size);
  int8 b=B t=T      the same on the int8 model (`embedder = "local-int8"`, installed by
                    `make install`).

Rows run interleaved, their order rotating each round, after one warm-up pass; a row's
passages/s is its median over `--rounds`, and its ratio to the default before this benchmark
(fp32 b=32 t=2; the default is now b=8) is the median of the per-round ratios, which is what
to read on a shared machine. "padding"
is padded tokens over real tokens for that batching.

Part 2, quality (`--quality`): for each model (`local`, `local-int8`) a fresh data directory
per set (or `--keep DIR`, reused: a second run embeds nothing), then
`ragcli eval SET --sweep search=hnsw,exact --sweep retrieval=dense,lexical,hybrid --json`:
  sample   eval/sample_corpus (BEIR, `--ingest`), 40 questions;
  django   `ragcli ingest eval/django_docs/corpus`, then its 40 questions (timed: a first
           ingest of 9,393 chunks, the "offline default on a real corpus" figure);
  faq      the Python 3.11 FAQ (eval/python_faq/build_set.py; 166 questions, each answered
           by one document that does not contain it), BEIR with `--ingest`.
Document hit@1 and nDCG@10 per configuration and their int8 − fp32 differences; the rule: the
int8 model may be the default only if both stay within 0.01 on every set (and it is faster).

`--quick`: 64 texts, 1 round, batch sizes 8 and 32 only; quality on the sample set only.
Writes benchmarks/results/local_embedder.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmeta  # noqa: E402

from ragcli.core.config import Settings  # noqa: E402
from ragcli.core.records import Document, FileRef  # noqa: E402
from ragcli.embedders import model_files  # noqa: E402
from ragcli.embedders.local import LocalEmbedder, LocalInt8Embedder  # noqa: E402
from ragcli.ingest.chunking import chunk_long_text  # noqa: E402
from ragcli.ingest.documents import discover, load  # noqa: E402

REPO = benchmeta.REPO
DJANGO = REPO / "eval/django_docs"
FAQ = REPO / "eval/python_faq"
SAMPLE = REPO / "eval/sample_corpus"
BASELINE = "fp32 b=32 t=2"  # the default before this benchmark (batch_size 32)
SWEEP = ["--sweep", "search=hnsw,exact", "--sweep", "retrieval=dense,lexical,hybrid"]
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f} s] {msg}", flush=True)


# -- the texts -------------------------------------------------------------------------------
def corpus_refs() -> tuple[str, list[FileRef]]:
    root = DJANGO / "corpus"
    if root.is_dir() and any(root.iterdir()):
        return "django", [r for r in discover([root]) if isinstance(r, FileRef)]
    lib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__"}
    files = sorted(p for p in lib.rglob("*.py") if not skip & set(p.relative_to(lib).parts[:-1]))
    return "python-stdlib", [FileRef(p, lib, "stdlib") for p in files]


def read_texts(n: int, seed: int) -> tuple[str, list[str]]:
    """Chunks as ingest makes them: whole documents in a seeded order, until `n` chunks."""
    name, refs = corpus_refs()
    random.Random(seed).shuffle(refs)
    settings, tok = Settings(), LocalEmbedder()
    texts: list[str] = []
    for ref in refs:
        doc = load(ref)
        if isinstance(doc, Document):
            chunks = chunk_long_text(
                doc.text, tok.token_spans, settings.chunk_tokens, settings.chunk_overlap
            )
            texts += [c.text for c in chunks]
        if len(texts) >= n:
            break
    return name, texts[:n]


# -- the rows --------------------------------------------------------------------------------
def unsorted_batches(e: LocalEmbedder) -> Callable[[list[int]], list[list[int]]]:
    """Batching without length sorting: `batch_size` texts at a time, in input order, each
    batch padded to its longest text (listed first, as `embed` expects)."""
    size = e.batch_size
    return lambda lengths: [
        sorted(range(i, min(i + size, len(lengths))), key=lambda j: -lengths[j])
        for i in range(0, len(lengths), size)
    ]


def padding(e: LocalEmbedder, lengths: list[int], batches: list[list[int]]) -> float:
    real = sum(lengths)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return padded / real - 1 if real else 0.0


def ingest_path(e: LocalEmbedder, texts: Sequence[str], outer: int) -> None:
    async def run() -> None:
        async for _ in e.embed_batches(texts, batch=outer):
            pass

    asyncio.run(run())


class Row:
    """One configuration: an embedder (sessions are shared between rows of one model and
    thread count) and how it is called."""

    def __init__(
        self, name: str, e: LocalEmbedder, batch: int, mode: str = "sorted", outer: int = 0
    ):
        self.name, self.e, self.batch, self.mode, self.outer = name, e, batch, mode, outer
        self.rates: list[float] = []
        self.ratios: list[float] = []

    def run(self, texts: Sequence[str]) -> float:
        self.e.batch_size = self.batch
        if self.mode == "unsorted":
            self.e._batches = unsorted_batches(self.e)  # type: ignore[method-assign]
        try:
            started = time.perf_counter()
            if self.mode == "ingest":
                ingest_path(self.e, texts, self.outer)
            else:
                self.e.embed(texts)
            return len(texts) / (time.perf_counter() - started)
        finally:
            self.e.__dict__.pop("_batches", None)

    def padding(self, texts: Sequence[str]) -> float:
        self.e.batch_size = self.batch
        lengths = [len(x) for x in self.e._encode_for_model(list(texts))]
        if self.mode == "unsorted":
            return padding(self.e, lengths, unsorted_batches(self.e)(lengths))
        if self.mode == "ingest":
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            total = padded = 0
            for s in range(0, len(order), self.outer):
                part = [lengths[i] for i in order[s : s + self.outer]]
                total += sum(part)
                padded += sum(len(b) * max(part[i] for i in b) for b in self.e._batches(part))
            return padded / total - 1
        return padding(self.e, lengths, self.e._batches(lengths))


def make_rows(batches: Sequence[int], int8_batches: Sequence[int], quick: bool) -> list[Row]:
    sessions: dict[tuple[str, int], LocalEmbedder] = {}

    def emb(model: str, threads: int) -> LocalEmbedder:
        if (model, threads) not in sessions:
            cls = LocalInt8Embedder if model == "int8" else LocalEmbedder
            sessions[(model, threads)] = cls(threads=threads).load()
        return sessions[(model, threads)]

    inner = LocalEmbedder.batch_size  # the default
    rows = [Row(f"fp32 b={b} t=2", emb("fp32", 2), b) for b in batches]
    rows += [Row(f"fp32 b={inner} t=1", emb("fp32", 1), inner)]
    rows += [
        Row(f"fp32 b={b} t=2 unsorted", emb("fp32", 2), b, "unsorted") for b in sorted({inner, 32})
    ]
    if not quick:
        rows += [
            Row(f"ingest path b={o} (b={inner} t=2)", emb("fp32", 2), inner, "ingest", o)
            for o in (32, 64, 256)
        ]
    if int8_batches:
        rows += [Row(f"int8 b={b} t=2", emb("int8", 2), b) for b in int8_batches]
        rows += [Row(f"int8 b={int8_batches[0]} t=1", emb("int8", 1), int8_batches[0])]
    return rows


def measure(rows: list[Row], texts: Sequence[str], rounds: int) -> None:
    for row in rows:  # warm-up: sessions' first runs, allocator arenas
        row.run(texts[: min(len(texts), 64)])
    base = next(r for r in rows if r.name == BASELINE)
    for k in range(rounds):
        order = rows[k % len(rows) :] + rows[: k % len(rows)]
        rates = {r.name: r.run(texts) for r in order}
        for r in rows:
            r.rates.append(rates[r.name])
            r.ratios.append(rates[r.name] / rates[base.name])
        log(f"round {k + 1}/{rounds}: " + ", ".join(f"{n} {v:.1f}" for n, v in rates.items()))


def cosines(rows: list[Row], texts: Sequence[str]) -> dict[str, float]:
    """int8 vs fp32 vectors of the same texts: mean and minimum cosine."""
    fp32 = next(r for r in rows if r.name == BASELINE).e.embed(texts)
    int8 = next((r for r in rows if r.name.startswith("int8")), None)
    if int8 is None:
        return {}
    cos = (int8.e.embed(texts) * fp32).sum(axis=1)
    return {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)}


def speed(args: argparse.Namespace) -> dict[str, Any]:
    corpus, texts = read_texts(args.n, args.seed)
    rows = make_rows(args.batches, args.int8_batches, args.quick)
    lengths = [len(x) for x in rows[0].e._encode_for_model(texts)]
    log(f"{len(texts)} chunks of {corpus}, {statistics.mean(lengths):.0f} tokens on average")
    measure(rows, texts, args.rounds)
    return {
        "corpus": corpus,
        "texts": len(texts),
        "tokens_mean": round(statistics.mean(lengths), 1),
        "tokens_max": max(lengths),
        "full_share": round(sum(1 for n in lengths if n >= max(lengths) - 2) / len(lengths), 3),
        "cosine_int8_vs_fp32": cosines(rows, texts),
        "rows": [
            {
                "row": r.name,
                "passages_per_s": round(statistics.median(r.rates), 1),
                "tokens_per_s": round(statistics.median(r.rates) * statistics.mean(lengths)),
                "ratio": round(statistics.median(r.ratios), 3),
                "padding": round(r.padding(texts), 3),
                "rounds": [round(x, 1) for x in r.rates],
            }
            for r in rows
        ],
    }


# -- quality ---------------------------------------------------------------------------------
def ragcli(home: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    cmd = [sys.executable, "-m", "ragcli", "--data-dir", str(home), *argv]
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**clean, **(env or {})}, cwd=REPO
    )
    if proc.returncode != 0:
        raise SystemExit(f"ragcli {' '.join(argv[:3])} failed: {proc.stderr.strip()[-800:]}")
    return time.perf_counter() - started, proc.stdout


def summary(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """label -> document hit@1 and nDCG@10 (and the chunk-level nDCG@10)."""
    out = {}
    for c in report["configurations"]:
        cfg = c["config"]
        label = f"{cfg['retrieval']} {cfg['search']}"
        out[label] = {
            "hit@1": c["document"]["hit@1"],
            "ndcg@10": c["document"]["ndcg@10"],
            "chunk_ndcg@10": c["chunk"]["ndcg@10"],
            "first_relevant": [q["doc_first_relevant"] for q in c["per_query"]],
        }
    return out


def quality_set(name: str, home: Path, embedder: str) -> dict[str, Any]:
    env = {"RAGCLI_EMBEDDER": embedder}
    out: dict[str, Any] = {}
    if name == "django":
        wall, text = ragcli(home, "ingest", str((DJANGO / "corpus").resolve()), "--json", env=env)
        ingest = json.loads(text)
        out["ingest_s"] = round(wall, 1)
        out["ingest"] = {k: v for k, v in ingest.items() if not isinstance(v, list | dict)}
        _, text = ragcli(home, "eval", str(DJANGO / "questions.jsonl"), *SWEEP, "--json", env=env)
    else:
        where = SAMPLE if name == "sample" else FAQ
        _, text = ragcli(home, "eval", str(where), "--ingest", *SWEEP, "--json", env=env)
    report = json.loads(text)
    out["queries"] = report["set"]["queries"]
    out["chunks"] = report["index"]["chunks"]
    out["configs"] = summary(report)
    return out


def prepare_sets(args: argparse.Namespace) -> list[str]:
    sets = ["sample"]
    if args.quick:
        return sets
    if not (DJANGO / "corpus").is_dir():
        build = [sys.executable, str(DJANGO / "build_corpus.py")]
        subprocess.run(
            build + (["--download-dir", str(args.download_dir)] if args.download_dir else []),
            check=True,
        )
    sets.append("django")
    if not (FAQ / "corpus.jsonl").is_file():
        subprocess.run([sys.executable, str(FAQ / "build_set.py")], check=True)
    sets.append("faq")
    return sets


def quality(args: argparse.Namespace) -> dict[str, Any]:
    sets = prepare_sets(args)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="local-embedder-"))
    result: dict[str, Any] = {}
    try:
        for model, embedder in (("fp32", "local"), ("int8", "local-int8")):
            for name in sets:
                log(f"quality: {model} on {name}")
                result.setdefault(name, {})[model] = quality_set(
                    name, keep / model / name, embedder
                )
    finally:
        if args.keep is None:
            shutil.rmtree(keep, ignore_errors=True)
    verdict = []
    for parts in result.values():
        for label, f in parts["fp32"]["configs"].items():
            q = parts["int8"]["configs"][label]
            delta_row = parts.setdefault("delta", {}).setdefault(label, {})
            for metric in ("hit@1", "ndcg@10"):
                delta = round(q[metric] - f[metric], 4)
                delta_row[metric] = delta
                if "lexical" not in label:
                    verdict.append(delta >= -0.01)
            # questions whose first relevant document moved up or down (None: not in the k)
            ranks = zip(f["first_relevant"], q["first_relevant"], strict=True)
            moved = [(a or 99) - (b or 99) for a, b in ranks]
            delta_row["questions_up"] = sum(1 for m in moved if m > 0)
            delta_row["questions_down"] = sum(1 for m in moved if m < 0)
    result["int8_within_0.01"] = all(verdict)
    return result


# -- output ----------------------------------------------------------------------------------
def speed_table(part: dict[str, Any]) -> str:
    lines = [
        f"speed: {part['texts']} chunks of {part['corpus']}, {part['tokens_mean']} tokens on "
        f"average (max {part['tokens_max']}, {part['full_share']:.0%} at the max)",
        f"{'row':34} {'passages/s':>10} {'tokens/s':>9} {'vs b=32':>10} {'padding':>8}",
    ]
    for r in part["rows"]:
        lines.append(
            f"{r['row']:34} {r['passages_per_s']:10.1f} {r['tokens_per_s']:9,} "
            f"{r['ratio']:9.2f}x {r['padding']:8.1%}"
        )
    if part["cosine_int8_vs_fp32"]:
        c = part["cosine_int8_vs_fp32"]
        lines.append(f"int8 vs fp32 vectors: cosine mean {c['mean']}, min {c['min']}")
    return "\n".join(lines)


def quality_table(part: dict[str, Any]) -> str:
    lines = [
        f"{'set':7} {'config':15} {'hit@1 fp32':>10} {'int8':>6} {'Δ':>7}   "
        f"{'nDCG@10 fp32':>12} {'int8':>6} {'Δ':>7}   {'questions up/down':>17}"
    ]
    for name, parts in part.items():
        if not isinstance(parts, dict) or "fp32" not in parts:
            continue
        for label, f in parts["fp32"]["configs"].items():
            q, d = parts["int8"]["configs"][label], parts["delta"][label]
            lines.append(
                f"{name:7} {label:15} {f['hit@1']:10.3f} {q['hit@1']:6.3f} {d['hit@1']:+7.3f}   "
                f"{f['ndcg@10']:12.3f} {q['ndcg@10']:6.3f} {d['ndcg@10']:+7.3f}   "
                f"{d['questions_up']:>8}/{d['questions_down']}"
            )
    for name, parts in part.items():
        if isinstance(parts, dict) and "ingest_s" in parts.get("fp32", {}):
            f, q = parts["fp32"], parts["int8"]
            lines.append(
                f"{name}: first ingest {f['chunks']} chunks: fp32 {f['ingest_s']} s "
                f"({f['chunks'] / f['ingest_s']:.1f} chunks/s), int8 {q['ingest_s']} s "
                f"({q['chunks'] / q['ingest_s']:.1f} chunks/s)"
            )
    lines.append(
        f"int8 within 0.01 of fp32 on every set (dense, hybrid): {part['int8_within_0.01']}"
    )
    return "\n".join(lines)


def int8_installed() -> bool:
    try:
        model_files.check_int8()
        return True
    except model_files.ModelNotInstalledError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="chunks embedded by each row")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--batches",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4, 8, 16, 32, 64, 128],
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--int8-batches",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1, 8, 32],
        help="batch sizes of the int8 rows (empty: no int8 rows)",
    )
    parser.add_argument(
        "--quality", action="store_true", help="part 2: ingest and eval, both models"
    )
    parser.add_argument("--skip-speed", action="store_true", help="part 2 only")
    parser.add_argument(
        "--keep", type=Path, default=None, help="data directories kept (and reused) here"
    )
    parser.add_argument("--download-dir", type=Path, default=None, help="for build_corpus.py")
    benchmeta.add_common(parser, "local_embedder")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, n=64, rounds=1, batches=[8, 32], int8_batches=[1])
    if not int8_installed():
        log("the int8 model is not installed (make install): no int8 rows")
        args.int8_batches = []
    result: dict[str, Any] = {}
    if not args.skip_speed:
        result["speed"] = speed(args)
        print(speed_table(result["speed"]), flush=True)
    if args.quality:
        result["quality"] = quality(args)
        print(quality_table(result["quality"]), flush=True)
    benchmeta.write_result(args.out, result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
