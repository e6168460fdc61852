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

from ragcli.retrieval.answer import Answer, collect, span_dicts
from ragcli.retrieval.events import Query
from ragcli.serve.requests import (
    Refused,
    admit,
    bounded,
    chat_question,
    parse,
    retrieve_question,
)
from ragcli.serve.service import Service
from ragcli.serve.sse import Completion, chat_stream, ragcli_info

CHAT = "/v1/chat/completions"
RETRIEVE = "/v1/retrieve"


class Handlers:
    """The routes' handlers; every answered chat or retrieve request is counted by status."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def respond(self, endpoint: str, response: Response) -> Response:
        self.service.metrics.inc(
            "ragcli_requests_total", endpoint=endpoint, status=str(response.status_code)
        )
        return response

    async def chat(self, request: Request) -> Response:
        service = self.service
        try:
            body, query = await parse(request, chat_question)
            model = str(body.get("model") or service.pipeline.generator.name)
            completion = Completion(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), model)
            if body.get("stream"):
                admit(service)  # released, and counted, when the stream ends
                return StreamingResponse(
                    chat_stream(service, query, completion, CHAT),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            answer = await bounded(service, lambda: self._answer(query))
        except Refused as refused:
            return self.respond(CHAT, refused.response)
        return self.respond(CHAT, JSONResponse(completion_body(completion, answer)))

    async def _answer(self, query: Query) -> Answer:
        """One whole answer; its spans, TTFT and cache counts recorded once it is done."""
        before = self.service.pipeline.counters()
        answer = await collect(self.service.pipeline.ask(query))
        self.service.record(answer.spans, answer.done, before)
        return answer

    async def retrieve(self, request: Request) -> Response:
        service = self.service
        try:
            _, query = await parse(request, retrieve_question)
            before = service.pipeline.counters()
            ranked, spans = await bounded(service, lambda: service.pipeline.retrieve(query))
        except Refused as refused:
            return self.respond(RETRIEVE, refused.response)
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
            RETRIEVE, JSONResponse({"object": "list", "data": data, "ragcli": ragcli})
        )

    async def healthz(self, request: Request) -> Response:
        service, p = self.service, self.service.pipeline
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
