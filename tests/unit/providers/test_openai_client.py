"""The OpenAI client factory (providers/openai_client.py): one rule for keys, timeouts and the
client's own retries, and one client per endpoint (per event loop when asked)."""

from __future__ import annotations

import asyncio

import openai
import pytest

from ragcli.core.errors import ProviderError
from ragcli.providers.openai_client import NO_KEY, ClientSet, ClientSpec, build_client

LOCAL = "http://127.0.0.1:9/v1"


def test_no_key_and_no_base_url_is_one_line() -> None:
    with pytest.raises(ProviderError, match="set OPENAI_API_KEY"):
        build_client(ClientSpec("", 5.0), "")
    with pytest.raises(ProviderError, match="embedding provider"):
        build_client(ClientSpec("", 5.0, missing_key="no key for the embedding provider"), "")


def test_a_local_server_gets_a_placeholder_key() -> None:
    client = build_client(ClientSpec("", 5.0), LOCAL)
    assert client.api_key == NO_KEY
    assert str(client.base_url).rstrip("/") == LOCAL


def test_timeouts_and_retries() -> None:
    plain = build_client(ClientSpec("k", 7.0), LOCAL)
    assert plain.max_retries == openai.DEFAULT_MAX_RETRIES
    assert plain.timeout == 7.0
    ours = build_client(ClientSpec("k", 120.0, connect_timeout_s=10.0, max_retries=0), LOCAL)
    assert ours.max_retries == 0
    assert ours.timeout.read == 120.0 and ours.timeout.connect == 10.0


def test_one_client_per_endpoint() -> None:
    clients = ClientSet(ClientSpec("k", 5.0))
    a = clients.get(LOCAL)
    assert clients.get(LOCAL) is a
    assert clients.get("http://127.0.0.1:10/v1") is not a


def test_per_loop_clients_are_rebuilt_on_another_loop() -> None:
    clients = ClientSet(ClientSpec("k", 5.0), per_loop=True)

    async def twice() -> tuple[object, object]:
        return clients.get(LOCAL), clients.get(LOCAL)

    first, again = asyncio.run(twice())
    assert first is again
    second, _ = asyncio.run(twice())
    assert second is not first

    async def close() -> None:
        await clients.aclose()

    asyncio.run(close())
    assert asyncio.run(twice())[0] is not second
