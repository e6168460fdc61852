"""`ragcli serve` as a real process on 127.0.0.1, used through the real `openai` client."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import REPO, Run, clean_env
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

Q = "How do I rotate the on-call pager?"


class Served:
    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env=clean_env(home, **env),
        )
        line = self.proc.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
        assert match, line + self.proc.stderr.read()
        self.root = match.group(1)
        self.url = self.root + "/v1"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def served(ragcli: Run, home: Path, corpus: Path) -> Iterator[Served]:
    assert ragcli("ingest", str(corpus)).returncode == 0
    s = Served(home)
    yield s
    s.stop()


def test_openai_client_streams_with_sources(served: Served) -> None:
    client = openai.OpenAI(base_url=served.url, api_key="unused")
    stream = client.chat.completions.create(
        model="ragcli", messages=[{"role": "user", "content": Q}], stream=True
    )
    text, sources = "", []
    for event in stream:
        if event.choices and event.choices[0].delta.content:
            text += event.choices[0].delta.content
        sources = (event.model_extra or {}).get("sources", sources)
    assert "open PageRelay and click Hand Over" in text
    assert sources and sources[0]["path"] == "ops/pager.md"
    whole = client.chat.completions.create(
        model="ragcli",
        messages=[{"role": "user", "content": "annual leave"}],
        extra_body={"partition": "hr", "k": 2},
    )
    extra = whole.model_extra or {}
    assert "25 days of annual leave" in whole.choices[0].message.content
    assert {s["partition"] for s in extra["sources"]} == {"hr"} and len(extra["sources"]) <= 2
    assert {s["name"] for s in extra["ragcli"]["spans"]} >= {"retrieve", "llm.first_token"}


def test_retrieve_health_metrics_and_errors(served: Served) -> None:
    with httpx.Client(base_url=served.root) as http:
        got = http.post("/v1/retrieve", json={"query": Q, "k": 2}).json()
        assert [d["path"] for d in got["data"]][0] == "ops/pager.md" and len(got["data"]) == 2
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and {w["name"] for w in health["warm"]} >= {
            "load.embedder",
            "load.index",
        }
        bad = http.post("/v1/chat/completions", json={"model": "x", "messages": []})
        assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
        bad = http.post("/v1/retrieve", json={"query": "x", "partition": "nope"})
        assert bad.status_code == 400 and "unknown partition" in bad.json()["error"]["message"]
        metrics = http.get("/metrics").text
    assert 'ragcli_requests_total{endpoint="/v1/retrieve",status="200"} 1' in metrics
    assert 'ragcli_stage_seconds_bucket{le="+Inf",stage="retrieve"}' in metrics or (
        'ragcli_stage_seconds_bucket{stage="retrieve",le="+Inf"}' in metrics
    )


def test_ask_uses_a_running_server(served: Served, ragcli: Run) -> None:
    local = json.loads(ragcli("ask", Q, "--json").stdout)
    remote = ragcli("ask", Q, "--json", RAGCLI_SERVER=served.url)
    assert remote.returncode == 0, remote.stderr
    out = json.loads(remote.stdout)
    assert out["answer"] == local["answer"] and out["server"]["spans"]
    assert [s["path"] for s in out["sources"]] == [s["path"] for s in local["sources"]]
    down = ragcli("ask", Q, "--server", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot connect to the ragcli server" in down.stderr


def test_profile_against_a_running_server(served: Served, ragcli: Run) -> None:
    proc = ragcli(
        "profile", Q, "--server", served.url, "--runs", "3", "--warmup", "1",
        "--budget", "ttft_p95=60s", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["schema"] == "ragcli.profile-remote/1" and out["runs"] == 3
    client, inside = out["client_ttft_ms"], out["server_ttft_ms"]
    assert client["n"] == inside["n"] == 3 and out["http_and_client_ms"]["n"] == 3
    assert client["p50"] >= inside["p50"] > 0  # the client waits for the server, and the hop
    assert out["cached_runs"] == 3  # the warm-up answered it once: the answer cache did the rest
    assert out["budgets"][0]["ok"] is True
    table = ragcli("profile", Q, "--server", served.url, "--runs", "2").stdout
    assert "TTFT seen by this client" in table and "TTFT inside the server" in table
    over = ragcli("profile", Q, "--server", served.url, "--runs", "2", "--budget", "ttft_p50=0ms")
    assert over.returncode == 4 and "over budget" in over.stderr
    local_only = ragcli("profile", Q, "--server", served.url, "--ablate")
    assert local_only.returncode == 2 and "--ablate profiles this process" in local_only.stderr


def test_overload_503_and_graceful_shutdown(ragcli: Run, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    slow = ServerConfig(reply="one two three four five", ttft_s=1.0, token_gap_s=0.2)
    with OpenAICompatibleServer(slow) as llm:
        s = Served(
            home,
            "--max-concurrency",
            "1",
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="k",
            RAGCLI_NO_CACHE="answer",
        )
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": Q}]}
        lines: list[str] = []

        def stream() -> None:
            with httpx.stream("POST", s.url + "/chat/completions", json=body, timeout=30) as r:
                lines.extend(r.iter_lines())

        first = threading.Thread(target=stream)
        first.start()
        while llm.counters.chat == 0:  # the first request has reached the LLM
            threading.Event().wait(0.05)
        busy = httpx.post(s.url + "/chat/completions", json=body, timeout=30)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        rc = s.stop()  # SIGTERM while the first answer is still streaming
        first.join(timeout=30)
    assert [x for x in lines if x][-1] == "data: [DONE]"  # the in-flight stream finished
    assert (
        "".join(
            json.loads(x[6:])["choices"][0]["delta"].get("content") or ""
            for x in lines
            if x.startswith("data: {")
        )
        == "one two three four five"
    )
    # uvicorn re-raises SIGTERM once shut down, so the status says "ended by SIGTERM"
    assert rc in (0, -signal.SIGTERM)
