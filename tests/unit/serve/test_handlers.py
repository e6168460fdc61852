"""The server's handlers in-process (Starlette's TestClient, lifespan included) over a copy
of the ingested sample corpus: chat completions whole and streamed, /v1/retrieve, /healthz,
/metrics, refused requests in the OpenAI error shape, and errors mid-request."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from ragcli.core.config import Settings
from ragcli.core.errors import ProviderError
from ragcli.retrieval.events import Event, Query, Span, TokenEvent
from ragcli.serve.server import create_app
from ragcli.serve.service import Service
from tests.support.cli import copy_home

Q = "How do I rotate the on-call pager?"
PAGER = "runbooks/rotate-on-call-pager.md"
SOURCE_KEYS = {"number", "rank", "source", "path", "title", "partition", "date", "score",
               "chunk_id", "relevance"}  # fmt: skip
CHUNK_KEYS = {"id", "score", "text", "source", "path", "title", "partition", "date"}


@pytest.fixture(scope="module")
def client(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("serve") / "home"
    copy_home(sample_home, home)  # the answers written to its caches stay here
    settings = replace(Settings(), data_dir=home).validate()
    with TestClient(create_app(settings, max_concurrency=4, request_timeout=30)) as c:
        yield c


def service(client: TestClient) -> Service:
    return client.app.state.service  # type: ignore[attr-defined]


def chat(q: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": q}], **extra}


def sse(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any] | str]:
    """The SSE events of a streamed chat completion ("[DONE]" as a string)."""
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in r.iter_lines() if x]
    assert all(x.startswith("data: ") for x in lines)
    return [x[6:] if x == "data: [DONE]" else json.loads(x[6:]) for x in lines]


def counter(client: TestClient, series: str) -> float:
    """One series' value in /metrics (0 when absent)."""
    text = client.get("/metrics").text
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_chat_completion_whole_then_streamed_from_the_answer_cache(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=chat(Q, k=3))
    assert r.status_code == 200
    whole = r.json()
    assert whole["id"].startswith("chatcmpl-") and whole["object"] == "chat.completion"
    assert whole["model"] == "m" and isinstance(whole["created"], int)
    (choice,) = whole["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    answer = choice["message"]["content"]
    assert "Hand Over" in answer
    usage = whole["usage"]
    assert usage["prompt_tokens"] == 0 and usage["completion_tokens"] == usage["total_tokens"] > 0
    assert whole["sources"][0]["path"] == PAGER and len(whole["sources"]) <= 3
    assert all(set(s) == SOURCE_KEYS for s in whole["sources"])
    info = whole["ragcli"]
    assert info["cached"] is False and info["ttft_ms"] > 0
    names = [s["name"] for s in info["spans"]]
    assert {"retrieve", "answer_cache", "prompt", "llm.first_token", "llm.stream"} <= set(names)
    for s in info["spans"]:  # timed from the question's arrival
        assert {"name", "start_ms", "ms"} <= set(s) <= {"name", "start_ms", "ms", "attrs"}
        assert 0 <= s["start_ms"] <= info["ttft_ms"] + 1000 and s["ms"] >= 0
    # The same question streamed: the answer cache replays it, piece by piece.
    events = sse(client, chat(Q, k=3, stream=True))
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    assert all(
        c["id"] == chunks[0]["id"] and c["object"] == "chat.completion.chunk" for c in chunks
    )
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert len(pieces) > 1 and "".join(pieces) == answer
    last = chunks[-1]
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert last["sources"] == whole["sources"]
    assert last["ragcli"]["cached"] == "exact" and last["ragcli"]["ttft_ms"] > 0
    assert info["answered"] is True and last["ragcli"]["answered"] is True
    assert [s["name"] for s in last["ragcli"]["spans"]][-2:] == ["llm.first_token", "llm.stream"]


def test_retrieve_returns_scored_chunks_and_spans(client: TestClient) -> None:
    r = client.post("/v1/retrieve", json={"query": Q, "k": 2})
    assert r.status_code == 200
    got = r.json()
    assert got["object"] == "list" and len(got["data"]) == 2
    assert got["data"][0]["path"] == PAGER and all(set(d) == CHUNK_KEYS for d in got["data"])
    assert got["data"][0]["score"] >= got["data"][1]["score"]
    spans = got["ragcli"]["spans"]
    assert {"embed", "retrieve"} <= {s["name"] for s in spans}
    assert all(set(s) == {"name", "ms"} for s in spans)  # no start, no attributes
    scoped = client.post("/v1/retrieve", json={"query": "annual leave", "partition": "hr"}).json()
    assert scoped["data"] and {d["partition"] for d in scoped["data"]} == {"hr"}


def test_healthz_says_what_is_loaded(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    assert health["max_concurrency"] == 4 and health["generator"] == "extractive"
    assert health["embedder"] and health["index_version"] is not None
    assert {"load.embedder", "load.index"} <= {w["name"] for w in health["warm"]}
    assert all(set(w) == {"name", "ms"} for w in health["warm"])
    assert "llm_endpoints" not in health


def test_metrics_count_requests_stages_ttft_and_cache_events(client: TestClient) -> None:
    ok = 'ragcli_requests_total{endpoint="/v1/retrieve",status="200"}'
    stage = 'ragcli_stage_seconds_count{stage="retrieve"}'
    before = (
        counter(client, ok),
        counter(client, stage),
        counter(client, "ragcli_ttft_seconds_count"),
    )
    assert client.post("/v1/retrieve", json={"query": "payroll date"}).status_code == 200
    assert client.post("/v1/chat/completions", json=chat("payroll date")).status_code == 200
    r = client.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert counter(client, ok) == before[0] + 1
    assert counter(client, stage) == before[1] + 2  # the retrieve and the chat
    assert counter(client, "ragcli_ttft_seconds_count") == before[2] + 1
    assert 'ragcli_cache_events_total{cache="retrieval",event=' in r.text
    assert "# TYPE ragcli_stage_seconds histogram" in r.text


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/v1/chat/completions", {"model": "m", "messages": []}, "messages"),
        ("/v1/chat/completions", [1, 2], "JSON object"),
        ("/v1/chat/completions", chat(Q, k=0), "k must be a positive integer"),
        ("/v1/chat/completions", {"messages": [{"role": "system", "content": "x"}]}, "no user"),
        ("/v1/retrieve", {"query": " "}, '"query" must be a non-empty string'),
        ("/v1/retrieve", {"query": "x", "partition": "nope"}, "unknown partition"),
        ("/v1/retrieve", "{not json", ""),
    ],
)
def test_a_bad_request_is_400_in_the_openai_error_shape(
    client: TestClient, path: str, body: Any, says: str
) -> None:
    status = f'ragcli_requests_total{{endpoint="{path}",status="400"}}'
    before = counter(client, status)
    if isinstance(body, str):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] is error["code"] is None
    assert says in error["message"]
    assert counter(client, status) == before + 1 and service(client).in_flight == 0


