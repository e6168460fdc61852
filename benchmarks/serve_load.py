"""Load on two `ragcli serve` replicas sharing one Chroma server and one Redis, answering through
two LLM endpoints: throughput and TTFT at several concurrencies, then hedging against a slow
endpoint.

    python benchmarks/serve_load.py [--quick]

Everything runs on 127.0.0.1 and is bounded (a fixed number of requests per step):
* `chroma run` and a `redis-server` (tests/support/servers.py); the sample corpus ingested
  into them once (`ragcli --chroma-url … --redis-url … ingest sample_corpus`);
* two OpenAI-compatible test endpoints (`python -m tests.support.openai_server`, each its own
  process): TTFT 300 ms ± 100 ms, then 14 words 10 ms apart;
* two `ragcli serve` replicas (subprocesses) with both endpoints in `RAGCLI_LLM_ENDPOINTS`
  and the answer cache off, so every question goes to an LLM;
* an async httpx client that streams `POST /v1/chat/completions`, round-robin over the two
  replicas, the 40 questions of tests/fixtures/sample_questions.jsonl in turn, and records
  TTFT as the first content byte it receives.

Step 1: concurrency 1/8/32/64, hedging at its default (the endpoint's recent p95 TTFT).
Step 2: endpoint B made slow (10 % of its requests wait 3 s for the first token), at one
concurrency, with hedging off, at the p95 default, and at a fixed delay: TTFT p99 and the
extra LLM requests hedging sent (the endpoints' own counters, GET /_stats; a warm-up per
mode is not counted). Prints a table; writes benchmarks/results/serve_load.json.
`--quick`: concurrency 1,8, 2 requests per unit (at least 8), 40 requests per hedging mode.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmeta  # noqa: E402

from tests.support.servers import ChromaServer, RedisServer  # noqa: E402

REPLY = "Hand the pager over in PageRelay before 10:00 UTC on Monday, then confirm [1]."


def questions() -> list[str]:
    path = REPO / "tests/fixtures/sample_questions.jsonl"
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Proc:
    """A child process whose first stderr (or stdout) line carries its URL."""

    def __init__(self, args: list[str], env: dict[str, str], pattern: str, stream: str) -> None:
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        )
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        assert pipe is not None
        line = pipe.readline()
        match = re.search(pattern, line)
        if match is None:
            self.stop()
            raise SystemExit(f"{' '.join(args[:4])} did not start: {line}{pipe.read()[-2000:]}")
        self.url = match.group(0)
        self._pipe = pipe  # kept open (and unread: these processes say little after start)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def one(http: Any, url: str, question: str) -> float:
    """Stream one answer; seconds from sending the request to the first content byte."""
    body = {"model": "ragcli", "messages": [{"role": "user", "content": question}], "stream": True}
    started = time.perf_counter()
    ttft = None
    async with http.stream("POST", url + "/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}: {await response.aread()}")
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("error"):
                raise RuntimeError(f"{url}: {event['error']}")
            delta = (event.get("choices") or [{}])[0].get("delta") or {}
            if ttft is None and delta.get("content"):
                ttft = time.perf_counter() - started
    if ttft is None:
        raise RuntimeError(f"{url}: no answer")
    return ttft


async def load(replicas: list[str], qs: list[str], concurrency: int, n: int) -> dict[str, Any]:
    """`n` requests, `concurrency` at a time, round-robin over the replicas."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    todo = iter(range(n))
    ttfts: list[float] = []
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def worker() -> None:
            for i in todo:
                ttfts.append(await one(http, replicas[i % len(replicas)], qs[i % len(qs)]))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": n,
        "seconds": round(wall, 3),
        "req_per_s": round(n / wall, 2),
        "ttft_p50_ms": round(statistics.median(ttfts) * 1000, 1),
        "ttft_p99_ms": round(pct(ttfts, 0.99) * 1000, 1),
        "ttft_max_ms": round(max(ttfts) * 1000, 1),
    }


