"""What `serve` checks before a handler runs (ragcli/serve/guard.py, limits.py, tenancy.py):
the per-key rate limit on a fake clock, the body limit as a body streams, loopback addresses,
a key's partitions, and the middleware over a tiny app (401, 429, 413, /healthz open, the
key's name in the metrics and never its secret)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ragcli.core.errors import UsageError
from ragcli.retrieval.events import Query
from ragcli.serve.guard import API_KEY, Guard, GuardMiddleware, guard_for
from ragcli.serve.keys import Keyring, keys_from_env
from ragcli.serve.limits import RateLimiter, TooLarge, is_loopback, read_body
from ragcli.serve.prometheus import Registry
from ragcli.serve.tenancy import PartitionNotAllowed, restrict

ADMIN = "rk-admin-0123456789abcdef"
HR = "rk-hr-0123456789abcdefgh"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_slides_over_the_last_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for t in (0.0, 10.0, 20.0):
        clock.now = 1000.0 + t
        assert limiter.take("a", 3) == 0
    clock.now = 1030.5
    assert limiter.take("a", 3) == 30  # the first slot frees at 1060: 29.5 s, rounded up
    assert limiter.take("b", 3) == 0  # per name
    clock.now = 1059.2
    assert limiter.take("a", 3) == 1  # whole seconds, rounded up, at least 1
    clock.now = 1060.0
    assert limiter.take("a", 3) == 0  # the request at 1000 left the window
    assert limiter.take("a", 3) == 10  # now the one at 1010 is the oldest
    assert all(limiter.take("c", 0) == 0 for _ in range(1000))  # 0: no limit


def receiver(chunks: list[bytes]) -> tuple[Any, list[int]]:
    """An ASGI receive that sends `chunks` as one streamed body, and how many it gave."""
    given: list[int] = []

    async def receive() -> dict[str, Any]:
        n = len(given)
        given.append(n)
        return {"type": "http.request", "body": chunks[n], "more_body": n < len(chunks) - 1}

    return receive, given


def test_a_body_is_read_to_the_limit_and_no_further() -> None:
    receive, given = receiver([b"x" * 400] * 10)
    with pytest.raises(TooLarge):
        asyncio.run(read_body(receive, 1000))
    assert len(given) == 3  # 1,200 bytes > 1,000: stopped at the third chunk, not the tenth
    receive, given = receiver([b"ab", b"", b"cd"])
    assert asyncio.run(read_body(receive, 4)) == b"abcd" and len(given) == 3  # the limit


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_key_searches_only_its_partitions() -> None:
    allowed, known = ("hr", "policies", "finance"), {"hr", "policies", "runbooks"}
    q = Query("q")
    assert restrict(q, allowed, known) == Query("q", partitions=("hr", "policies"))
    hr = Query("q", partitions=("hr",))
    assert restrict(hr, allowed, known) == hr
    for outside in (("runbooks",), ("hr", "runbooks"), ("nope",)):
        with pytest.raises(PartitionNotAllowed) as info:
            restrict(Query("q", partitions=outside), allowed, known)
        assert info.value.partition == [p for p in outside if p not in allowed][0]
    assert restrict(Query("q", partitions=("finance",)), allowed, known) is None  # not held
    assert restrict(q, ("finance",), known) is None


def test_guard_for_refuses_an_open_network_address(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 without API keys") as info:
        guard_for("0.0.0.0", None, None, False, 0, 1024)
    assert "\n" not in str(info.value) and "--insecure" in str(info.value)
    assert guard_for("0.0.0.0", None, None, True, 0, 1024).keyring is None
    assert guard_for("::1", None, None, False, 0, 1024).keyring is None
    assert len(guard_for("0.0.0.0", None, f"a={ADMIN}", False, 0, 1024).keyring or ()) == 1
    with pytest.raises(UsageError, match="--rate-limit counts requests per API key"):
        guard_for("127.0.0.1", None, None, False, 60, 1024)


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    key = request.scope.get(API_KEY)
    return JSONResponse({"bytes": len(body), "key": key.name if key else None})


@pytest.fixture
def guarded() -> Iterator[tuple[TestClient, Guard, Clock, Registry]]:
    clock = Clock()
    keyring = Keyring(keys_from_env(f"admin={ADMIN},hr-bot={HR}@hr#2"))
    guard = Guard(keyring, rate_limit=0, max_body=1000, limiter=RateLimiter(clock))
    metrics = Registry()
    app = Starlette(
        routes=[
            Route("/v1/echo", echo, methods=["POST"]),
            Route("/healthz", lambda r: PlainTextResponse("ok")),
            Route("/metrics", lambda r: PlainTextResponse(metrics.render())),
        ],
        middleware=[Middleware(GuardMiddleware, guard=guard, metrics=metrics)],
    )
    with TestClient(app) as client:
        yield client, guard, clock, metrics


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_the_middleware_wants_a_key_but_for_healthz(guarded: Any) -> None:
    client, _, _, metrics = guarded
    for headers, challenge, message in (
        ({}, 'Bearer realm="ragcli"', "missing API key"),
        ({"Authorization": f"Basic {ADMIN}"}, 'Bearer realm="ragcli"', "missing API key"),
        ({"Authorization": "Bearer "}, 'Bearer realm="ragcli"', "missing API key"),
        (auth(ADMIN[:-1]), 'Bearer realm="ragcli", error="invalid_token"', "invalid API key"),
    ):
        r = client.post("/v1/echo", json={}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == challenge
        assert r.json() == {
            "error": {
                "message": r.json()["error"]["message"],
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        assert r.json()["error"]["message"].startswith(message)
    assert client.get("/metrics").status_code == 401
    assert client.get("/healthz").text == "ok"
    assert client.post("/v1/echo", json={}, headers={"authorization": f"bearer {HR}"}).json() == {
        "bytes": 2,
        "key": "hr-bot",
    }
    text = client.get("/metrics", headers=auth(ADMIN)).text
    assert 'ragcli_requests_total{endpoint="other",key="",status="401"} 4' in text
    assert 'ragcli_requests_total{endpoint="/metrics",key="",status="401"} 1' in text
    assert ADMIN not in metrics.render() and HR not in metrics.render()


def test_the_middleware_limits_each_key(guarded: Any) -> None:
    client, _, clock, _ = guarded
    assert [client.post("/v1/echo", headers=auth(HR)).status_code for _ in range(2)] == [200] * 2
    clock.now += 15
    r = client.post("/v1/echo", headers=auth(HR))
    assert r.status_code == 429 and r.headers["retry-after"] == "45"
    error = r.json()["error"]
    assert (
        error["code"] == "rate_limit_exceeded"
        and "'hr-bot': 2 requests per minute" in error["message"]
    )
    assert client.get("/metrics", headers=auth(HR)).status_code == 200  # not counted
    assert client.post("/v1/echo", headers=auth(ADMIN)).status_code == 200  # another key
    clock.now += 45
    assert client.post("/v1/echo", headers=auth(HR)).status_code == 200


def test_the_middleware_refuses_a_large_body_before_the_app(guarded: Any) -> None:
    client, _, _, metrics = guarded
    ok = client.post("/v1/echo", content=b"x" * 1000, headers=auth(ADMIN))
    assert ok.json() == {"bytes": 1000, "key": "admin"}
    big = client.post("/v1/echo", content=b"x" * 1001, headers=auth(ADMIN))
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    streamed = client.post(
        "/v1/echo", content=iter([b"x" * 600, b"x" * 600]), headers=auth(ADMIN)
    )  # no Content-Length: counted as it arrives
    assert streamed.status_code == 413
    assert 'endpoint="other",key="admin",status="413"} 2' in metrics.render()
