"""Several OpenAI-compatible endpoints used as one: load balancing, failover and hedged
requests for time to first token.

* **Selection**: the endpoint with the fewest requests in flight, then the best recent TTFT
  (an EWMA; an endpoint with no sample yet counts as fastest, so each one gets tried), then
  round robin. An endpoint cooling down (after a 429's ``Retry-After``, or a few seconds after
  a connection error or 5xx) is passed over while another is available.
* **Failover**: a connection error, timeout, 5xx or 429 *before the first token* moves the
  request to the next endpoint, at most ``attempts`` requests in all and never twice to the
  same endpoint. Other errors (401, 404, 400) are the caller's mistake and fail at once.
* **Hedging**: when the chosen endpoint has produced no first token within the hedge delay,
  the same request goes to a second endpoint; whichever streams a first token first is
  streamed, the other is cancelled (its HTTP response is closed, so the server sees the
  client go away). The delay is ``hedge_delay_ms`` when it is a number, else the endpoint's
  p95 TTFT over its last ``WINDOW`` first tokens (never under ``HEDGE_FLOOR_S``), or
  ``HEDGE_DEFAULT_S`` until it has ``MIN_SAMPLES`` of them. ``off``/``0`` disables hedging.
* Once the first token has been handed on, nothing switches: a stream cut later is a cut.

With one endpoint, `stream` is a plain loop over that endpoint's stream: no task, no timer.
Importing this module is cheap (standard library only).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ragcli.providers.errors import EndpointError

WINDOW = 64  # recent TTFTs kept per endpoint for the p95
MIN_SAMPLES = 10  # before this many, the hedge delay is HEDGE_DEFAULT_S
HEDGE_DEFAULT_S = 1.0
HEDGE_FLOOR_S = 0.05
EWMA_ALPHA = 0.3
ERROR_COOLDOWN_S = 2.0  # an endpoint that refused a connection or answered 5xx rests this long
MAX_COOLDOWN_WAIT_S = 5.0  # wait at most this long for a cooling endpoint when all are


@dataclass
class Endpoint:
    url: str  # base URL ("" for the provider's default)
    in_flight: int = 0
    ewma_ttft: float | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    cool_until: float = 0.0
    # cumulative counters (exported by /metrics and `snapshot`)
    requests: int = 0  # requests sent, hedges included
    ok: int = 0  # streams or answers that completed
    errors: int = 0  # requests that failed (before or after the first token)
    failovers: int = 0  # failed before the first token, and the request moved on
    hedges_sent: int = 0  # hedge requests this endpoint received
    hedges_won: int = 0  # ... that produced the first token first
    cancelled: int = 0  # requests cancelled because another endpoint won

    @property
    def label(self) -> str:
        return self.url or "api.openai.com"

    def p95(self) -> float | None:
        if len(self.recent) < MIN_SAMPLES:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    def observe_ttft(self, seconds: float) -> None:
        self.recent.append(seconds)
        old = self.ewma_ttft
        self.ewma_ttft = seconds if old is None else old + EWMA_ALPHA * (seconds - old)

    def observe_lower_bound(self, seconds: float) -> None:
        """A request cancelled before its first token: its TTFT was at least `seconds`. It
        moves the EWMA (selection) but not the p95 window: counting the cut-off tail there
        would raise the hedge delay every time a hedge fires."""
        if self.ewma_ttft is None or seconds > self.ewma_ttft:
            old = self.ewma_ttft or seconds
            self.ewma_ttft = old + EWMA_ALPHA * (seconds - old)

    def snapshot(self) -> dict[str, Any]:
        p95 = self.p95()
        return {
            "url": self.label,
            "in_flight": self.in_flight,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "failovers": self.failovers,
            "hedges_sent": self.hedges_sent,
            "hedges_won": self.hedges_won,
            "cancelled": self.cancelled,
            "ttft_ewma_ms": None if self.ewma_ttft is None else round(self.ewma_ttft * 1000, 1),
            "ttft_p95_ms": None if p95 is None else round(p95 * 1000, 1),
        }


Opener = Callable[[Endpoint], AsyncGenerator[Any, None]]
_EMPTY = object()  # a stream that ended without a piece
_background: set[asyncio.Task[Any]] = set()  # losers being cancelled: keep them referenced


class EndpointPool:
    """The endpoints of one provider role (chat or embeddings) and their recent behaviour.
    Touched only from the event loop's thread, so it needs no lock."""

    def __init__(
        self, urls: Iterable[str], hedge_delay: float | None = None, attempts: int = 3
    ) -> None:
        self.endpoints = [Endpoint(u) for u in urls] or [Endpoint("")]
        self.hedge_delay = hedge_delay  # seconds, HEDGE_AUTO (-1), None off
        self.attempts = max(1, attempts)
        self._turn = 0

    def __len__(self) -> int:
        return len(self.endpoints)

    # -- choosing --------------------------------------------------------------------------
    def pick(self, exclude: Iterable[Endpoint] = (), rotate: bool = True) -> Endpoint | None:
        """The best endpoint not in `exclude` and not cooling down; None if there is none.
        Ties go round-robin; `rotate=False` asks without taking a turn (whether a spare
        exists), so that a request takes exactly one turn and equal endpoints alternate."""
        now = time.monotonic()
        skip = {id(e) for e in exclude}
        ready = [e for e in self.endpoints if id(e) not in skip and e.cool_until <= now]
        if not ready:
            return None
        n, turn = len(self.endpoints), self._turn
        if rotate:
            self._turn += 1
        return min(
            ready,
            key=lambda e: (
                e.in_flight,
                e.ewma_ttft or 0.0,
                (self.endpoints.index(e) - turn) % n,
            ),
        )

    def soonest(self, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """Of the endpoints not in `exclude`, the one whose cool-down ends first."""
        skip = {id(e) for e in exclude}
        rest = [e for e in self.endpoints if id(e) not in skip]
        return min(rest, key=lambda e: e.cool_until) if rest else None

    def delay_for(self, ep: Endpoint) -> float | None:
        """Seconds to wait for `ep`'s first token before hedging; None: no hedging."""
        if self.hedge_delay is None or len(self.endpoints) < 2:
            return None
        if self.hedge_delay >= 0:
            return self.hedge_delay
        p95 = ep.p95()
        return HEDGE_DEFAULT_S if p95 is None else max(HEDGE_FLOOR_S, p95)

    def failed(self, ep: Endpoint, exc: BaseException) -> None:
        """Count a failed request and rest the endpoint (Retry-After, else a short pause)."""
        ep.errors += 1
        if isinstance(exc, EndpointError) and exc.retryable and len(self.endpoints) > 1:
            rest = exc.retry_after if exc.retry_after is not None else ERROR_COOLDOWN_S
            ep.cool_until = max(ep.cool_until, time.monotonic() + rest)

    def snapshot(self) -> list[dict[str, Any]]:
        return [e.snapshot() for e in self.endpoints]

    async def _next(self, tried: list[Endpoint]) -> Endpoint | None:
        """An endpoint not yet tried: a ready one, else the one cooling down the shortest if
        it is back within MAX_COOLDOWN_WAIT_S (then after waiting for it)."""
        ep = self.pick(tried)
        if ep is not None:
            return ep
        ep = self.soonest(tried)
        if ep is None:
            return None
        wait = ep.cool_until - time.monotonic()
        if wait > MAX_COOLDOWN_WAIT_S:
            return None
        await asyncio.sleep(max(0.0, wait))
        return ep

    def choose(self, avoid: Endpoint | None = None) -> Endpoint:
        """For a request that is not raced (an embeddings batch): the best ready endpoint
        other than `avoid` (the one that just failed), else the best ready one, else the one
        back from its cool-down soonest."""
        ep = self.pick([avoid] if avoid is not None else ()) or self.pick() or self.soonest()
        assert ep is not None
        return ep

    async def stream(
        self, opener: Opener, route: dict[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """The pieces of one streamed answer, from the endpoint that produced a first piece
        first. `opener(ep)` streams from one endpoint and raises EndpointError. `route`, when
        given, receives what happened: endpoint, attempts, failovers, hedged, hedge_won."""
        if len(self.endpoints) == 1:  # the plain path: no task, no timer
            ep = self.endpoints[0]
            async for piece in self._tracked(ep, opener):
                yield piece
            return
        async for piece in self._race(opener, route if route is not None else {}):
            yield piece

    async def _tracked(self, ep: Endpoint, opener: Opener) -> AsyncGenerator[Any, None]:
        """`opener(ep)` with in-flight, TTFT and outcome bookkeeping."""
        ep.requests += 1
        ep.in_flight += 1
        started = time.monotonic()
        first = True
        try:
            async with contextlib.aclosing(opener(ep)) as pieces:
                async for piece in pieces:
                    if first:
                        first = False
                        ep.observe_ttft(time.monotonic() - started)
                    yield piece
            ep.ok += 1
        except (asyncio.CancelledError, GeneratorExit):
            if first:
                ep.cancelled += 1
                ep.observe_lower_bound(time.monotonic() - started)
            raise
        except BaseException as exc:
            self.failed(ep, exc)
            raise
        finally:
            ep.in_flight -= 1

    async def _race(self, opener: Opener, route: dict[str, Any]) -> AsyncIterator[Any]:
        """Race endpoints for the first piece (failover and hedging), then stream the
        winner's answer; the losers are cancelled and their responses closed."""
        race = _Race(self, opener)
        streaming: AsyncGenerator[Any, None] | None = None  # the winner's stream, once chosen
        try:
            winner = await race.first()
            ep, streaming = race.claim(winner)
            route.update(race.route(ep))
            if winner.result() is _EMPTY:
                return
            yield winner.result()
            async for piece in streaming:  # no switching after the first token
                yield piece
        finally:
            race.drop_all()
            if streaming is not None:  # closed early by the consumer: close the response too
                await streaming.aclose()


async def _first_piece(it: AsyncGenerator[Any, None]) -> Any:
    try:
        return await it.__anext__()
    except StopAsyncIteration:  # an empty answer is an answer too
        return _EMPTY


class _Race:
    """One request raced over a pool's endpoints until one of them yields a first piece: a
    retryable failure moves it to an endpoint not tried yet, a slow first token brings in one
    hedge. At most `budget` requests in all."""

    def __init__(self, pool: EndpointPool, opener: Opener) -> None:
        self.pool = pool
        self.opener = opener
        self.tried: list[Endpoint] = []
        # each request in the race: its endpoint, its stream, and when it was sent
        self.racers: dict[asyncio.Task[Any], tuple[Endpoint, AsyncGenerator[Any, None], float]]
        self.racers = {}
        self.hedge: Endpoint | None = None
        self.failovers = 0
        self.error: EndpointError | None = None
        self.budget = min(pool.attempts, len(pool.endpoints))

    def launch(self, ep: Endpoint) -> None:
        self.tried.append(ep)
        it = self.pool._tracked(ep, self.opener)
        task = asyncio.ensure_future(_first_piece(it))
        self.racers[task] = (ep, it, time.monotonic())

    def drop(self, task: asyncio.Task[Any]) -> None:
        """Cancel a losing request and close its stream, off the winner's path."""
        _ep, it, _t = self.racers.pop(task)

        async def close() -> None:
            task.cancel()
            with contextlib.suppress(BaseException):  # the loser's fate does not matter
                await task
            with contextlib.suppress(BaseException):
                await it.aclose()

        closer = asyncio.ensure_future(close())
        _background.add(closer)
        closer.add_done_callback(_background.discard)

    def drop_all(self) -> None:
        for task in list(self.racers):
            self.drop(task)

    def hedge_timeout(self) -> float | None:
        """Seconds until a hedge is due; None while no hedge can or may be sent."""
        if self.hedge is not None or len(self.racers) != 1 or len(self.tried) >= self.budget:
            return None
        ((primary, _, since),) = self.racers.values()
        delay = self.pool.delay_for(primary)
        if delay is None or self.pool.pick(self.tried, rotate=False) is None:
            return None
        return max(0.0, since + delay - time.monotonic())

    def send_hedge(self) -> None:
        """No first token within the hedge delay: ask a second endpoint."""
        spare = self.pool.pick(self.tried)
        if spare is not None:
            self.hedge = spare
            spare.hedges_sent += 1
            self.launch(spare)

    def settle(self, done: Iterable[asyncio.Task[Any]]) -> asyncio.Task[Any] | None:
        """The first finished request with a first piece; failed ones are removed (a
        non-retryable failure is raised at once)."""
        winner: asyncio.Task[Any] | None = None
        for task in done:
            ep, _it, _t = self.racers[task]
            exc = task.exception()
            if exc is None:
                if winner is None:
                    winner = task
                continue
            self.racers.pop(task)
            if not isinstance(exc, EndpointError) or not exc.retryable:
                raise exc
            self.error = exc
            if self.racers or len(self.tried) < self.budget:
                ep.failovers += 1
                self.failovers += 1
        return winner

    async def first(self) -> asyncio.Task[Any]:
        """Launch, fail over and hedge until a request yields its first piece (or ended
        empty); raise the last retryable error when the budget or the endpoints run out."""
        ep = self.pool.pick() or self.pool.soonest()
        assert ep is not None
        self.launch(ep)
        while True:
            if not self.racers:
                nxt = await self.pool._next(self.tried) if len(self.tried) < self.budget else None
                if nxt is None:
                    assert self.error is not None
                    raise self.error
                self.launch(nxt)
            done, _ = await asyncio.wait(
                self.racers, timeout=self.hedge_timeout(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                self.send_hedge()
                continue
            winner = self.settle(done)
            if winner is not None:
                return winner

    def claim(self, winner: asyncio.Task[Any]) -> tuple[Endpoint, AsyncGenerator[Any, None]]:
        """Cancel the other requests; the winner's endpoint and stream."""
        for task in list(self.racers):
            if task is not winner:
                self.drop(task)
        ep, streaming, _t = self.racers.pop(winner)
        ep.hedges_won += int(ep is self.hedge)
        return ep, streaming

    def route(self, ep: Endpoint) -> dict[str, Any]:
        """What happened to the request (for the answer's trace)."""
        won = ep is self.hedge
        return {
            "endpoint": ep.label,
            "attempts": len(self.tried),
            "failovers": self.failovers,
            "hedged": int(self.hedge is not None),
            "hedge_won": int(won),
        }