def llm_stats(endpoints: list[Proc], reset: dict[str, Any] | None = None) -> list[dict]:
    import httpx

    out = []
    for ep in endpoints:
        root = ep.url[: -len("/v1")]
        out.append(httpx.get(root + "/_stats").json())
        if reset is not None:
            httpx.post(root + "/_reset", json=reset).raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--requests", type=int, default=8, help="requests per unit of concurrency")
    parser.add_argument("--min-requests", type=int, default=40)
    parser.add_argument("--slow-concurrency", type=int, default=8)
    parser.add_argument("--slow-requests", type=int, default=400)
    parser.add_argument("--fixed-hedge-ms", default="500")
    benchmeta.add_common(parser, "serve_load")
    args = parser.parse_args()
    benchmeta.apply_quick(
        args, parser, concurrency="1,8", requests=2, min_requests=8, slow_requests=40
    )
    levels = [int(c) for c in args.concurrency.split(",")]
    qs = questions()
    t_start = time.perf_counter()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    started: list[Any] = []
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            chroma = ChromaServer(Path(tmp) / "chroma", Path(tmp) / "chroma.log")
            started.append(chroma)
            redis = RedisServer(Path(tmp) / "redis.log")
            started.append(redis)
            env = {**base_env, "RAGCLI_HOME": str(Path(tmp) / "home")}
            ragcli = [sys.executable, "-m", "ragcli", "--chroma-url", chroma.url]
            ragcli += ["--redis-url", redis.url + "/0"]
            subprocess.run(
                [*ragcli, "ingest", str(REPO / "sample_corpus")],
                env=env,
                check=True,
                capture_output=True,
                cwd=REPO,
            )
            llm_args = [sys.executable, "-m", "tests.support.openai_server", "--ttft", "0.3"]
            llm_args += ["--ttft-jitter", "0.1", "--token-gap", "0.01", "--reply", REPLY]
            llm_args += ["--record-bodies", "false", "--seed"]
            endpoints = []
            for seed in ("1", "2"):
                endpoints.append(Proc([*llm_args, seed], base_env, r"http://\S+/v1", "stdout"))
                started.append(endpoints[-1])
            serve_env = {
                **env,
                "RAGCLI_LLM_ENDPOINTS": ",".join(e.url for e in endpoints),
                "RAGCLI_LLM_MODEL": "test-model",
                "RAGCLI_NO_CACHE": "answer",
            }

            def replicas(hedge: str) -> list[Proc]:
                out = []
                for _ in range(2):
                    out.append(
                        Proc(
                            [*ragcli, "serve", "--port", "0", "--max-concurrency", "256"],
                            {**serve_env, "RAGCLI_HEDGE_DELAY_MS": hedge},
                            r"http://\S+/v1",
                            "stderr",
                        )
                    )
                    started.append(out[-1])
                return out

            def measured(hedge: str, steps: list[tuple[int, int]]) -> list[dict]:
                served = replicas(hedge)
                urls = [r.url for r in served]
                try:
                    asyncio.run(load(urls, qs, 8, 96))  # warm-up: p95 windows, connections
                    llm_stats(endpoints, reset={})
                    rows = []
                    for concurrency, n in steps:
                        row = asyncio.run(load(urls, qs, concurrency, n))
                        got = llm_stats(endpoints, reset={})
                        sent = sum(s["chat"] for s in got)
                        row.update(
                            hedge=hedge,
                            llm_requests=sent,
                            extra_llm_requests=sent - n,
                            extra_pct=round(100 * (sent - n) / n, 1),
                            cancelled=sum(s["disconnects"] for s in got),
                            slow_first_tokens=sum(s["slow"] for s in got),
                            per_endpoint=[s["chat"] for s in got],
                        )
                        rows.append(row)
                        print(_row(row), flush=True)
                    return rows
                finally:
                    for r in served:
                        r.stop()
                        started.remove(r)

            print(_header("step 1: two healthy endpoints (TTFT 300 ± 100 ms), hedge auto"))
            steps = [(c, max(args.min_requests, c * args.requests)) for c in levels]
            result["concurrency"] = measured("auto", steps)
            slow = {"slow_rate": 0.1, "slow_ttft_s": 3.0}
            print(
                _header(
                    "step 2: endpoint B slow (10 % of its requests: 3 s to first token), "
                    f"concurrency {args.slow_concurrency}"
                )
            )
            result["slow_endpoint"] = {"endpoint_b": slow, "rows": []}
            for hedge in ("off", "auto", args.fixed_hedge_ms):
                # B slow from the warm-up on: only endpoint B's settings change
                _set_slow(endpoints[1], slow)
                rows = measured(hedge, [(args.slow_concurrency, args.slow_requests)])
                _set_slow(endpoints[1], {"slow_rate": 0.0})
                result["slow_endpoint"]["rows"] += rows
        finally:
            for proc in reversed(started):
                proc.stop()
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(f"total {result['wall_s']} s")
    benchmeta.write_result(args.out, result, args)


def _set_slow(endpoint: Proc, changes: dict[str, Any]) -> None:
    import httpx

    httpx.post(endpoint.url[: -len("/v1")] + "/_reset", json=changes).raise_for_status()


def _header(title: str) -> str:
    cols = ("hedge", "conc", "reqs", "req/s", "TTFT p50", "TTFT p99", "max", "LLM reqs", "extra")
    widths = (6, 5, 6, 8, 10, 10, 9, 10, 8)
    return f"\n{title}\n" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['hedge']:>6}{r['concurrency']:>5}{r['requests']:>6}{r['req_per_s']:>8.1f}"
        f"{r['ttft_p50_ms']:>8.0f}ms{r['ttft_p99_ms']:>8.0f}ms{r['ttft_max_ms']:>7.0f}ms"
        f"{r['llm_requests']:>10}{r['extra_pct']:>7.1f}%"
    )


if __name__ == "__main__":
    main()
