"""`ragcli serve`: the same pipeline, warm, behind an OpenAI-compatible HTTP API.

Starlette on uvicorn (httptools, uvloop): one process keeps the model loaded, the index open
and the provider connections alive, so a client pays no cold start.

Endpoints
  POST /v1/chat/completions  OpenAI-compatible, streaming or not; the last user message is the
                             question; extra request fields: k, partition (str or list), since,
                             source. Sources come back in the extra field `sources` (of the
                             completion, or of the last SSE chunk before `[DONE]`), with the
                             server's stage timings in `ragcli.spans`.
  POST /v1/retrieve          {"query", k, partition, since, source} → top-k chunks with scores
  GET  /healthz              liveness and what is loaded
  GET  /metrics              Prometheus text: requests, stage latencies, TTFT, cache hit counts,
                             provider errors
Over `max_concurrency` requests in flight, it answers 503 with Retry-After at once; a request
running longer than `request_timeout` ends with 504 (or, mid-stream, a final error event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ragcli.core.errors import RagcliError, UsageError
from ragcli.retrieval.pipeline import DoneEvent, Pipeline, Query, SourcesEvent, Span, TokenEvent
from ragcli.serve.prometheus import Registry

if TYPE_CHECKING:
    from ragcli.core.config import Settings


def _error(status: int, message: str, type_: str, headers: dict[str, str] | None = None):
    body = {"error": {"message": message, "type": type_, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class _Refused(Exception):
    """A request answered with an error response instead of a result."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _parse(request: Request, question: Any) -> tuple[dict[str, Any], Query]:
    """The JSON body and the query it asks; 400 when either is malformed."""
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise UsageError("the body must be a JSON object")
        return body, _query(body, question(body))
    except (ValueError, RagcliError) as exc:
        raise _Refused(_error(400, str(exc), "invalid_request_error")) from None


def _admit(service: Service) -> None:
    if not service.admit():
        message = "ragcli serve is at its concurrency limit; retry shortly"
        raise _Refused(_error(503, message, "overloaded", {"Retry-After": "1"}))


async def _bounded(service: Service, work: Any) -> Any:
    """Admission control, the request time limit, and errors as HTTP statuses."""
    _admit(service)
    try:
        async with asyncio.timeout(service.request_timeout):
            return await work()
    except TimeoutError:
        raise _Refused(_error(504, "the request timed out", "timeout")) from None
    except UsageError as exc:
        raise _Refused(_error(400, str(exc), "invalid_request_error")) from None
    except RagcliError as exc:
        service.metrics.inc("ragcli_provider_errors_total")
        raise _Refused(_error(502, str(exc), "provider_error")) from None
    finally:
        service.release()


def _query(body: dict[str, Any], question: str) -> Query:
    parts = body.get("partition") or body.get("partitions") or ()
    if isinstance(parts, str):
        parts = (parts,)
    k = body.get("k")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise UsageError("k must be a positive integer")
    return Query(question, k, tuple(parts), body.get("since"), body.get("source"))


