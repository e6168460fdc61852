"""The ``openai.AsyncOpenAI`` clients of ragcli: how one is built for an endpoint, and one per
endpoint kept so that its connection pool stays alive between requests.

Both users (the embedder and the chat generator) build their clients here, with the same
rules: a local server that needs no key still gets a placeholder (the client insists on one),
and a missing key for api.openai.com is a one-line ProviderError, not a traceback.

Importing this module is cheap: ``openai`` loads when the first client is built.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ragcli.core.errors import ProviderError

NO_KEY = "not-needed"  # what a keyless local server receives as the API key


@dataclass(frozen=True)
class ClientSpec:
    """How to build a client. `timeout_s`: seconds to wait for the next bytes of an answer;
    `connect_timeout_s`: for the TCP/TLS connect alone (None: `timeout_s`). `max_retries`:
    the client's own retries (None: the ``openai`` default); 0 when ragcli retries itself, so
    that no hidden retry happens inside a concurrency slot. `missing_key`: the error shown
    when neither an API key nor a base URL is set."""

    api_key: str
    timeout_s: float
    connect_timeout_s: float | None = None
    max_retries: int | None = None
    missing_key: str = "no API key: set OPENAI_API_KEY or OPENAI_BASE_URL"


def build_client(spec: ClientSpec, base_url: str) -> Any:
    """A new ``openai.AsyncOpenAI`` for `base_url` ("" for api.openai.com)."""
    import openai

    if not spec.api_key and not base_url:
        raise ProviderError(spec.missing_key)
    timeout: float | openai.Timeout = spec.timeout_s
    if spec.connect_timeout_s is not None:
        timeout = openai.Timeout(spec.timeout_s, connect=spec.connect_timeout_s)
    retries = openai.DEFAULT_MAX_RETRIES if spec.max_retries is None else spec.max_retries
    return openai.AsyncOpenAI(
        api_key=spec.api_key or NO_KEY,
        base_url=base_url or None,
        timeout=timeout,
        max_retries=retries,
    )


class ClientSet:
    """One client per endpoint URL, built on first use. With `per_loop`, the set belongs to
    the event loop that built it (a client's connection pool is bound to that loop): on
    another loop the clients are built afresh."""

    def __init__(self, spec: ClientSpec, per_loop: bool = False) -> None:
        self.spec = spec
        self.per_loop = per_loop
        self._clients: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, base_url: str) -> Any:
        """The client for `base_url`, built if there is none yet (for this loop)."""
        if self.per_loop:
            loop = asyncio.get_running_loop()
            if self._loop is not loop:
                self._clients, self._loop = {}, loop
        client = self._clients.get(base_url)
        if client is None:
            client = self._clients[base_url] = build_client(self.spec, base_url)
        return client

    async def aclose(self) -> None:
        """Close the clients' connections when on the loop that opened them; forget them."""
        if not self.per_loop or self._loop is asyncio.get_running_loop():
            for client in self._clients.values():
                await client.close()
        self._clients, self._loop = {}, None
