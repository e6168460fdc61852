"""`ragcli serve`: the warm pipeline behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ragcli.cli.common import LlmOpt, settings_from

HostOpt = Annotated[str, typer.Option(help="Address to bind (loopback by default).")]
PortOpt = Annotated[int, typer.Option(help="Port (0: any free port).")]
MaxConcurrencyOpt = Annotated[
    int, typer.Option(help="Requests in flight before answering 503.", min=1)
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds before a request ends.")]


def serve(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8765,
    max_concurrency: MaxConcurrencyOpt = 64,
    request_timeout: TimeoutOpt = 120.0,
    llm: LlmOpt = None,
) -> None:
    """Serve the pipeline, warm, behind an OpenAI-compatible API (/v1/chat/completions,
    /v1/retrieve, /healthz, /metrics)."""
    from ragcli.serve.server import run

    settings = settings_from(ctx, llm=llm)

    def ready(server: Any) -> None:
        bound = server.servers[0].sockets[0].getsockname()
        print(
            f"ragcli serve: listening on http://{bound[0]}:{bound[1]}/v1 "
            f"(data {settings.data_dir}); Ctrl-C or SIGTERM to stop",
            file=sys.stderr,
            flush=True,
        )

    run(settings, host, port, max_concurrency, request_timeout, ready)
