"""`ragcli ask --server URL`: stream an answer from a running `ragcli serve`.

It speaks the server's OpenAI-compatible SSE over httpx (≈0.16 s to import, against ≈0.8 s for
the `openai` package), so a script pays neither a model load nor an index open per question.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ragcli.errors import ProviderError, UsageError
from ragcli.pipeline import Query


def base_url(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {url!r}: expected http://HOST:PORT")
    return url if url.endswith("/v1") else url + "/v1"


async def ask_remote(server: str, query: Query, on_token: Callable[[str], None]) -> dict[str, Any]:
    """Stream one answer; returns the same dict `ragcli ask --json` prints, plus server spans."""
    import httpx

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
    started = time.perf_counter_ns()
    first: int | None = None
    pieces: list[str] = []
    final: dict[str, Any] = {}
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0)) as client,
            client.stream("POST", f"{url}/chat/completions", json=body) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                try:
                    message = response.json()["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = f"HTTP {response.status_code}"
                cls = UsageError if response.status_code == 400 else ProviderError
                raise cls(f"ragcli server at {url}: {message}")
            async for line in response.aiter_lines():
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
    except httpx.ConnectError:
        raise ProviderError(f"cannot connect to the ragcli server at {url}") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"the ragcli server at {url} failed: {type(exc).__name__}") from None
    info = final.get("ragcli", {})
    return {
        "question": query.question,
        "answer": "".join(pieces),
        "generator": final.get("model", ""),
        "cached": info.get("cached") or False,
        "sources": final.get("sources", []),
        "ttft_ms": round(((first or time.perf_counter_ns()) - started) / 1e6, 3),
        "server": {"url": url, "spans": info.get("spans", [])},
    }