def _question(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UsageError("messages must be a non-empty list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if isinstance(content, str) and content.strip():
                return content
    raise UsageError("no user message with text content")


class Service:
    """The warm pipeline plus admission control and metrics."""

    def __init__(self, settings: Settings, max_concurrency: int, request_timeout: float) -> None:
        self.settings = settings
        self.pipeline = Pipeline(settings)
        self.max_concurrency = max_concurrency
        self.request_timeout = request_timeout
        self.in_flight = 0
        self.metrics = Registry()
        self.started = time.time()
        self.warm_spans: list[Span] = []
        m = self.metrics
        m.describe("ragcli_requests_total", "counter", "HTTP requests by endpoint and status.")
        m.describe("ragcli_stage_seconds", "histogram", "Pipeline stage durations.")
        m.describe("ragcli_ttft_seconds", "histogram", "Question received to first token.")
        m.describe("ragcli_cache_events_total", "counter", "Cache hits and misses by cache.")
        m.describe("ragcli_provider_errors_total", "counter", "Errors from the LLM/embedder.")
        m.describe("ragcli_overloaded_total", "counter", "Requests refused with 503.")

    async def start(self) -> None:
        self.warm_spans = await self.pipeline.warm()
        note = getattr(self.pipeline.generator, "warm_note", "")  # e.g. a local LLM's prefix
        if note:
            import sys

            print(f"ragcli serve: warmed: {note}", file=sys.stderr, flush=True)

    def admit(self) -> bool:
        if self.in_flight >= self.max_concurrency:
            self.metrics.inc("ragcli_overloaded_total")
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def record(self, spans: list[Span], done: DoneEvent | None, before: dict) -> None:
        for s in spans:
            self.metrics.observe("ragcli_stage_seconds", s.ms / 1000, stage=s.name)
        if done is not None and done.first_token_ns is not None:
            self.metrics.observe(
                "ragcli_ttft_seconds", (done.first_token_ns - done.started_ns) / 1e9
            )
        after = self.pipeline.counters()
        for cache, counts in after.items():
            for event in ("hits", "misses"):
                delta = counts.get(event, 0) - before.get(cache, {}).get(event, 0)
                if delta:
                    self.metrics.inc("ragcli_cache_events_total", delta, cache=cache, event=event)


def create_app(settings: Settings, max_concurrency: int = 64, request_timeout: float = 120.0):
    service = Service(settings, max_concurrency, request_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        yield
        service.pipeline.close()

    def respond(endpoint: str, response: Response) -> Response:
        service.metrics.inc(
            "ragcli_requests_total", endpoint=endpoint, status=str(response.status_code)
        )
        return response

    async def chat(request: Request) -> Response:
        endpoint = "/v1/chat/completions"
        try:
            body, query = await _parse(request, _question)
            model = str(body.get("model") or service.pipeline.generator.name)
            cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
            if body.get("stream"):
                _admit(service)  # released, and counted, when the stream ends
                return StreamingResponse(
                    _stream(service, query, model, cid, created, endpoint),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            spans, done, sources = await _bounded(service, lambda: _collect(service, query))
        except _Refused as refused:
            return respond(endpoint, refused.response)
        message = {"role": "assistant", "content": done.answer}
        return respond(
            endpoint,
            JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                    "usage": {
                        "prompt_tokens": 0,
                        "completion_tokens": done.tokens,
                        "total_tokens": done.tokens,
                    },
                    "sources": [s.as_dict() for s in sources],
                    "ragcli": _info(spans, done),
                }
            ),
        )

    async def retrieve(request: Request) -> Response:
        endpoint = "/v1/retrieve"

        def question(body: dict[str, Any]) -> str:
            text = body.get("query")
            if not isinstance(text, str) or not text.strip():
                raise UsageError('"query" must be a non-empty string')
            return text

        try:
            _, query = await _parse(request, question)
            before = service.pipeline.counters()
            ranked, spans = await _bounded(service, lambda: service.pipeline.retrieve(query))
        except _Refused as refused:
            return respond(endpoint, refused.response)
        service.record(spans, None, before)
        data = [
            {
                "id": c.id,
                "score": round(score, 6),
                "text": c.text,
                "source": c.source,
                "path": c.relpath,
                "title": c.title,
                "partition": c.partition,
                "date": c.date,
            }
            for c, score in ranked
        ]
        spans_out = [{"name": s.name, "ms": round(s.ms, 3)} for s in spans]
        return respond(
            endpoint, JSONResponse({"object": "list", "data": data, "ragcli": {"spans": spans_out}})
        )

    async def healthz(request: Request) -> Response:
        p = service.pipeline
        return JSONResponse(
            {
                "status": "ok",
                "uptime_s": round(time.time() - service.started, 1),
                "in_flight": service.in_flight,
                "max_concurrency": service.max_concurrency,
                "generator": p.generator.name,
                "embedder": p.embedder.cache_id,
                "index_version": p.catalog.version if p.catalog else None,
                "warm": [{"name": s.name, "ms": round(s.ms, 1)} for s in service.warm_spans],
                # several LLM endpoints: each one's load, recent TTFT and counters
                **(
                    {"llm_endpoints": p.generator.pool.snapshot()}
                    if len(getattr(p.generator, "pool", ())) > 1
                    else {}
                ),
            }
        )

    async def metrics(request: Request) -> Response:
        for role, part in (
            ("llm", service.pipeline.generator),
            ("embed", service.pipeline.embedder),
        ):
            pool = getattr(part, "pool", None)
            if pool is not None:
                service.metrics.export_pool(role, pool)
        return PlainTextResponse(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/retrieve", retrieve, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def _info(spans: list[Span], done: DoneEvent | None) -> dict[str, Any]:
    """The `ragcli` extra field: cache outcome, the server's TTFT and its stage spans."""
    ttft = (done.first_token_ns - done.started_ns) / 1e6 if done and done.first_token_ns else None
    return {
        "cached": (done.cached or False) if done else False,
        "ttft_ms": round(ttft, 3) if ttft is not None else None,
        "spans": _spans(spans, done),
    }


def _spans(spans: list[Span], done: DoneEvent | None) -> list[dict[str, Any]]:
    zero = done.started_ns if done else (spans[0].start_ns if spans else 0)
    return [
        {
            "name": s.name,
            "start_ms": round((s.start_ns - zero) / 1e6, 3),
            "ms": round(s.ms, 3),
            **({"attrs": s.attrs} if s.attrs else {}),
        }
        for s in spans
    ]


async def _collect(service: Service, query: Query):
    spans: list[Span] = []
    done: DoneEvent | None = None
    sources: list[Any] = []
    before = service.pipeline.counters()
    async for event in service.pipeline.ask(query):
        if isinstance(event, Span):
            spans.append(event)
        elif isinstance(event, SourcesEvent):
            sources = event.sources
        elif isinstance(event, DoneEvent):
            done = event
    service.record(spans, done, before)
    return spans, done, sources


async def _stream(
    service: Service, query: Query, model: str, cid: str, created: int, endpoint: str
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    spans: list[Span] = []
    sources: list[Any] = []
    done: DoneEvent | None = None
    before = service.pipeline.counters()
    status = "200"
    try:
        yield chunk({"role": "assistant", "content": ""})
        async with asyncio.timeout(service.request_timeout):
            async for event in service.pipeline.ask(query):
                if isinstance(event, TokenEvent):
                    yield chunk({"content": event.text})
                elif isinstance(event, Span):
                    spans.append(event)
                elif isinstance(event, SourcesEvent):
                    sources = event.sources
                elif isinstance(event, DoneEvent):
                    done = event
        yield chunk(
            {},
            "stop",
            sources=[s.as_dict() for s in sources],
            ragcli=_info(spans, done),
        )
    except TimeoutError:
        status = "504"
        yield chunk({}, "length", error={"message": "the request timed out", "type": "timeout"})
    except RagcliError as exc:
        status = "502"
        service.metrics.inc("ragcli_provider_errors_total")
        yield chunk({}, "stop", error={"message": str(exc), "type": "provider_error"})
    finally:
        service.release()
        service.record(spans, done, before)
        service.metrics.inc("ragcli_requests_total", endpoint=endpoint, status=status)
    yield b"data: [DONE]\n\n"


def run(
    settings: Settings,
    host: str,
    port: int,
    max_concurrency: int,
    request_timeout: float,
    ready: Any = None,
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get up to 30 s to finish."""
    import uvicorn

    app = create_app(settings, max_concurrency, request_timeout)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=30,
        access_log=False,
    )
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            ready(server)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
