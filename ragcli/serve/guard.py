"""What `ragcli serve` checks before a request reaches a handler, as one pure-ASGI middleware:

1. the API key (`Authorization: Bearer KEY`) of every request but GET /healthz, when keys are
   configured: missing or wrong → 401 with `WWW-Authenticate: Bearer`; the key found is
   handed to the handlers in the ASGI scope (`API_KEY`), for its partitions and its name
   (/healthz without a valid key says only that it is up: its details name the models and
   the LLM endpoints' URLs);
2. the key's requests per minute on /v1/… → 429 with Retry-After;
3. the body size: a Content-Length over `max_body` → 413 at once, else the body is read as it
   streams (chunked too) and refused with 413 as soon as it passes the limit, before any
   JSON parsing.

Errors are in the OpenAI shape; refused requests are counted in ragcli_requests_total (by the
key's name, never its secret). The daemon's app (ragcli/daemon/) has no Guard: its socket is
private to its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from ragcli.core.errors import UsageError
from ragcli.serve.keys import ApiKey, Keyring, load_keys
from ragcli.serve.limits import RateLimiter, TooLarge, declared_length, is_loopback, read_body
from ragcli.serve.limits import replay as replay_body
from ragcli.serve.prometheus import Registry

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEY = "ragcli.api_key"  # the ASGI scope's entry for the request's ApiKey
GUARDED = "ragcli.guarded"  # True in the scope of a request to a server with keys
OPEN_PATHS = frozenset({"/healthz"})
COUNTED = frozenset({"/v1/chat/completions", "/v1/retrieve", "/metrics"})
DEFAULT_MAX_BODY = 1 << 20


@dataclass
class Guard:
    """The keys (None: no authentication), the default requests per minute per key (0: no
    limit; a key's own rate_per_minute wins), and the largest request body in bytes."""

    keyring: Keyring | None = None
    rate_limit: int = 0
    max_body: int = DEFAULT_MAX_BODY
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def per_minute(self, key: ApiKey) -> int:
        return self.rate_limit if key.rate_per_minute is None else key.rate_per_minute


def guard_for(
    host: str,
    key_file: Path | None,
    env_keys: str | None,
    insecure: bool,
    rate_limit: int,
    max_body: int,
) -> Guard:
    """The Guard of `serve`'s options; refuses (UsageError, one line) a non-loopback address
    without keys unless `insecure`, and a rate limit without keys."""
    keyring = load_keys(key_file, env_keys)
    if keyring is None and not insecure and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without API keys: anyone who can reach it could read "
            "every partition; give --api-key-file FILE (or RAGCLI_SERVE_API_KEYS), or "
            "--insecure to serve it open anyway"
        )
    if keyring is None and rate_limit:
        raise UsageError(
            "--rate-limit counts requests per API key: give --api-key-file FILE "
            "(or RAGCLI_SERVE_API_KEYS)"
        )
    if rate_limit < 0 or max_body < 1:
        raise UsageError("--rate-limit must be >= 0 and --max-body >= 1")
    return Guard(keyring, rate_limit, max_body)


def openai_error(
    status: int, message: str, type_: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error response in the OpenAI shape: {"error": {message, type, param, code}}."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def bearer_token(scope: Scope) -> str | None:
    """The token of the request's `Authorization: Bearer …` header, if it has one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def unauthorized(missing: bool) -> JSONResponse:
    if missing:
        message = "missing API key: send it as 'Authorization: Bearer KEY'"
        challenge = 'Bearer realm="ragcli"'
    else:
        message = "invalid API key"
        challenge = 'Bearer realm="ragcli", error="invalid_token"'
    return openai_error(
        401, message, "invalid_request_error", "invalid_api_key", {"WWW-Authenticate": challenge}
    )


class GuardMiddleware:
    """The Guard as pure-ASGI middleware (Starlette's `Middleware(GuardMiddleware, …)`)."""

    def __init__(self, app: App, guard: Guard, metrics: Registry) -> None:
        self.app, self.guard, self.metrics = app, guard, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key: ApiKey | None = None
        keyring = self.guard.keyring
        if keyring is not None:
            scope[GUARDED] = True
            token = bearer_token(scope)
            key = keyring.check(token) if token is not None else None
            if key is not None:
                scope[API_KEY] = key
        if keyring is not None and scope["path"] not in OPEN_PATHS:
            if key is None:
                await self.refuse(scope, receive, send, unauthorized(token is None), None)
                return
            wait = self.rate_wait(scope, key)
            if wait:
                await self.refuse(scope, receive, send, self.rate_limited(key, wait), key)
                return
        try:
            body = await self.body(scope, receive)
        except TooLarge:
            await self.refuse(scope, receive, send, self.too_large(), key)
            return
        if body is not None:
            await self.app(scope, replay_body(body, receive), send)

    def rate_wait(self, scope: Scope, key: ApiKey) -> int:
        if not scope["path"].startswith("/v1/"):
            return 0
        return self.guard.limiter.take(key.name, self.guard.per_minute(key))

    def rate_limited(self, key: ApiKey, wait: int) -> JSONResponse:
        limit = self.guard.per_minute(key)
        message = (
            f"rate limit reached for API key {key.name!r}: {limit} requests per minute; "
            f"retry in {wait} s"
        )
        headers = {"Retry-After": str(wait), "x-ratelimit-limit-requests": str(limit)}
        return openai_error(429, message, "requests", "rate_limit_exceeded", headers)

    async def body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The request body within the limit (TooLarge past it; None: client gone)."""
        declared = declared_length(scope.get("headers", []))
        if declared is not None and declared > self.guard.max_body:
            raise TooLarge
        return await read_body(receive, self.guard.max_body)

    def too_large(self) -> JSONResponse:
        message = f"request body over the limit of {self.guard.max_body} bytes (--max-body)"
        return openai_error(
            413, message, "invalid_request_error", "request_too_large", {"Connection": "close"}
        )

    async def refuse(
        self, scope: Scope, receive: Receive, send: Send, response: JSONResponse, key: ApiKey | None
    ) -> None:
        path = scope["path"]
        labels = {"endpoint": path if path in COUNTED else "other"}
        if self.guard.keyring is not None:
            labels["key"] = key.name if key is not None else ""
        labels["status"] = str(response.status_code)
        self.metrics.add("ragcli_requests_total", labels)
        await response(scope, receive, send)
