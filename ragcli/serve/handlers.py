"""The HTTP handlers of `serve`, one method per route, over the warm `Service`.

POST /v1/chat/completions  OpenAI-compatible, streaming (sse.py) or not
POST /v1/retrieve          top-k chunks with scores
GET  /healthz              liveness and what is loaded
GET  /metrics              Prometheus text
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from ragcli.core.errors import RagcliError
from ragcli.retrieval.answer import Answer, collect, span_dicts
from ragcli.retrieval.events import Query
from ragcli.serve.guard import API_KEY, GUARDED
from ragcli.serve.keys import ApiKey
from ragcli.serve.requests import (
    Refused,
    admit,
    bounded,
    chat_question,
    error,
    parse,
    retrieve_question,
)
from ragcli.serve.service import Service
from ragcli.serve.sse import Completion, chat_stream, ragcli_info
from ragcli.serve.tenancy import PartitionNotAllowed, restrict

CHAT = "/v1/chat/completions"
RETRIEVE = "/v1/retrieve"


def api_key(request: Request) -> ApiKey | None:
    """The request's API key, as the Guard found it (None: serve without keys, the daemon)."""
    key: ApiKey | None = request.scope.get(API_KEY)
    return key


def key_labels(request: Request) -> dict[str, str]:
    """The `key` label of the request's metrics: the key's name, when keys are on."""
    key = api_key(request)
    return {"key": key.name} if key is not None else {}


class Handlers:
    """The routes' handlers; every answered chat or retrieve request is counted by status
    (and by API key name, when keys are on)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def respond(self, endpoint: str, response: Response, request: Request) -> Response:
        labels = {"endpoint": endpoint, "status": str(response.status_code)}
        self.service.metrics.add("ragcli_requests_total", {**labels, **key_labels(request)})
        return response

    async def scoped(self, request: Request, query: Query) -> Query | None:
        """`query` within the partitions of the request's key (tenancy.py); 403 for a
        partition outside them. None: the key's scope holds no partition of the index."""
        key = api_key(request)
        if key is None or key.partitions is None:
            return query
        try:
            known = await self.service.known_partitions()
            return restrict(query, key.partitions, known)
        except PartitionNotAllowed as exc:
            message = f"this API key may not search partition {exc.partition!r}"
            raise Refused(
                error(403, message, "permission_error", code="partition_not_allowed")
            ) from None
        except RagcliError as exc:
            raise Refused(error(503, str(exc), "not_ready")) from None

    async def chat(self, request: Request) -> Response:
        service = self.service
        try:
            body, asked = await parse(request, chat_question)
            query = await self.scoped(request, asked)
            model = str(body.get("model") or service.pipeline.generator.name)
            completion = Completion(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), model)
            if body.get("stream"):
                admit(service)  # released, and counted, when the stream ends
                return StreamingResponse(
                    chat_stream(service, query, completion, CHAT, key_labels(request)),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            answer = await bounded(service, lambda: self._answer(query))
        except Refused as refused:
            return self.respond(CHAT, refused.response, request)
        return self.respond(CHAT, JSONResponse(completion_body(completion, answer)), request)

    async def _answer(self, query: Query | None) -> Answer:
        """One whole answer; its spans, TTFT and cache counts recorded once it is done."""
        before = self.service.pipeline.counters()
        answer = await collect(self.service.ask(query))
        self.service.record(answer.spans, answer.done, before)
        return answer

    async def retrieve(self, request: Request) -> Response:
        service = self.service
        try:
            _, asked = await parse(request, retrieve_question)
            query = await self.scoped(request, asked)
            before = service.pipeline.counters()
            ranked, spans = (
                await bounded(service, lambda: service.pipeline.retrieve(query))
                if query is not None
                else ([], [])
            )
        except Refused as refused:
            return self.respond(RETRIEVE, refused.response, request)
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
        ragcli = {"spans": span_dicts(spans, attrs=False)}
        return self.respond(
            RETRIEVE, JSONResponse({"object": "list", "data": data, "ragcli": ragcli}), request
        )

    async def healthz(self, request: Request) -> Response:
        service, p = self.service, self.service.pipeline
        if request.scope.get(GUARDED) and api_key(request) is None:
            return JSONResponse({"status": "ok"})  # for load balancers: nothing more
        pool = getattr(p.generator, "pool", None)
        return JSONResponse(
            {
                "status": "ok",
                "uptime_s": round(time.time() - service.started, 1),
                "in_flight": service.in_flight,
                "max_concurrency": service.max_concurrency,
                "generator": p.generator.name,
                "embedder": p.embedder.cache_id,
                "index_version": p.catalog.version if p.catalog else None,
                "warm": span_dicts(service.warm_spans, ndigits=1, attrs=False),
                # several LLM endpoints: each one's load, recent TTFT and counters
                **(
                    {"llm_endpoints": pool.snapshot()} if pool is not None and len(pool) > 1 else {}
                ),
            }
        )

    async def metrics(self, request: Request) -> Response:
        service = self.service
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


def completion_body(completion: Completion, answer: Answer) -> dict[str, Any]:
    """A whole `chat.completion`: the answer, its sources, and the server's `ragcli` timings."""
    done = answer.done
    assert done is not None  # collect() returned: the pipeline's last event arrived
    message = {"role": "assistant", "content": done.answer}
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {
            "prompt_tokens": 0,
            "completion_tokens": done.tokens,
            "total_tokens": done.tokens,
        },
        "sources": answer.source_dicts(),
        "ragcli": ragcli_info(answer),
    }
