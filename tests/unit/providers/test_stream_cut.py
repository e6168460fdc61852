"""Which failures mid-stream count as a stream that broke off (retryable on another endpoint
before the first token) rather than a bug: transport errors of either HTTP library the
`openai` client may stream through, OS errors and truncated JSON."""

from __future__ import annotations

import json

import httpx
import pytest

from ragcli.providers.errors import stream_cut


def test_httpx_transport_errors_are_cuts() -> None:
    assert stream_cut(httpx.ReadError("connection reset"))
    assert stream_cut(httpx.RemoteProtocolError("peer closed connection"))


def test_httpx2_transport_errors_are_cuts() -> None:
    """openai 3.x streams through httpx2, whose errors do not derive from httpx's: a reset
    connection there must still move the request to another endpoint, not crash."""
    httpx2 = pytest.importorskip("httpx2", reason="the installed openai does not use httpx2")
    assert stream_cut(httpx2.ReadError("connection reset"))
    assert stream_cut(httpx2.RemoteProtocolError("incomplete chunked read"))


def test_os_errors_and_truncated_json_are_cuts() -> None:
    assert stream_cut(ConnectionResetError())
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads('{"choices": [')
    assert stream_cut(info.value)


def test_a_bug_is_not_a_cut() -> None:
    assert not stream_cut(KeyError("choices"))
    assert not stream_cut(TypeError("unsupported operand"))
