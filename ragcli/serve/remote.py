"""`ragcli ask --server URL`: stream an answer from a running `ragcli serve`, or from a data
directory's daemon through its socket (`--server unix:/path/daemon.sock`, or a path ending in
`.sock`: the daemon serves `serve`'s /v1/chat/completions).

It speaks the server's OpenAI-compatible SSE with the standard library, so a script pays
neither a model load, nor an index open, nor a heavy import per question.

A server with API keys (`serve --api-key-file`) gets `Authorization: Bearer $RAGCLI_API_KEY`
(over http(s) only; never OPENAI_API_KEY, which is a provider's key and would leak to the
server). A refusal (401, 403, 413, 429…) is one line with the server's own message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import ProviderError, RagcliError, UsageError
from ragcli.core.unix_http import UNIX_PREFIX, unix_path
from ragcli.retrieval.events import Query

if TYPE_CHECKING:
    import http.client

UNIX_CONNECT_TIMEOUT = 5.0  # a socket someone named: wait for it as for a TCP connect
API_KEY_ENV = "RAGCLI_API_KEY"


def request_headers(url: str) -> dict[str, str]:
    """The headers of a request to `url`: JSON, SSE, and the API key of RAGCLI_API_KEY (to an
    http(s) server only: the daemon's socket needs none)."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key and not url.startswith(UNIX_PREFIX):
        headers["Authorization"] = f"Bearer {key}"
    return headers


def refusal(url: str, status: int, payload: bytes, retry_after: str | None) -> RagcliError:
    """The one-line error of a response other than 200: the server's message, a hint for a
    missing or wrong API key; a request the client must change is a usage error (exit 2)."""
    try:
        message = str(json.loads(payload)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {status}"
    if status == 401:
        have = bool(os.environ.get(API_KEY_ENV, "").strip())
        message += f" ({'check' if have else 'set'} {API_KEY_ENV})"
    elif status == 429 and retry_after and "retry" not in message:
        message += f" (retry after {retry_after} s)"
    error = UsageError if status in (400, 401, 403, 404, 413) else ProviderError
    return error(f"ragcli server at {url}: HTTP {status}: {message}")


def socket_path(server: str) -> str | None:
    """The socket of `unix:PATH` or of a path ending in `.sock` (absolute), else None."""
    if server.startswith(("http://", "https://")):
        return None
    path = unix_path(server) or (server if server.endswith(".sock") else None)
    return os.path.abspath(os.path.expanduser(path)) if path else None


def base_url(url: str) -> str:
    """The server as shown and addressed: http(s)://HOST:PORT[/PREFIX]/v1, or unix:/PATH
    (whose API lives under /v1)."""
    path = socket_path(url)
    if path is not None:
        return UNIX_PREFIX + path
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {url!r}: expected http://HOST:PORT or unix:/PATH.sock")
    return url if url.endswith("/v1") else url + "/v1"


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the server `base_url` gave, and the path its API lives under."""
    import http.client
    import urllib.parse

    if url.startswith(UNIX_PREFIX):
        from ragcli.core.unix_http import UnixHTTPConnection

        sock = url[len(UNIX_PREFIX) :]
        return UnixHTTPConnection(sock, timeout=300, connect_timeout=UNIX_CONNECT_TIMEOUT), "/v1"
    parts = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.hostname or "127.0.0.1", parts.port, timeout=300), parts.path


def ask_remote(server: str, query: Query, on_token: Callable[[str], None]) -> dict[str, Any]:
    """Stream one answer; returns the same dict `ragcli ask --json` prints, plus server spans.

    stdlib `http.client` on purpose: it costs nothing to import, and this path exists to save
    a cold start (httpx alone takes ≈0.16 s to import)."""
    import http.client

    url = base_url(server)
    body: dict[str, Any] = {
        "model": "ragcli",
        "stream": True,
        "messages": [{"role": "user", "content": query.question}],
    }
    for key, value in (("k", query.k), ("since", query.since), ("source", query.source)):
        if value:
            body[key] = value
    if query.partitions:
        body["partition"] = list(query.partitions)
    conn, prefix = _connection(url)
    started = time.perf_counter_ns()
    first: int | None = None
    pieces: list[str] = []
    final: dict[str, Any] = {}
    try:
        conn.request(
            "POST",
            f"{prefix}/chat/completions",
            json.dumps(body).encode(),
            request_headers(url),
        )
        response = conn.getresponse()
        if response.status != 200:
            payload = response.read()
            raise refusal(url, response.status, payload, response.getheader("Retry-After"))
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise ProviderError(f"ragcli server at {url}: {event['error']['message']}")
            text = event["choices"][0]["delta"].get("content")
            if text:
                if first is None:
                    first = time.perf_counter_ns()
                pieces.append(text)
                on_token(text)
            if "sources" in event:
                final = event
    except (ConnectionRefusedError, FileNotFoundError):
        hint = "; is its daemon running? (`ragcli daemon start`)" if url.startswith("unix:") else ""
        raise ProviderError(f"cannot connect to the ragcli server at {url}{hint}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderError(f"the ragcli server at {url} failed: {type(exc).__name__}") from None
    finally:
        conn.close()
    info = final.get("ragcli", {})
    return {
        "question": query.question,
        "answer": "".join(pieces),
        "generator": final.get("model", ""),
        "cached": info.get("cached") or False,
        "answered": info.get("answered", True),
        "sources": final.get("sources", []),
        "ttft_ms": round(((first or time.perf_counter_ns()) - started) / 1e6, 3),
        "server": {"url": url, "ttft_ms": info.get("ttft_ms"), "spans": info.get("spans", [])},
    }
