"""`ragcli serve`: the warm pipeline behind an OpenAI-compatible API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli.common import LlmOpt, settings_from

if TYPE_CHECKING:
    from ragcli.serve.guard import Guard
    from ragcli.serve.service import Service

HostOpt = Annotated[
    str,
    typer.Option(
        help="Address to bind (loopback by default; any other needs API keys or --insecure)."
    ),
]
PortOpt = Annotated[int, typer.Option(help="Port (0: any free port).")]
MaxConcurrencyOpt = Annotated[
    int, typer.Option(help="Requests in flight before answering 503.", min=1)
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds before a request ends.")]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--api-key-file",
        envvar="RAGCLI_SERVE_API_KEY_FILE",
        help="TOML file of API keys ([[keys]] name, key or key_sha256, partitions, "
        "rate_per_minute); every request but /healthz then needs 'Authorization: Bearer KEY'. "
        "Keys may also come from RAGCLI_SERVE_API_KEYS (NAME=SECRET[@PART+PART][#RATE],…).",
        show_default=False,
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure", help="Serve a non-loopback --host without API keys (anyone can read all)."
    ),
]
RateLimitOpt = Annotated[
    int,
    typer.Option(
        "--rate-limit",
        help="Requests per minute per API key (0: none); a key's rate_per_minute wins.",
        min=0,
    ),
]
MaxBodyOpt = Annotated[
    int, typer.Option("--max-body", help="Largest request body in bytes (413 over it).", min=1)
]


def serve(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8765,
    max_concurrency: MaxConcurrencyOpt = 64,
    request_timeout: TimeoutOpt = 120.0,
    llm: LlmOpt = None,
    api_key_file: KeyFileOpt = None,
    insecure: InsecureOpt = False,
    rate_limit: RateLimitOpt = 0,
    max_body: MaxBodyOpt = 1 << 20,
) -> None:
    """Serve the pipeline, warm, behind an OpenAI-compatible API (/v1/chat/completions,
    /v1/retrieve, /healthz, /metrics)."""
    from ragcli.serve.guard import guard_for
    from ragcli.serve.keys import ENV_KEYS
    from ragcli.serve.server import run

    guard = guard_for(
        host, api_key_file, os.environ.get(ENV_KEYS), insecure, rate_limit, max_body
    )  # before any load: a refusal costs nothing
    settings = settings_from(ctx, llm=llm)

    def ready(server: Any, service: Service) -> None:
        bound = server.servers[0].sockets[0].getsockname()
        keys = f", {len(guard.keyring)} API keys" if guard.keyring is not None else ""
        say(
            f"listening on http://{bound[0]}:{bound[1]}/v1 (data {settings.data_dir}{keys}); "
            "Ctrl-C or SIGTERM to stop"
        )
        for line in warnings(guard, host, service):
            say(f"warning: {line}")

    run(settings, host, port, max_concurrency, request_timeout, ready, guard)


def say(line: str) -> None:
    print(f"ragcli serve: {line}", file=sys.stderr, flush=True)


def warnings(guard: Guard, host: str, service: Service) -> list[str]:
    """What an operator should know once serve listens: open on a network, or a key scoped
    to partitions the index does not hold (yet)."""
    from ragcli.serve.limits import is_loopback

    if guard.keyring is None:
        if is_loopback(host):
            return []
        return [f"no API keys on {host} (--insecure): anyone who can reach it reads everything"]
    catalog = service.pipeline.catalog
    known = catalog.partition_names() if catalog is not None else set()
    lines = []
    for key in guard.keyring.keys:
        missing = sorted(set(key.partitions or ()) - known)
        if missing:
            lines.append(
                f"API key {key.name!r}: no partition {', '.join(map(repr, missing))} in the "
                "index (yet); its questions find nothing there"
            )
    return lines
