"""The one error mapping of OpenAI-compatible requests (providers/errors.py): which failures
another attempt may cure, the Retry-After a server asked for, and the user's one line (never
the API key). Real `openai` exception objects over real httpx responses; no server."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import openai
import pytest

from ragcli.core.errors import ProviderError
from ragcli.providers.errors import (
    EndpointError,
    classify,
    describe,
    endpoint_error,
    retry_after,
    scrub,
)

URL = "http://127.0.0.1:9/v1/embeddings"
KEY = "sk-test-0badc0ffee"
# Any: the openai client types these with the HTTP library it bundles (httpx or a fork of it)
REQUEST: Any = httpx.Request("POST", URL)


CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(
    status: int, headers: dict[str, str] | None = None, body: object = None
) -> openai.APIStatusError:
    """The exception the openai client raises for an HTTP `status` answer."""
    response: Any = httpx.Response(status, headers=headers or {}, request=REQUEST)
    default = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return CLASSES.get(status, default)(f"HTTP {status}", response=response, body=body)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
def test_transient_statuses_are_retryable(status: int) -> None:
    failure = classify(status_error(status))
    assert failure is not None
    assert failure.retryable and not failure.throttled and not failure.quota
    assert failure.status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_caller_mistakes_are_not_retryable(status: int) -> None:
    failure = classify(status_error(status, {"retry-after": "3"}))
    assert failure is not None and not failure.retryable and failure.retry_after is None
    err = endpoint_error(status_error(status), "the LLM provider at x")
    assert isinstance(err, ProviderError) and not err.retryable


def test_429_is_throttled_with_the_servers_retry_after() -> None:
    failure = classify(status_error(429, {"retry-after": "7"}))
    assert failure is not None
    assert failure.retryable and failure.throttled and not failure.quota
    assert failure.retry_after == 7.0
    err = endpoint_error(status_error(429, {"retry-after-ms": "250"}), "the LLM provider at x")
    assert isinstance(err, EndpointError) and err.retryable and err.retry_after == 0.25


def test_insufficient_quota_is_told_apart() -> None:
    failure = classify(status_error(429, body={"code": "insufficient_quota"}))
    assert failure is not None and failure.throttled and failure.quota


def test_timeouts_and_lost_connections_are_retryable() -> None:
    timeout = classify(openai.APITimeoutError(request=REQUEST))
    lost = classify(openai.APIConnectionError(request=REQUEST))
    assert timeout is not None and timeout.retryable and timeout.timeout
    assert lost is not None and lost.retryable and not lost.timeout
    assert timeout.status is None and lost.status is None
    assert classify(RuntimeError("a bug")) is None


def test_retry_after_forms() -> None:
    assert retry_after(None) is None
    assert retry_after(httpx.Headers({})) is None
    assert retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    # retry-after-ms wins over retry-after
    assert retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after(httpx.Headers({"retry-after": "99999"})) == 600.0  # capped
    assert retry_after(httpx.Headers({"retry-after": "-1"})) is None
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after(httpx.Headers({"retry-after": date}))
    assert seconds is not None and 25 <= seconds <= 31


def test_describe_llm_lines() -> None:
    who = "the LLM provider at http://h:1/v1"
    assert describe(status_error(401), who) == f"{who} rejected the API key (check OPENAI_API_KEY)"
    assert describe(status_error(404), who) == (
        f"{who} answered 404: unknown model or wrong base URL"
    )
    assert describe(status_error(403), who) == f"{who} answered HTTP 403"
    assert describe(status_error(503), who) == f"{who} answered HTTP 503"
    assert describe(openai.APITimeoutError(request=REQUEST), who) == f"{who} timed out"
    assert describe(openai.APIConnectionError(request=REQUEST), who) == f"cannot connect to {who}"


def test_describe_embedder_lines_name_the_model_and_hide_the_key() -> None:
    who = "the embedding provider at http://h:1/v1"
    model = "text-embedding-3-small"
    assert describe(status_error(403), who, model) == (
        f"{who} refused access to {model} (HTTP 403)"
    )
    assert describe(status_error(404), who, model) == (
        f"{who} answered 404: unknown model {model!r} or wrong base URL"
    )
    body = {"error": {"message": f"bad\n input   for key {KEY}"}}
    line = describe(status_error(400, body=body), who, model, KEY)
    assert line == f"{who} answered HTTP 400: bad input for key ***"
    assert KEY not in line and "\n" not in line


def test_scrub() -> None:
    assert scrub("a\n b", "") == "a b"
    assert scrub(f"x {KEY} y", KEY) == "x *** y"
    assert len(scrub("z" * 500)) == 200
