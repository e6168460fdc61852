"""The test server's measure of the time a client waited on it (tests/support/openai_server.py):
`embeddings_busy_s` is the union of the intervals with an embeddings request in flight, not
their sum, and benchmarks/ingest_remote.py reads it over GET /_stats."""

from __future__ import annotations

import json
import threading
import urllib.request

from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

LATENCY_S = 0.5


def _post(url: str, body: dict[str, object]) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req, timeout=30).close()


def _stats(srv: OpenAICompatibleServer) -> dict[str, float]:
    root = srv.base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_stats", timeout=30) as r:
        stats: dict[str, float] = json.load(r)
    return stats


def test_busy_time_is_the_union_of_requests_in_flight() -> None:
    config = ServerConfig(latency_s=LATENCY_S, ttft_s=LATENCY_S)
    with OpenAICompatibleServer(config) as srv:
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        _post(srv.base_url + "/chat/completions", chat)  # not an embeddings request
        srv.wait_idle()  # it leaves the in-flight count a moment after its answer
        assert _stats(srv)["embeddings_busy_s"] == 0.0
        assert _stats(srv)["first_embeddings_at"] == 0.0

        body = {"model": "text-embedding-3-small", "input": ["alpha", "beta"]}
        threads = [
            threading.Thread(target=_post, args=(srv.base_url + "/embeddings", body))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        srv.wait_idle()  # the last interval closes just after its answer (see below)
        stats = _stats(srv)

    # All four were in flight at one moment, so their intervals overlap: the union lies inside
    # [first arrival, last answer], while the sum of the four would be about four times longer.
    assert stats["max_in_flight_seen"] == 4
    span = stats["last_embeddings_at"] - stats["first_embeddings_at"]
    assert stats["embeddings_busy_s"] >= LATENCY_S  # each one slept the latency in flight
    assert stats["embeddings_busy_s"] <= span


def test_reset_zeroes_the_busy_time() -> None:
    with OpenAICompatibleServer(ServerConfig()) as srv:
        _post(srv.base_url + "/embeddings", {"model": "m", "input": "alpha"})
        # The answer reaches the client just before the handler closes its busy interval: a
        # reset in between would see that interval end after it (1 CI run in many).
        srv.wait_idle()
        assert _stats(srv)["embeddings_busy_s"] > 0.0
        srv.reset()
        stats = _stats(srv)
    assert stats["embeddings_busy_s"] == 0.0 and stats["last_embeddings_at"] == 0.0
