"""The offline default's whole ingest of a real documentation corpus, before and after a change.

    python benchmarks/ingest_local.py [--before c9654df] [--corpus eval/django_docs/corpus]
        [--rounds 1] [--quick] [--out FILE]

Each round runs the whole command as a user runs it, a new process with a fresh data
directory, the embedded default embedder (all-MiniLM-L6-v2 on onnxruntime), no cache:
`python -m ragcli --data-dir D ingest CORPUS --json`, once with the code of `--before` (a git
worktree of that commit, made under a temporary folder) and once with this checkout's,
alternating, before first. Both read the model files of this checkout (RAGCLI_MODEL_DIR) and
run in this checkout's virtual environment, so only ragcli's code differs. Wall from spawn to
exit, CPU time (the children's rusage); chunks, and `phases` and `peak_rss_mb` when it has
them, from the JSON report. The digest of `ragcli status --json` must be equal on both
sides: the same chunks were made. `--quick`: the first 20 files of the corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import benchmeta  # noqa: E402

MODEL_DIR = REPO / "ragcli" / "models" / "all-MiniLM-L6-v2"


def _env(code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env.update(PYTHONPATH=str(code), RAGCLI_DAEMON="off", RAGCLI_MODEL_DIR=str(MODEL_DIR))
    return env


def _run(code: Path, home: Path, corpus: Path) -> dict:
    """One whole `ingest` process: wall, CPU, peak RSS, its JSON report."""
    cmd = [sys.executable, "-m", "ragcli", "--data-dir", str(home), "ingest", str(corpus)]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run([*cmd, "--json"], cwd=code, env=_env(code), capture_output=True)
    wall = time.perf_counter() - started
    out, err = proc.stdout, proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({code}): {err.decode()[-500:]}")
    cpu_after = _children_cpu()
    report = json.loads(out)
    status_out = subprocess.run(
        [sys.executable, "-m", "ragcli", "--data-dir", str(home), "status", "--json"],
        cwd=code,
        env=_env(code),
        capture_output=True,
        text=True,
        check=True,
    )
    row = {
        "wall_s": round(wall, 2),
        "chunks": report["chunks"],
        "chunks_per_s": round(report["chunks"] / wall, 1),
        "digest": json.loads(status_out.stdout)["digest"],
        "phases": report.get("phases", {}),
        "peak_rss_mb": report.get("peak_rss_mb"),
    }
    row["cpu_s"] = round(cpu_after - cpu_before, 1)
    return row


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _corpus(args: argparse.Namespace, tmp: Path) -> Path:
    corpus = (REPO / args.corpus).resolve()
    if not args.quick:
        return corpus
    small = tmp / "corpus" / corpus.name
    small.mkdir(parents=True)
    for path in sorted(p for p in corpus.rglob("*") if p.is_file())[:20]:
        shutil.copy(path, small / path.name)
    return small


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="c9654df", help="the commit to compare with")
    parser.add_argument("--corpus", default="eval/django_docs/corpus")
    parser.add_argument("--rounds", type=int, default=1)
    benchmeta.add_common(parser, "ingest_local")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-local-"))
    before = tmp / "before"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(before), args.before], cwd=REPO, check=True
    )
    try:
        corpus = _corpus(args, tmp)
        rows: list[dict] = []
        for r in range(args.rounds):
            for label, code in (("before", before), ("after", REPO)):
                row = {"code": label, "round": r + 1, **_run(code, tmp / f"{label}-{r}", corpus)}
                rows.append(row)
                print(
                    f"  round {r + 1} {label:>6}: {row['wall_s']:7.1f} s, {row['chunks']:,} "
                    f"chunks, {row['chunks_per_s']:.1f} chunks/s, peak RSS "
                    f"{row.get('peak_rss_mb') or '?'} MB",
                    flush=True,
                )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    digests = {row["digest"] for row in rows}
    summary = {}
    for label in ("before", "after"):
        mine = [row for row in rows if row["code"] == label]
        summary[label] = {
            "wall_s": min(row["wall_s"] for row in mine),
            "chunks_per_s": max(row["chunks_per_s"] for row in mine),
        }
    speedup = round(summary["after"]["chunks_per_s"] / summary["before"]["chunks_per_s"], 2)
    print(
        f"\nbefore ({args.before}): {summary['before']['chunks_per_s']} chunks/s; after: "
        f"{summary['after']['chunks_per_s']} chunks/s ({speedup}×); same chunks: "
        f"{len(digests) == 1}"
    )
    setup = {"corpus": args.corpus, "before": args.before, "embedder": "local (fp32)"}
    result = {
        "setup": setup,
        "rows": rows,
        "summary": summary,
        "speedup": speedup,
        "same_chunks": len(digests) == 1,
    }
    benchmeta.write_result(args.out, result, args)
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
