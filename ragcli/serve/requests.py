"""How `serve` reads a request and refuses one: the JSON body and the query it asks,
admission control, the request time limit, and errors in the OpenAI error shape."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ragcli.core.errors import RagcliError, UsageError
from ragcli.retrieval.events import Query
from ragcli.serve.guard import openai_error

if TYPE_CHECKING:
    from ragcli.serve.service import Service

T = TypeVar("T")


def error(
    status: int,
    message: str,
    type_: str,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Response:
    """An error response in the OpenAI shape: {"error": {message, type, param, code}}."""
    return openai_error(status, message, type_, code, headers)


class Refused(Exception):
    """A request answered with an error response instead of a result."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def parse(
    request: Request, question: Callable[[dict[str, Any]], str]
) -> tuple[dict[str, Any], Query]:
    """The JSON body and the query it asks; 400 when either is malformed."""
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise UsageError("the body must be a JSON object")
        return body, query_of(body, question(body))
    except (ValueError, RagcliError) as exc:
        raise Refused(error(400, str(exc), "invalid_request_error")) from None


def admit(service: Service) -> None:
    """Take a place among the requests in flight, or refuse with 503 and Retry-After."""
    if not service.admit():
        message = "ragcli serve is at its concurrency limit; retry shortly"
        raise Refused(error(503, message, "overloaded", {"Retry-After": "1"}))


async def bounded(service: Service, work: Callable[[], Awaitable[T]]) -> T:
    """Admission control, the request time limit, and errors as HTTP statuses."""
    admit(service)
    try:
        async with asyncio.timeout(service.request_timeout):
            return await work()
    except TimeoutError:
        raise Refused(error(504, "the request timed out", "timeout")) from None
    except UsageError as exc:
        raise Refused(error(400, str(exc), "invalid_request_error")) from None
    except RagcliError as exc:
        service.metrics.inc("ragcli_provider_errors_total")
        raise Refused(error(502, str(exc), "provider_error")) from None
    finally:
        service.release()


def query_of(body: dict[str, Any], question: str) -> Query:
    """The query a body asks: k, partition (str or list), since, source."""
    parts = body.get("partition") or body.get("partitions") or ()
    if isinstance(parts, str):
        parts = (parts,)
    if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
        raise UsageError("partition must be a string or a list of strings")
    k = body.get("k")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise UsageError("k must be a positive integer")
    return Query(question, k, tuple(parts), body.get("since"), body.get("source"))


def chat_question(body: dict[str, Any]) -> str:
    """The last user message with text: the question of a chat completion."""
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


def retrieve_question(body: dict[str, Any]) -> str:
    """The `query` of a /v1/retrieve body."""
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise UsageError('"query" must be a non-empty string')
    return text
