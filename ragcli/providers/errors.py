"""What a failed request to an OpenAI-compatible server means, for the embedder and the chat
generator alike: whether another attempt may succeed, how long the server asked us to wait
(``Retry-After``), and one line for the user that never echoes the API key.

Importing this module is cheap: ``openai`` and ``httpx`` load only when an error is mapped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ragcli.core.errors import ProviderError

RETRY_AFTER_CAP_S = 600.0  # a Retry-After longer than this is taken as this


class EndpointError(ProviderError):
    """A request to one endpoint failed. `retryable`: another endpoint may succeed (connection
    errors, timeouts, 5xx, 429); `retry_after`: seconds the endpoint asked for (429)."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Failure:
    """One failed request, classified.

    `status`: the HTTP status, None for a timeout or a lost connection. `retryable`: a later
    attempt (or another endpoint) may succeed: timeouts, lost connections, 408, 409, 429 and
    5xx. `throttled`: a 429. `quota`: a 429 ``insufficient_quota`` (the account is out of
    credit; waiting will not help). `retry_after`: the seconds the server asked for.
    """

    status: int | None
    retryable: bool
    throttled: bool = False
    quota: bool = False
    timeout: bool = False
    retry_after: float | None = None


def retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            import email.utils

            if scale != 1.0:
                continue
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):  # neither seconds nor a date: ignore it
                continue
            seconds = parsed.timestamp() - time.time()
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, RETRY_AFTER_CAP_S)
    return None


def classify(exc: BaseException) -> Failure | None:
    """The meaning of an ``openai`` client error; None for anything else (a bug, a cancel)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        throttled = status == 429
        if throttled or status in (408, 409) or status >= 500:
            return Failure(
                status,
                True,
                throttled=throttled,
                quota=throttled and getattr(exc, "code", None) == "insufficient_quota",
                retry_after=retry_after(exc.response.headers),
            )
        return Failure(status, False)
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
        return Failure(None, True, timeout=isinstance(exc, openai.APITimeoutError))
    if isinstance(exc, openai.OpenAIError):
        return Failure(None, False)
    return None


def scrub(message: str, api_key: str = "") -> str:
    """A server's error message on one line, at most 200 characters, the API key masked."""
    text = " ".join(message.split())
    if api_key:
        text = text.replace(api_key, "***")
    return text[:200]


def describe(exc: BaseException, who: str, model: str | None = None, api_key: str = "") -> str:
    """One line for the user about a failed request; never echoes the API key.

    `who`: "the LLM provider at URL" or "the embedding provider at URL". `model`, when given,
    is named in the 403 and 404 lines, and a status line carries the server's own message.
    """
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return f"{who} rejected the API key (check OPENAI_API_KEY)"
    if model is not None and isinstance(exc, openai.PermissionDeniedError):
        return f"{who} refused access to {model} (HTTP 403)"
    if isinstance(exc, openai.NotFoundError):
        named = "" if model is None else f" {model!r}"
        return f"{who} answered 404: unknown model{named} or wrong base URL"
    if isinstance(exc, openai.APITimeoutError):
        return f"{who} timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect to {who}"
    if isinstance(exc, openai.APIStatusError):
        detail = ""
        body = exc.body
        if model is not None and isinstance(body, dict):
            message = body.get("message") or (body.get("error") or {}).get("message")
            if isinstance(message, str):
                detail = ": " + scrub(message, api_key)
        return f"{who} answered HTTP {exc.status_code}{detail}"
    return f"{who} failed: {type(exc).__name__}"


def endpoint_error(exc: BaseException, who: str) -> EndpointError:
    """An ``openai`` error before the first token, as an EndpointError: the user's one line,
    whether another endpoint may succeed, and the Retry-After the server sent."""
    failure = classify(exc)
    message = describe(exc, who)
    if failure is None or not failure.retryable:
        return EndpointError(message, False)
    return EndpointError(message, True, failure.retry_after)


def stream_cut(exc: BaseException) -> bool:
    """Whether `exc` is a stream that broke off: the connection dropped or the body was
    truncated (a transport error of ``httpx`` or of ``httpx2``, which recent ``openai``
    releases stream through; an OSError; undecodable JSON)."""
    return isinstance(exc, _transport_errors())


def _transport_errors() -> tuple[type[BaseException], ...]:
    import httpx

    errors: list[type[BaseException]] = [httpx.HTTPError, OSError, ValueError]
    try:
        import httpx2  # the openai client's transport from its 3.x releases
    except ImportError:
        pass
    else:
        errors.append(httpx2.HTTPError)
    return tuple(errors)


__all__ = [
    "EndpointError",
    "Failure",
    "classify",
    "describe",
    "endpoint_error",
    "retry_after",
    "scrub",
    "stream_cut",
]
