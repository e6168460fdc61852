"""`ragcli serve` as a real process on 127.0.0.1, used through the real `openai` client."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.cli import Run
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig, wait_for
from tests.support.serve import Served

Q = "How do I rotate the on-call pager?"


def content(lines: list[str]) -> str:
    """The text streamed in SSE chat chunks."""
    return "".join(
        json.loads(x[6:])["choices"][0]["delta"].get("content") or ""
        for x in lines
        if x.startswith("data: {")
    )


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
    # The passing budget (60 s) is thousands of times the TTFT of a cached local answer, so
    # load cannot fail it, and 0 ms always fails: the test is the verdicts, not the speed.
    proc = ragcli(
        "profile", Q, "--server", served.url, "--runs", "3", "--warmup", "1",
        "--budget", "ttft_p95=60s", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["schema"] == "ragcli.profile-remote/1" and out["runs"] == 3
    client, inside = out["client_ttft_ms"], out["server_ttft_ms"]
    assert client["n"] == inside["n"] == 3 and out["http_and_client_ms"]["n"] == 3
    # causal, not a threshold: the client's TTFT contains the server's
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
    """Ordered by events, not by sleeps: the LLM holds the first answer until the second
    request has been refused and serve, sent SIGTERM, has stopped listening."""
    assert ragcli("ingest", str(corpus)).returncode == 0
    with OpenAICompatibleServer(ServerConfig(reply="one two three four five")) as llm:
        llm.hold()
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
            with httpx.stream("POST", s.url + "/chat/completions", json=body, timeout=120) as r:
                lines.extend(r.iter_lines())

        first = threading.Thread(target=stream)
        first.start()
        try:
            wait_for(lambda: llm.waiting == 1, what="the first request to reach the LLM")
            busy = httpx.post(s.url + "/chat/completions", json=body, timeout=30)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            s.proc.send_signal(signal.SIGTERM)  # while the first answer is still in flight
            wait_for(lambda: not s.listening(), what="serve to begin its shutdown")
            # Shutting down, serve must keep the held request alive (its grace is 30 s). Seeing
            # that takes a wait: 2 s, where a shutdown that cut the stream would already have
            # cancelled it (the LLM would see a disconnect). Load only lengthens the 2 s.
            threading.Event().wait(2.0)
            assert s.proc.poll() is None and llm.waiting == 1 and content(lines) == ""
            assert llm.counters.disconnects == 0
        finally:
            llm.release()
        rc = s.proc.wait(timeout=60)
        first.join(timeout=30)
    assert [x for x in lines if x][-1] == "data: [DONE]"  # the in-flight stream finished
    assert content(lines) == "one two three four five"
    assert llm.counters.chat == llm.counters.held == 1  # the refused request never reached it
    # uvicorn re-raises SIGTERM once shut down, so the status says "ended by SIGTERM"
    assert rc in (0, -signal.SIGTERM)


def test_request_timeout_ends_a_request_and_cancels_the_llm_request(
    ragcli: Run, home: Path, corpus: Path
) -> None:
    """`--request-timeout`: a request still running then ends, 504 (a stream: a last error
    event, then [DONE]), and its LLM request is cancelled. The LLM holds both answers for as
    long as the test runs, so only the timeout can end them: no race. The 5 s only has to
    outlast retrieval before the LLM request (ms, even under load)."""
    assert ragcli("ingest", str(corpus)).returncode == 0
    with OpenAICompatibleServer(ServerConfig(reply="never sent")) as llm:
        llm.hold()
        s = Served(
            home,
            "--request-timeout",
            "5",
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="k",
            RAGCLI_NO_CACHE="answer",
        )
        body = {"model": "m", "messages": [{"role": "user", "content": Q}]}
        got: dict[str, object] = {}

        def whole() -> None:
            got["whole"] = httpx.post(s.url + "/chat/completions", json=body, timeout=60)

        def stream() -> None:
            with httpx.stream(
                "POST", s.url + "/chat/completions", json={**body, "stream": True}, timeout=60
            ) as r:
                got["stream"] = (r.status_code, list(r.iter_lines()))

        try:
            threads = [threading.Thread(target=whole), threading.Thread(target=stream)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=90)
            # both LLM requests were cancelled: the LLM saw each client go away while held
            wait_for(lambda: llm.in_flight == 0, what="the LLM requests to be cancelled")
            metrics = httpx.get(s.root + "/metrics").text
            health = httpx.get(s.root + "/healthz").json()
        finally:
            llm.release()
            s.stop()
    response = got["whole"]
    assert isinstance(response, httpx.Response) and response.status_code == 504
    assert response.json()["error"] == {
        "message": "the request timed out",
        "type": "timeout",
        "param": None,
        "code": None,
    }
    status, lines = got["stream"]  # type: ignore[misc]
    events = [x for x in lines if x]
    assert status == 200 and events[-1] == "data: [DONE]"
    last = json.loads(events[-2][6:])
    assert last["error"] == {"message": "the request timed out", "type": "timeout"}
    assert last["choices"][0]["finish_reason"] == "length"
    assert content(lines) == ""  # nothing of the held answer came through
    assert llm.counters.chat == llm.counters.held == 2
    assert llm.counters.disconnects == 2
    assert 'ragcli_requests_total{endpoint="/v1/chat/completions",status="504"} 2' in metrics
    assert health["in_flight"] == 0  # both admission slots were given back
