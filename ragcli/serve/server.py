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

With a `Guard` (guard.py: `serve --api-key-file`, RAGCLI_SERVE_API_KEYS, --rate-limit,
--max-body), every request but /healthz needs an API key, each key searches only its
partitions (tenancy.py), and bodies over the limit get 413 before they are parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from ragcli.serve.guard import Guard, GuardMiddleware
from ragcli.serve.handlers import CHAT, RETRIEVE, Handlers
from ragcli.serve.service import Service

if TYPE_CHECKING:
    from ragcli.core.config import Settings


def create_app(
    settings: Settings,
    max_concurrency: int = 64,
    request_timeout: float = 120.0,
    guard: Guard | None = None,
) -> Starlette:
    """The Starlette app: the routes over one warm `Service` (in `app.state.service`), warmed
    at start-up and closed at shutdown; behind `guard` when given."""
    service = Service(settings, max_concurrency, request_timeout)
    middleware = (
        [Middleware(GuardMiddleware, guard=guard, metrics=service.metrics)] if guard else []
    )
    return build_app(service, middleware=middleware)


def build_app(
    service: Service,
    extra: Sequence[BaseRoute] = (),
    warm_first: bool = True,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], None] | None = None,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """`serve`'s routes over `service`, plus `extra` ones (the daemon's). `warm_first`: load
    everything before accepting requests; else accept at once while the loads run (the first
    request waits for the ones it needs). `on_start` runs once the app has started, `on_stop`
    once it has stopped (uvicorn re-raises a SIGTERM after its shutdown: code after
    `server.run()` may never run)."""
    handlers = Handlers(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warming = None
        if warm_first:
            await service.start()
        else:
            warming = asyncio.ensure_future(service.start())
        if on_start is not None:
            await on_start()
        yield
        if warming is not None and not warming.done():
            warming.cancel()
        service.close()
        if on_stop is not None:
            on_stop()

    app = Starlette(
        routes=[
            Route(CHAT, handlers.chat, methods=["POST"]),
            Route(RETRIEVE, handlers.retrieve, methods=["POST"]),
            Route("/healthz", handlers.healthz, methods=["GET"]),
            Route("/metrics", handlers.metrics, methods=["GET"]),
            *extra,
        ],
        lifespan=lifespan,
        middleware=list(middleware),
    )
    app.state.service = service
    return app


def run(
    settings: Settings,
    host: str,
    port: int,
    max_concurrency: int,
    request_timeout: float,
    ready: Any = None,
    guard: Guard | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get up to 30 s to finish. `ready(server,
    service)` runs once it listens."""
    import uvicorn

    app = create_app(settings, max_concurrency, request_timeout, guard)
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
            ready(server, app.state.service)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
