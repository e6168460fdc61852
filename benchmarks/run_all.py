"""Run every benchmark script, then render docs/benchmarks.md and the README's figures from
their results: what `make bench` (and, with --quick, `make bench-quick`) runs.

    python benchmarks/run_all.py [--quick] [--only NAME,...] [--skip NAME,...] [--no-render]
        [--list]

Each step runs in its own process, one after another (they share the machine: running two at
once would measure each other), with a time limit of several times its estimate. A step that
fails or runs over is reported and the rest still run; the exit status is non-zero at the end
if any step or the rendering failed. A step whose precondition is missing (prefill.py without
the local model of `make install-local`) is skipped with the reason, and its previous result
file, if any, is left as it was. The summary lists each step's wall time against its
estimate for a full run on the 2-core development machine, and the total.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"


@dataclass(frozen=True)
class Step:
    name: str  # also the result file: benchmarks/results/NAME.json
    script: str
    estimate_s: int  # a full run on the 2-core development machine, nothing else running
    args: tuple[str, ...] = ()
    check: tuple[str, ...] = ()  # a command that exits 3 (with the reason) when not ready

    def command(self, quick: bool) -> list[str]:
        cmd = [sys.executable, self.script, *self.args]
        if Path(self.script).stem != self.name:  # else the script's default --out
            cmd += ["--out", f"{RESULTS}/{self.name}.json"]
        return cmd + (["--quick"] if quick else [])


# In order: short ones first, so that a broken set-up shows in the first minutes.
STEPS = (
    Step("ingest_and_ask", "benchmarks/ingest_and_ask.py", 60),
    Step("serve_vs_cold", "benchmarks/serve_vs_cold.py", 45),
    Step("daemon", "benchmarks/daemon.py", 240),
    Step("embedding_throughput", "benchmarks/embedding_throughput.py", 45),
    Step(
        "embedding_throughput_no_token_cost",
        "benchmarks/embedding_throughput.py",
        40,
        ("--per-token-us", "0"),
    ),
    Step(
        "embedding_throughput_batch32",
        "benchmarks/embedding_throughput.py",
        50,
        ("--batch-size", "32", "--overload", "0", "--naive-budget", "5"),
    ),
    Step("store_backends", "benchmarks/store_backends.py", 100),
    Step("profile_vs_server", "benchmarks/profile_vs_server.py", 200),
    Step("serve_load", "benchmarks/serve_load.py", 170),
    Step("hybrid", "benchmarks/hybrid.py", 150),
    Step("ingest_remote", "benchmarks/ingest_remote.py", 900),
    Step("chunking", "benchmarks/chunking.py", 150),
    Step("ingest_local", "benchmarks/ingest_local.py", 600),
    Step("partitions", "benchmarks/partitions.py", 1600),
    Step(
        "local_embedder",
        "benchmarks/local_embedder.py",
        720,
        ("--n", "128", "--rounds", "8", "--quality"),
    ),
    Step("retrieval", "benchmarks/retrieval.py", 420),
    Step("quality", "benchmarks/quality.py", 480),
    Step("abstention", "benchmarks/abstention.py", 420),  # ingests the Django docs too
    Step(
        "prefill",
        "benchmarks/prefill.py",
        480,
        check=(sys.executable, "benchmarks/prefill.py", "--check"),
    ),
)


def fmt_s(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}" if m else f"{s} s"


def run(cmd: list[str] | tuple[str, ...], limit: float, capture: bool = False) -> tuple[int, str]:
    """Run in a session of its own, so that a step's servers go with it when it is stopped."""
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=limit)
        return proc.returncode, out or ""
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124, ""
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every script in its smoke mode")
    parser.add_argument("--only", default="", help="comma-separated step names")
    parser.add_argument("--skip", default="", help="comma-separated step names")
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the steps and estimates")
    args = parser.parse_args()
    names = {s.name for s in STEPS}
    only = {x for x in args.only.split(",") if x}
    skip = {x for x in args.skip.split(",") if x}
    if unknown := (only | skip) - names:
        parser.error(f"unknown step(s): {', '.join(sorted(unknown))}; steps: {', '.join(names)}")
    steps = [s for s in STEPS if (not only or s.name in only) and s.name not in skip]
    if args.list:
        for s in steps:
            print(f"{s.name:<36} ~{fmt_s(s.estimate_s):>6}  {' '.join(s.command(False)[1:])}")
        print(f"{'total':<36} ~{fmt_s(sum(s.estimate_s for s in steps)):>6}")
        return 0

    mode = "quick (smoke run)" if args.quick else "full"
    print(f"make bench: {len(steps)} steps, {mode}", flush=True)
    started = time.perf_counter()
    summary: list[tuple[str, str, float, int]] = []
    for i, step in enumerate(steps, 1):
        limit = 600 if args.quick else max(300, 3 * step.estimate_s)
        if step.check:
            rc, out = run(step.check, 120, capture=True)
            if rc != 0:
                reason = out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
                print(f"\n== [{i}/{len(steps)}] {step.name}: SKIPPED: {reason}", flush=True)
                summary.append((step.name, f"skipped: {reason}", 0.0, step.estimate_s))
                continue
        cmd = step.command(args.quick)
        print(
            f"\n== [{i}/{len(steps)}] {step.name}: {' '.join(['python', *cmd[1:]])} "
            f"(full run ~{fmt_s(step.estimate_s)}; limit {fmt_s(limit)})",
            flush=True,
        )
        t = time.perf_counter()
        rc, _ = run(cmd, limit)
        wall = time.perf_counter() - t
        status = "ok" if rc == 0 else ("TIMED OUT" if rc == 124 else f"FAILED (exit {rc})")
        print(f"== {step.name}: {status} in {fmt_s(wall)}", flush=True)
        summary.append((step.name, status, wall, step.estimate_s))

    render_status = "not run"
    if not args.no_render:
        print("\n== render: docs/benchmarks.md, README.md, docs/deployment.md", flush=True)
        rc, _ = run([sys.executable, "benchmarks/render.py"], 120)
        render_status = "ok" if rc == 0 else f"FAILED (exit {rc})"

    total = time.perf_counter() - started
    print(f"\nmake bench ({mode}) summary:")
    print(f"  {'step':<36}{'wall':>8}{'full est.':>11}  status")
    for name, status, wall, est in summary:
        print(f"  {name:<36}{fmt_s(wall):>8}{'~' + fmt_s(est):>11}  {status}")
    print(f"  {'render':<36}{'':>8}{'':>11}  {render_status}")
    failed = [n for n, s, _, _ in summary if not (s == "ok" or s.startswith("skipped"))]
    if render_status.startswith("FAILED"):
        failed.append("render")
    print(f"total wall time: {fmt_s(total)} ({total:.0f} s)")
    if failed:
        print(f"make bench: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
