"""A streamed chat completion: the answer as OpenAI-compatible SSE chunks, the sources and
the server's `ragcli` timings in the last chunk before `data: [DONE]`, and a request that
fails or times out mid-stream ended by a final error chunk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import RagcliError
from ragcli.retrieval.answer import Answer, stream_tokens
from ragcli.retrieval.events import Query

if TYPE_CHECKING:
    from ragcli.serve.service import Service


@dataclass(frozen=True)
class Completion:
    """What names one chat completion: its id, creation time and model."""

    id: str
    created: int
    model: str

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        """One `chat.completion.chunk` as an SSE `data:` line."""
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n".encode()


def ragcli_info(answer: Answer) -> dict[str, Any]:
    """The `ragcli` extra field: cache outcome, whether it answered (False: no answer in the
    indexed documents), the server's TTFT and its stage spans."""
    ttft = answer.ttft_ms
    return {
        "cached": answer.cached or False,
        "answered": answer.answered,
        "ttft_ms": round(ttft, 3) if ttft is not None else None,
        "spans": answer.span_dicts(),
    }


async def chat_stream(
    service: Service,
    query: Query | None,
    completion: Completion,
    endpoint: str,
    labels: dict[str, str] | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed answer (`service.ask`: None answers from no sources); the
    caller admitted it, this releases it. `labels`: more labels of its request count."""
    answer = Answer()
    before = service.pipeline.counters()
    status = "200"
    try:
        yield completion.chunk({"role": "assistant", "content": ""})
        async with asyncio.timeout(service.request_timeout):
            async for text in stream_tokens(service.ask(query), answer):
                yield completion.chunk({"content": text})
        yield completion.chunk(
            {}, "stop", sources=answer.source_dicts(), ragcli=ragcli_info(answer)
        )
    except TimeoutError:
        status = "504"
        error = {"message": "the request timed out", "type": "timeout"}
        yield completion.chunk({}, "length", error=error)
    except RagcliError as exc:
        status = "502"
        service.metrics.inc("ragcli_provider_errors_total")
        yield completion.chunk({}, "stop", error={"message": str(exc), "type": "provider_error"})
    finally:
        service.release()
        service.record(answer.spans, answer.done, before)
        service.metrics.add(
            "ragcli_requests_total", {"endpoint": endpoint, "status": status, **(labels or {})}
        )
    yield b"data: [DONE]\n\n"
