"""`ragcli ask --server URL`: stream an answer from a running `ragcli serve`.

It speaks the server's OpenAI-compatible SSE with the standard library, so a script pays
neither a model load, nor an index open, nor a heavy import per question.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ragcli.core.errors import ProviderError, UsageError
from ragcli.retrieval.events import Query


def base_url(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {url!r}: expected http://HOST:PORT")
    return url if url.endswith("/v1") else url + "/v1"


def ask_remote(server: str, query: Query, on_token: Callable[[str], None]) -> dict[str, Any]:
    """Stream one answer; returns the same dict `ragcli ask --json` prints, plus server spans.

    stdlib `http.client` on purpose: it costs nothing to import, and this path exists to save
    a cold start (httpx alone takes ≈0.16 s to import)."""
    import http.client
    import urllib.parse

    url = base_url(server)
    parts = urllib.parse.urlsplit(url)
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
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    started = time.perf_counter_ns()
    first: int | None = None
    pieces: list[str] = []
    final: dict[str, Any] = {}
    try:
        conn.request(
            "POST",
            f"{parts.path}/chat/completions",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        response = conn.getresponse()
        if response.status != 200:
            try:
                message = json.loads(response.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status}"
            error = UsageError if response.status == 400 else ProviderError
            raise error(f"ragcli server at {url}: {message}")
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
    except ConnectionRefusedError:
        raise ProviderError(f"cannot connect to the ragcli server at {url}") from None
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
        "sources": final.get("sources", []),
        "ttft_ms": round(((first or time.perf_counter_ns()) - started) / 1e6, 3),
        "server": {"url": url, "ttft_ms": info.get("ttft_ms"), "spans": info.get("spans", [])},
    }
