"""A cold `ragcli ask` against `ragcli ask --server` (a warm `ragcli serve`) and against
`ragcli ask` answered by its warm daemon (the default), side by side.

    python benchmarks/serve_vs_cold.py [--repeats 10] [--http-requests 200] [--profile-runs 50]
        [--quick]

On the sample corpus, alternating the three so machine noise hits all alike, it measures the
time from spawning the command to the first byte of the answer on its stdout (what a user or
a script waits for), with the retrieval and answer caches off (every question really retrieves
and answers). "Cold" is a process with the daemon off (RAGCLI_DAEMON=off: imports, model
and index load); the daemon row is a plain `ragcli ask` once the data dir's daemon is warm.
It also measures the server's own per-request overhead (GET /healthz and POST /v1/retrieve
over a kept-alive connection, against the same retrieval in process), and runs
`ragcli profile QUESTION --server URL --runs N --warmup 5 --json` against a second `serve` with
only the answer cache off (each request: retrieval-cache hit, prompt, extractive answerer),
which splits one request's TTFT between the server and the HTTP hop. Also times what importing
httpx adds to a fresh interpreter (the client of `ask --server` avoids it).
Prints a table; writes benchmarks/results/serve_vs_cold.json.
`--quick`: 3 pairs, 30 HTTP requests, 10 profile runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchmeta

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How do I rotate the on-call pager?"


def first_byte_ms(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = (time.perf_counter() - started) * 1000
    proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return elapsed


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(values),
        "p95": ordered[round(0.95 * (len(values) - 1))],
        "min": ordered[0],
        "n": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--http-requests", type=int, default=200)
    parser.add_argument("--profile-runs", type=int, default=50)
    benchmeta.add_common(parser, "serve_vs_cold")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, repeats=3, http_requests=30, profile_runs=10)
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
        env.update(RAGCLI_HOME=str(Path(tmp) / "home"), RAGCLI_NO_CACHE="retrieval,answer")
        ragcli = [sys.executable, "-m", "ragcli"]
        subprocess.run(
            [*ragcli, "ingest", str(REPO / "sample_corpus")],
            env=env,
            check=True,
            capture_output=True,
        )
        server, url = serve(ragcli, env)
        no_daemon = {**env, "RAGCLI_DAEMON": "off"}
        try:
            first_byte_ms([*ragcli, "ask", QUESTION], env)  # starts the daemon and warms it
            cold, warm, daemon = [], [], []
            for _ in range(args.repeats):
                cold.append(first_byte_ms([*ragcli, "ask", QUESTION], no_daemon))
                warm.append(first_byte_ms([*ragcli, "ask", QUESTION, "--server", url], env))
                daemon.append(first_byte_ms([*ragcli, "ask", QUESTION], env))
            root = url[:-3]
            with httpx.Client() as http:
                http.get(root + "/healthz")
                health, retrieve = [], []
                for _ in range(args.http_requests):
                    t = time.perf_counter()
                    http.get(root + "/healthz")
                    health.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    http.post(url + "/retrieve", json={"query": QUESTION})
                    retrieve.append((time.perf_counter() - t) * 1000)
        finally:
            server.terminate()
            server.wait()
            subprocess.run([*ragcli, "daemon", "stop"], env=env, cwd=REPO, capture_output=True)
        in_process = asyncio.run(_in_process(Path(tmp) / "home", args.http_requests))
        httpx_import = import_cost("httpx", args.repeats)
        # profile --server against a serve with the answer cache off (retrieval cache on).
        server, url = serve(ragcli, {**env, "RAGCLI_NO_CACHE": "answer"})
        try:
            client_env = {k: v for k, v in env.items() if k != "RAGCLI_NO_CACHE"}
            proc = subprocess.run(
                [*ragcli, "profile", QUESTION, "--server", url, "--runs", str(args.profile_runs)]
                + ["--warmup", "5", "--json"],
                env=client_env,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"ragcli profile --server failed: {proc.stderr.strip()[-500:]}")
            remote = json.loads(proc.stdout)
        finally:
            server.terminate()
            server.wait()
    result = {
        "ask_cold_first_byte_ms": stats(cold),
        "ask_server_first_byte_ms": stats(warm),
        "ask_daemon_first_byte_ms": stats(daemon),
        "healthz_ms": stats(health),
        "retrieve_http_ms": stats(retrieve),
        "retrieve_in_process_ms": stats(in_process),
        "profile_server": remote,
        "httpx_import_ms": httpx_import,
    }
    print(f"{'first answer byte (retrieval+answer caches off)':<52}{'p50':>9}{'p95':>9}{'n':>5}")
    for name, key in (
        ("ragcli ask (cold process, daemon off)", "ask_cold_first_byte_ms"),
        ("ragcli ask --server (warm ragcli serve)", "ask_server_first_byte_ms"),
        ("ragcli ask (its warm daemon)", "ask_daemon_first_byte_ms"),
        ("GET /healthz (keep-alive)", "healthz_ms"),
        ("POST /v1/retrieve (keep-alive)", "retrieve_http_ms"),
        ("Pipeline.retrieve in process", "retrieve_in_process_ms"),
    ):
        s = result[key]
        print(f"{name:<52}{s['p50']:>7.1f}ms{s['p95']:>7.1f}ms{s['n']:>5}")
    print(f"\nragcli profile --server ({remote['runs']} requests, answer cache off on the server)")
    for name, key in (
        ("TTFT seen by the client", "client_ttft_ms"),
        ("TTFT inside the server", "server_ttft_ms"),
        ("HTTP hop + client", "http_and_client_ms"),
    ):
        s = remote[key]
        print(f"{name:<52}{s['p50']:>7.2f}ms{s['p95']:>7.2f}ms{s['n']:>5}")
    benchmeta.write_result(args.out, result, args)


def import_cost(module: str, repeats: int) -> dict[str, float]:
    """What importing `module` adds to a fresh interpreter (why `ask --server` speaks HTTP with
    the standard library): p50 of `python -c "import MODULE"` minus p50 of `python -c pass`,
    alternating."""
    bare, loaded = [], []
    for _ in range(max(3, repeats)):
        for cmd, out in (("pass", bare), (f"import {module}", loaded)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", cmd], check=True, cwd=REPO)
            out.append((time.perf_counter() - t) * 1000)
    return {
        "interpreter_ms": statistics.median(bare),
        "with_import_ms": statistics.median(loaded),
        "import_ms": statistics.median(loaded) - statistics.median(bare),
        "n": len(bare),
    }


def serve(ragcli: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`ragcli serve --port 0`; returns the process and its base URL (…/v1)."""
    server = subprocess.Popen(
        [*ragcli, "serve", "--port", "0"],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    match = re.search(r"http://\S+/v1", line)
    if match is None:
        server.terminate()
        raise SystemExit(f"ragcli serve did not start: {line}")
    return server, match.group(0)


async def _in_process(home: Path, n: int) -> list[float]:
    sys.path.insert(0, str(REPO))
    from ragcli.core.config import load_settings
    from ragcli.retrieval.events import Query
    from ragcli.retrieval.pipeline import Pipeline

    settings = load_settings({"data_dir": home, "no_cache": "retrieval,answer"}, environ={})
    pipeline = Pipeline(settings)
    await pipeline.warm()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await pipeline.retrieve(Query(QUESTION))
        out.append((time.perf_counter() - t) * 1000)
    pipeline.close()
    return out


if __name__ == "__main__":
    main()
