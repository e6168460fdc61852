"""`ragcli profile --ablate` and `--concurrency` against an OpenAI-compatible server with a
realistic time to first token, on the sample corpus.

    python benchmarks/profile_vs_server.py [--ttft 0.3] [--gap 0.02] [--questions 10]
        [--rounds 3] [--levels 1,4,16,32] [--requests 64] [--quick]

Starts the project's OpenAI-compatible test server on 127.0.0.1 (tests/support/openai_server.py)
with the given TTFT and inter-token gap, ingests sample_corpus into a temporary data directory,
then runs, with the real `openai` client streaming from that server:
  1. `ragcli profile --questions Q --ablate` (every optimisation off in turn), and
  2. `ragcli profile --questions Q --concurrency 1,4,16,32 --no-cache answer` (every request
     reaches the LLM).
Prints both tables and writes JSON to benchmarks/results/profile_vs_server.json.
`--quick`: 4 questions, 1 round, levels 1,4, 8 requests per level.

Two ablation rows measure something narrower than their names (docs/benchmarks.md says so
next to them): "no concurrency" answers the submitted set one question at a time, so its TTFT
is mostly queueing behind earlier answers; "no connection reuse" is a new client per request on
loopback without TLS, so it mostly measures building the client, not a TCP or TLS handshake.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import benchmeta

REPO = Path(__file__).resolve().parents[1]
REPLY = (
    "To rotate the on-call pager, open PageRelay, go to Schedules, choose SRE Primary and click "
    "Hand Over before 10:00 UTC on Monday, then post a handover note in the on-call channel [1]."
)


def ragcli(env: dict[str, str], *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "ragcli", *args], capture_output=True, text=True, env=env, cwd=REPO
    )
    if proc.returncode != 0:
        raise SystemExit(f"ragcli {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}


def pct(v: float | None) -> str:
    return f"{v * 100:+.0f}%" if v is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttft", type=float, default=0.3, help="server time to first token (s)")
    parser.add_argument("--gap", type=float, default=0.02, help="server inter-token gap (s)")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="1,4,16,32")
    parser.add_argument("--requests", type=int, default=64)
    benchmeta.add_common(parser, "profile_vs_server")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, questions=4, rounds=1, levels="1,4", requests=8)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.openai_server",
            "--ttft",
            str(args.ttft),
            "--token-gap",
            str(args.gap),
            "--reply",
            REPLY,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
            env.update(
                RAGCLI_HOME=str(Path(tmp) / "home"),
                OPENAI_BASE_URL=base_url,
                OPENAI_API_KEY="sk-bench",
                RAGCLI_LLM_MODEL="test-model",
            )
            questions = Path(tmp) / "questions.jsonl"
            lines = (REPO / "tests/fixtures/sample_questions.jsonl").read_text().splitlines()
            picked = [json.loads(x) for x in lines[: args.questions]]
            # Scope every question to its source's partition, so partition scoping has work to do.
            questions.write_text(
                "".join(
                    json.dumps(
                        {"question": q["question"], "partition": q["sources"][0].split("/")[0]}
                    )
                    + "\n"
                    for q in picked
                )
            )
            ragcli(env, "ingest", str(REPO / "sample_corpus"), "--json")
            ablation = ragcli(
                env,
                "profile",
                "--questions",
                str(questions),
                "--runs",
                "10",
                "--ablate",
                "--rounds",
                str(args.rounds),
                "--json",
            )
            sweep = ragcli(
                env,
                "profile",
                "--questions",
                str(questions),
                "--runs",
                "10",
                "--no-cache",
                "answer",
                "--concurrency",
                args.levels,
                "--requests",
                str(args.requests),
                "--json",
            )
    finally:
        server.terminate()
        server.wait()

    print(
        f"server: TTFT {args.ttft * 1000:.0f} ms, {args.gap * 1000:.0f} ms between tokens; "
        f"{args.questions} sample questions, each scoped to its partition"
    )
    print(
        f"\nablation ({args.rounds} rounds per variant after 1 warm-up round; TTFT from the "
        "question set's submission, ms)"
    )
    print(f"{'variant':<48}{'p50':>9}{'p95':>9}  {'Δp50':>7}{'Δp95':>7}  vs")
    for row in ablation["ablation"]:
        t = row["ttft"]
        d50, d95 = row.get("ttft_p50_change"), row.get("ttft_p95_change")
        vs = "" if row["variant"] == row["baseline"] else row["baseline"]
        print(
            f"{row['variant']:<48}{t['p50']:>9.1f}{t['p95']:>9.1f}  {pct(d50):>7}"
            f"{pct(d95):>7}  {vs}"
        )
    print("\nconcurrency sweep (answer cache off: every request streams from the server)")
    print(
        f"{'in flight':>9}{'requests':>10}{'req/s':>8}{'TTFT p50':>10}{'TTFT p99':>10}"
        f"{'e2e p50':>10}"
    )
    for row in sweep["concurrency"]:
        print(
            f"{row['concurrency']:>9}{row['requests']:>10}{row['requests_per_s']:>8.1f}"
            f"{row['ttft']['p50']:>10.1f}{row['ttft']['p99']:>10.1f}{row['e2e']['p50']:>10.1f}"
        )
    stats = sweep["warm"]["stats"]
    print(
        f"\nwarm single requests: TTFT p50 {stats['ttft']['p50']:.1f} ms = LLM "
        f"{stats['llm.first_token']['p50']:.1f} ms + ragcli before the LLM "
        f"{stats['pre_llm']['p50']:.2f} ms"
    )
    benchmeta.write_result(args.out, {"ablation": ablation, "sweep": sweep}, args)


if __name__ == "__main__":
    main()
