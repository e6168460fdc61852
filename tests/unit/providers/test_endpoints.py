"""Several OpenAI-compatible endpoints used as one (providers/endpoints.py): balancing, failover,
hedged requests. Real test servers on 127.0.0.1, the real `openai` client. No test judges
speed: the test servers hold first tokens at a gate that the test opens on an event (a hedge
arrived, N requests are in flight), and the behaviour is read from the servers' and the
pool's counters. Where a rule is about time itself (a rest, a hedge delay, the faster
endpoint), the time is made so large next to what a loaded machine adds that load cannot flip
the outcome; each such place says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

import ragcli.providers.endpoints
from ragcli.core.config import load_settings
from ragcli.core.endpoint_spec import parse_hedge_delay
from ragcli.core.errors import ConfigError, ProviderError
from ragcli.generators.openai_compat import OpenAIGenerator
from ragcli.generators.prompt_types import Prompt
from ragcli.providers.endpoints import (
    HEDGE_DEFAULT_S,
    HEDGE_FLOOR_S,
    EndpointPool,
)
from ragcli.retrieval.events import ROUTE_KEYS
from tests.support.endpoints import REPLY, release_when, server
from tests.support.openai_server import OpenAICompatibleServer, wait_for
from tests.support.servers import free_port


def prompt() -> Prompt:
    return Prompt(
        system="Answer from the sources.", user="How do I rotate the pager?", sources=[], tokens=9
    )


def generator(
    *servers: OpenAICompatibleServer | str, hedge: float | None = None, **kw
) -> OpenAIGenerator:
    urls = [s if isinstance(s, str) else s.base_url for s in servers]
    return OpenAIGenerator("m", endpoints=urls, hedge_delay=hedge, **kw)


async def ask(gen: OpenAIGenerator) -> tuple[str, dict]:
    """The answer and the route recorded in prompt.usage."""
    p = prompt()
    pieces = [piece async for piece in gen.stream("q", p)]
    return "".join(pieces), p.usage


def stats(gen: OpenAIGenerator) -> dict[str, dict]:
    return {e["url"]: e for e in gen.pool.snapshot()}


# -- configuration ---------------------------------------------------------------------------
def test_endpoints_come_from_env_or_a_toml_list_and_bad_ones_are_refused(tmp_path: Path) -> None:
    env = {"RAGCLI_LLM_ENDPOINTS": "http://a:1/v1, http://b:2/v1/", "RAGCLI_HEDGE_DELAY_MS": "250"}
    s = load_settings(environ=env)
    assert s.llm_endpoints == "http://a:1/v1, http://b:2/v1/" and s.generator == "openai"
    assert parse_hedge_delay(s.hedge_delay_ms) == 0.25
    assert parse_hedge_delay("auto") == -1.0 and parse_hedge_delay("0") is None
    assert parse_hedge_delay("off") is None
    toml = tmp_path / "ragcli.toml"
    toml.write_text('llm_endpoints = ["http://a:1/v1", "http://b:2/v1"]\nhedge_delay_ms = 0\n')
    s = load_settings(config_file=toml, environ={})
    assert s.llm_endpoints == "http://a:1/v1,http://b:2/v1" and s.hedge_delay_ms == "0"
    for bad in (
        {"RAGCLI_LLM_ENDPOINTS": "a.example:8000"},
        {"RAGCLI_EMBED_ENDPOINTS": "http://a/v1,http://a/v1"},
        {"RAGCLI_HEDGE_DELAY_MS": "soon"},
        {"RAGCLI_HEDGE_DELAY_MS": "-5"},
        {"RAGCLI_LLM_ATTEMPTS": "0"},
    ):
        with pytest.raises(ConfigError):
            load_settings(environ=bad)


def test_hedge_delay_is_the_recent_p95_with_a_floor_and_a_default() -> None:
    pool = EndpointPool(["http://a/v1", "http://b/v1"], hedge_delay=-1.0)
    a = pool.endpoints[0]
    assert pool.delay_for(a) == HEDGE_DEFAULT_S  # no samples yet
    for ms in range(100, 120):  # 20 samples, 100..119 ms
        a.observe_ttft(ms / 1000)
    assert pool.delay_for(a) == pytest.approx(0.118)
    for _ in range(64):
        a.observe_ttft(0.001)
    assert pool.delay_for(a) == HEDGE_FLOOR_S
    assert EndpointPool(["http://a/v1"], hedge_delay=-1.0).delay_for(a) is None  # one endpoint
    assert EndpointPool(["http://a/v1", "http://b/v1"], hedge_delay=None).delay_for(a) is None


# -- balancing -------------------------------------------------------------------------------
def test_concurrent_requests_spread_by_requests_in_flight() -> None:
    with server() as a, server() as b:
        # Every first token is held until all 8 requests are at the two servers' gates, so
        # none finishes early however slowly the client sends them: all 8 are in flight at once.
        a.hold()
        b.hold()
        release_when(lambda: a.waiting + b.waiting == 8, a, b)
        gen = generator(a, b)

        async def main() -> list[tuple[str, dict]]:
            return await asyncio.gather(*(ask(gen) for _ in range(8)))

        answers = asyncio.run(main())
    assert all(text == REPLY for text, _ in answers)
    assert a.counters.held + b.counters.held == 8
    assert a.counters.chat == b.counters.chat == 4
    assert a.counters.max_in_flight_seen == b.counters.max_in_flight_seen == 4
    assert all(e["in_flight"] == 0 and e["ok"] == 4 for e in stats(gen).values())


def test_with_hedging_on_requests_sent_at_once_still_alternate() -> None:
    """Requests that all pick before any is in flight go round-robin. Each takes one turn:
    asking whether a hedge could be sent (a spare exists) takes none. It took one, so with
    two endpoints every request took two turns and all of them went to the same endpoint
    (seen behind `serve` in make test-daemon). The hedge delay is 10 minutes: none is sent."""
    with server() as a, server() as b:
        a.hold()
        b.hold()
        release_when(lambda: a.waiting + b.waiting == 8, a, b)
        gen = generator(a, b, hedge=600.0)

        async def main() -> list[tuple[str, dict]]:
            return await asyncio.gather(*(ask(gen) for _ in range(8)))

        answers = asyncio.run(main())
    assert all(text == REPLY for text, _ in answers)
    assert a.counters.chat == b.counters.chat == 4
    assert not any(route.get("hedged") for _, route in answers)


def test_a_request_in_flight_outranks_round_robin_and_ttft() -> None:
    """An endpoint busy with a request is passed over for an idle one, even when round robin
    and the TTFT (none yet counts as fastest) both point at the busy one. Ordered by events:
    each request is sent once the one before it has reached a server."""
    with server() as a, server() as b:
        a.hold()
        b.hold()
        gen = generator(a, b)

        async def until(condition: Callable[[], bool]) -> None:
            await asyncio.to_thread(wait_for, condition)

        async def main() -> list[str]:
            first = asyncio.ensure_future(ask(gen))
            await until(lambda: a.waiting + b.waiting == 1)
            second = asyncio.ensure_future(ask(gen))
            await until(lambda: a.waiting + b.waiting == 2)
            assert (a.waiting, b.waiting) == (1, 1)
            b.release()  # b answers (and has a TTFT now); a's request stays in flight
            await second
            third = asyncio.ensure_future(ask(gen))
            await until(lambda: a.counters.chat + b.counters.chat == 3)
            a.release()
            return [(await t)[1]["endpoint"] for t in (first, second, third)]

        routes = asyncio.run(main())
    assert routes == [a.base_url, b.base_url, b.base_url]
    assert a.counters.held == 1 and b.counters.held == 1  # the third was never held


def test_sequential_requests_prefer_the_faster_endpoint() -> None:
    # The rule compares measured TTFTs, so the slow one is slow in time: 2 s against a local
    # first token's few ms (tens under load). Load cannot close that gap; 0.15 s it could.
    with server(ttft_s=2.0) as slow, server(ttft_s=0.0) as fast:
        gen = generator(slow, fast)

        async def main() -> None:
            for _ in range(10):
                await ask(gen)

        asyncio.run(main())
    # each is tried once (no sample yet counts as fastest), then the fast one wins every time
    assert slow.counters.chat == 1 and fast.counters.chat == 9


# -- failover ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault", [{"error_rate": 1.0}, {"throttle_rate": 1.0, "retry_after_s": 3600}, "refused"]
)
def test_failover_on_5xx_429_and_refused_connections(fault, monkeypatch) -> None:
    # The rest after a 5xx or a refused connection is 2 s (ERROR_COOLDOWN_S), after a 429 its
    # Retry-After: both made an hour here (a 429's is capped at 600 s), so a loaded machine
    # cannot outlast the rest between the three requests. The rule, not its length, is tested.
    monkeypatch.setattr(ragcli.providers.endpoints, "ERROR_COOLDOWN_S", 3600.0)
    with server() as bad, server() as good:
        first = f"http://127.0.0.1:{free_port()}/v1" if fault == "refused" else bad.base_url
        if fault != "refused":
            bad.reset(**fault)
        gen = generator(first, good)

        async def main() -> list[tuple[str, dict]]:
            return [await ask(gen) for _ in range(3)]

        answers = asyncio.run(main())
    assert [text for text, _ in answers] == [REPLY] * 3
    assert good.counters.chat == 3
    route = answers[0][1]
    assert route["endpoint"] == good.base_url and route["failovers"] == 1
    assert route["attempts"] == 2 and route["hedged"] == 0
    by_url = stats(gen)
    assert by_url[first]["failovers"] == 1 and by_url[first]["errors"] == 1
    # the failed endpoint rests (Retry-After, else a short pause): later requests skip it
    assert answers[1][1]["attempts"] == answers[2][1]["attempts"] == 1
    if fault != "refused":
        assert bad.counters.chat == 1


def test_every_endpoint_failing_is_one_provider_error() -> None:
    with server(error_rate=1.0) as a, server(error_rate=1.0) as b:
        gen = generator(a, b)
        with pytest.raises(ProviderError, match=r"answered HTTP 50\d"):
            asyncio.run(ask(gen))
    assert a.counters.chat == b.counters.chat == 1


def test_a_client_error_is_not_failed_over() -> None:
    with server(models="other") as a, server() as b, pytest.raises(ProviderError, match="404"):
        asyncio.run(ask(generator(a, b)))
    assert a.counters.chat == 1 and b.counters.chat == 0


def test_a_cut_after_the_first_token_is_not_retried() -> None:
    with server(cut_stream_after=2) as a, server() as b:
        # Hedging on, but 30 s: far beyond a local first token however loaded the machine,
        # so any request to b would be a retry of the cut, never a hedge.
        gen = generator(a, b, hedge=30.0)
        got: list[str] = []

        async def main() -> None:
            async for piece in gen.stream("q", prompt()):
                got.append(piece)

        with pytest.raises(ProviderError, match="cut off|ended early"):
            asyncio.run(main())
    assert got == ["Open ", "PageRelay "]
    assert b.counters.chat == 0 and stats(gen)[a.base_url]["errors"] == 1


# -- hedging ----------------------------------------------------------------------------------
async def ask_then_idle(gen: OpenAIGenerator, loser: OpenAICompatibleServer) -> tuple[str, dict]:
    """`ask`, then wait, with the event loop still running, until `loser` has nothing in
    flight: the pool itself cancelled it (asyncio.run's clean-up would close it anyway)."""
    answer = await ask(gen)
    await asyncio.to_thread(wait_for, lambda: loser.in_flight == 0, 60, "the loser's cancel")
    return answer


@pytest.mark.timeout(120)  # were no hedge sent, the held answer would wait for ever: fail here
def test_a_slow_first_token_is_hedged_and_the_loser_cancelled() -> None:
    with server() as slow, server() as fast:
        slow.hold()  # its first token never comes while the test runs: only a hedge can answer
        gen = generator(slow, fast, hedge=0.05)
        text, route = asyncio.run(ask_then_idle(gen, slow))
        assert text == REPLY
        assert {k: route[k] for k in ROUTE_KEYS} == {
            "endpoint": fast.base_url,
            "attempts": 2,
            "failovers": 0,
            "hedged": 1,
            "hedge_won": 1,
        }
        assert slow.counters.held == 1 and fast.counters.chat == 1
        assert slow.counters.disconnects == 1  # the server saw the held request's client go
    s = stats(gen)
    assert s[fast.base_url]["hedges_sent"] == 1 and s[fast.base_url]["hedges_won"] == 1
    assert s[slow.base_url]["cancelled"] == 1 and s[slow.base_url]["ok"] == 0
    assert all(e["in_flight"] == 0 for e in s.values())


def test_the_primary_can_still_win_a_hedge() -> None:
    with server() as primary, server() as spare:
        primary.hold()
        spare.hold()
        # The primary holds its first token until the hedge has reached the spare (which
        # holds its own for good): the hedge fires, and the primary answers first.
        release_when(lambda: spare.waiting == 1, primary)
        gen = generator(primary, spare, hedge=0.05)
        text, route = asyncio.run(ask_then_idle(gen, spare))
        assert text == REPLY and route["endpoint"] == primary.base_url
        assert route["hedged"] == 1 and route["hedge_won"] == 0
        assert spare.counters.chat == spare.counters.held == 1
        assert spare.counters.disconnects == 1
    s = stats(gen)
    assert s[spare.base_url]["hedges_sent"] == 1 and s[spare.base_url]["hedges_won"] == 0
    assert s[spare.base_url]["cancelled"] == 1


def test_a_prompt_first_token_is_not_hedged() -> None:
    # A 30 s hedge delay against a first token the server sends at once: load cannot make a
    # local first token that late, so a request to b could only be a hedge fired too early.
    with server() as a, server() as b:
        text, route = asyncio.run(ask(generator(a, b, hedge=30.0)))
    assert text == REPLY and route["endpoint"] == a.base_url
    assert route["hedged"] == 0 and route["attempts"] == 1
    assert a.counters.chat == 1 and b.counters.chat == 0


def test_without_hedging_the_slow_endpoint_is_waited_for() -> None:
    # Proving that no hedge is sent takes a wait: the slow server's first token comes after
    # twice the default hedge delay (the one a hedging bug would most likely use). Load can
    # only lengthen that wait, and hedging off never hedges, so the outcome cannot flip.
    with server(ttft_s=2 * HEDGE_DEFAULT_S) as slow, server() as fast:
        text, route = asyncio.run(ask(generator(slow, fast, hedge=None)))
    assert text == REPLY
    assert route["endpoint"] == slow.base_url and route["hedged"] == 0
    assert fast.counters.chat == 0


def test_one_endpoint_is_the_plain_path() -> None:
    # As above: the only server's first token comes 1 s after a 0.05 s hedge delay would
    # fire, so a hedge to a second copy of itself would be seen, and load cannot add one.
    with server(ttft_s=1.0) as only:
        gen = OpenAIGenerator("m", only.base_url, hedge_delay=0.05)
        text, route = asyncio.run(ask(gen))
    assert text == REPLY
    assert not set(route) & set(ROUTE_KEYS)
    assert only.counters.chat == 1 and gen.pool.endpoints[0].ok == 1
    assert gen.pool.endpoints[0].requests == 1


@pytest.mark.timeout(120)  # waiting out the 600 s Retry-After would be a hang: it fails here
def test_embedding_batches_fail_over_and_rest_a_throttled_endpoint() -> None:
    from ragcli.embedders.openai_embedder import OpenAIEmbedder

    texts = [f"text number {i}" for i in range(40)]
    # Retry-After 600 s (ragcli's cap): the rest outlasts any loaded run of this test, so a
    # second 429 per worker can only mean the rest was ignored.
    with server(throttle_rate=1.0, retry_after_s=600) as busy, server() as calm:
        e = OpenAIEmbedder(
            "text-embedding-3-small",
            endpoints=[busy.base_url, calm.base_url],
            dimensions=16,
            concurrency=2,
            batch_size=4,
            seed=1,
        )
        vectors = asyncio.run(e.aembed(texts))
    assert vectors.shape == (40, 16) and len(calm.counters.texts) == 40
    # at most one 429 per worker: after it the busy endpoint rests for its Retry-After
    assert 1 <= busy.counters.throttled <= 2 and busy.counters.ok == 0
    assert busy.counters.embeddings == busy.counters.throttled
    # every 429 failed over at once: no retry of it waited (the timeout above catches a wait)
    assert e.stats.failovers == e.stats.retries == busy.counters.throttled
    snap = {s["url"]: s for s in e.pool.snapshot()}
    assert snap[busy.base_url]["failovers"] == e.stats.failovers
    assert snap[calm.base_url]["ok"] == calm.counters.embeddings == 10