def test_over_the_concurrency_limit_is_503_with_retry_after(client: TestClient) -> None:
    svc = service(client)
    svc.max_concurrency, limit = 0, svc.max_concurrency
    try:
        for body in (chat(Q), chat(Q, stream=True)):
            r = client.post("/v1/chat/completions", json=body)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["type"] == "overloaded"
        r = client.post("/v1/retrieve", json={"query": Q})
        assert r.status_code == 503
    finally:
        svc.max_concurrency = limit
    assert counter(client, "ragcli_overloaded_total") >= 3 and svc.in_flight == 0


def failing_ask(after: int, error: Exception) -> Any:
    """A `Pipeline.ask` that yields one span and `after` tokens, then raises `error`."""

    async def ask(query: Query) -> AsyncIterator[Event]:
        yield Span("retrieve", 0, 1_000)
        for _ in range(after):
            yield TokenEvent("partial ")
        raise error

    return ask


def test_a_provider_error_is_502_or_a_final_error_chunk(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(client)
    monkeypatch.setattr(svc.pipeline, "ask", failing_ask(1, ProviderError("LLM said no")))
    errors = counter(client, "ragcli_provider_errors_total")
    r = client.post("/v1/chat/completions", json=chat(Q))
    assert r.status_code == 502
    assert r.json()["error"] == {
        "message": "LLM said no", "type": "provider_error", "param": None, "code": None
    }  # fmt: skip
    events = sse(client, chat(Q, stream=True))
    assert events[-1] == "[DONE]"
    assert events[1]["choices"][0]["delta"] == {"content": "partial "}  # type: ignore[index]
    last = events[-2]
    assert isinstance(last, dict) and last["choices"][0]["finish_reason"] == "stop"
    assert last["error"] == {"message": "LLM said no", "type": "provider_error"}
    assert "sources" not in last
    assert counter(client, "ragcli_provider_errors_total") == errors + 2
    status = 'ragcli_requests_total{endpoint="/v1/chat/completions",status="502"}'
    assert counter(client, status) >= 2 and svc.in_flight == 0


def test_a_request_over_its_time_limit_is_504_or_a_final_timeout_chunk(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(client)

    async def slow(query: Query) -> AsyncIterator[Event]:
        yield Span("retrieve", 0, 1_000)
        await asyncio.sleep(30)

    monkeypatch.setattr(svc.pipeline, "ask", slow)
    monkeypatch.setattr(svc, "request_timeout", 0.05)
    r = client.post("/v1/chat/completions", json=chat(Q))
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout"
    events = sse(client, chat(Q, stream=True))
    last = events[-2]
    assert isinstance(last, dict) and last["choices"][0]["finish_reason"] == "length"
    assert last["error"] == {"message": "the request timed out", "type": "timeout"}
    status = 'ragcli_requests_total{endpoint="/v1/chat/completions",status="504"}'
    assert counter(client, status) == 2 and svc.in_flight == 0
