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
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ragcli.core.errors import ConfigError, ProviderError

WINDOW = 64  # recent TTFTs kept per endpoint for the p95
MIN_SAMPLES = 10  # before this many, the hedge delay is HEDGE_DEFAULT_S
HEDGE_DEFAULT_S = 1.0
HEDGE_FLOOR_S = 0.05
EWMA_ALPHA = 0.3
ERROR_COOLDOWN_S = 2.0  # an endpoint that refused a connection or answered 5xx rests this long
MAX_COOLDOWN_WAIT_S = 5.0  # wait at most this long for a cooling endpoint when all are


class EndpointError(ProviderError):
    """A request to one endpoint failed. `retryable`: another endpoint may succeed (connection
    errors, timeouts, 5xx, 429); `retry_after`: seconds the endpoint asked for (429)."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def parse_endpoints(raw: str, fallback: str = "") -> list[str]:
    """Comma-separated base URLs (a TOML list arrives joined by commas); `fallback` (the
    single `openai_base_url`, possibly "" for api.openai.com) when the list is empty."""
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint {url!r}: use an http:// or https:// base URL")
    if len(set(urls)) != len(urls):
        raise ConfigError("the same endpoint is listed twice")
    return urls or [fallback]


def parse_hedge_delay(raw: str) -> float | None:
    """Seconds, or -1 for "auto" (the endpoint's recent p95 TTFT), or None for off."""
    text = str(raw).strip().lower()
    if text in ("", "auto", "p95"):
        return -1.0
    if text in ("off", "no", "false", "none"):
        return None
    try:
        ms = float(text)
    except ValueError:
        raise ConfigError(
            f"hedge_delay_ms {raw!r}: use auto (the endpoint's p95 TTFT), a number of "
            "milliseconds, or 0/off"
        ) from None
    if not math.isfinite(ms) or ms < 0:
        raise ConfigError(f"hedge_delay_ms must be 0 (off) or more, got {raw!r}")
    return None if ms == 0 else ms / 1000


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


Opener = Callable[[Endpoint], AsyncIterator[Any]]
_EMPTY = object()  # a stream that ended without a piece
_background: set[asyncio.Task[Any]] = set()  # losers being cancelled: keep them referenced


class EndpointPool:
    """The endpoints of one provider role (chat or embeddings) and their recent behaviour.
    Touched only from the event loop's thread, so it needs no lock."""

    def __init__(
        self, urls: Iterable[str], hedge_delay: float | None = None, attempts: int = 3
    ) -> None:
        self.endpoints = [Endpoint(u) for u in urls] or [Endpoint("")]
        self.hedge_delay = hedge_delay  # seconds, -1 auto, None off
        self.attempts = max(1, attempts)
        self._turn = 0

    def __len__(self) -> int:
        return len(self.endpoints)

    # -- choosing --------------------------------------------------------------------------
    def pick(self, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """The best endpoint not in `exclude` and not cooling down; None if there is none."""
        now = time.monotonic()
        skip = {id(e) for e in exclude}
        ready = [e for e in self.endpoints if id(e) not in skip and e.cool_until <= now]
        if not ready:
            return None
        n, turn = len(self.endpoints), self._turn
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

    async def stream(self, opener: Opener, route: dict[str, Any] | None = None) -> AsyncIterator:
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

    async def _tracked(self, ep: Endpoint, opener: Opener) -> AsyncIterator[Any]:
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
        tried: list[Endpoint] = []
        racers: dict[asyncio.Task[Any], tuple[Endpoint, AsyncIterator[Any], float]] = {}
        hedge: Endpoint | None = None
        failovers = 0
        error: EndpointError | None = None
        budget = min(self.attempts, len(self.endpoints))
        streaming: AsyncIterator[Any] | None = None  # the winner's stream, once chosen

        async def first_piece(it: AsyncIterator[Any]) -> Any:
            try:
                return await it.__anext__()
            except StopAsyncIteration:  # an empty answer is an answer too
                return _EMPTY

        def launch(ep: Endpoint) -> None:
            tried.append(ep)
            it = self._tracked(ep, opener)
            task = asyncio.ensure_future(first_piece(it))
            racers[task] = (ep, it, time.monotonic())

        def drop(task: asyncio.Task[Any]) -> None:
            """Cancel a losing request and close its stream, off the winner's path."""
            _ep, it, _t = racers.pop(task)

            async def close() -> None:
                task.cancel()
                with contextlib.suppress(BaseException):  # the loser's fate does not matter
                    await task
                with contextlib.suppress(BaseException):
                    await it.aclose()  # type: ignore[attr-defined]

            closer = asyncio.ensure_future(close())
            _background.add(closer)
            closer.add_done_callback(_background.discard)

        try:
            ep = self.pick() or self.soonest()
            assert ep is not None
            launch(ep)
            winner: asyncio.Task[Any] | None = None
            while winner is None:
                if not racers:
                    nxt = await self._next(tried) if len(tried) < budget else None
                    if nxt is None:
                        assert error is not None
                        raise error
                    launch(nxt)
                timeout = None
                if hedge is None and len(racers) == 1 and len(tried) < budget:
                    ((primary, _, since),) = racers.values()
                    delay = self.delay_for(primary)
                    if delay is not None and self.pick(tried) is not None:
                        timeout = max(0.0, since + delay - time.monotonic())
                done, _ = await asyncio.wait(
                    racers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # no first token within the hedge delay: ask a second endpoint
                    spare = self.pick(tried)
                    if spare is not None:
                        hedge = spare
                        spare.hedges_sent += 1
                        launch(spare)
                    continue
                for task in done:
                    ep, it, _t = racers[task]
                    exc = task.exception()
                    if exc is None:
                        if winner is None:
                            winner = task
                        continue
                    racers.pop(task)
                    if not isinstance(exc, EndpointError) or not exc.retryable:
                        raise exc
                    error = exc
                    if racers or len(tried) < budget:
                        ep.failovers += 1
                        failovers += 1
            for task in list(racers):
                if task is not winner:
                    drop(task)
            ep, streaming, _t = racers.pop(winner)
            won = ep is hedge
            ep.hedges_won += int(won)
            route.update(
                endpoint=ep.label,
                attempts=len(tried),
                failovers=failovers,
                hedged=int(hedge is not None),
                hedge_won=int(won),
            )
            if winner.result() is _EMPTY:
                return
            yield winner.result()
            async for piece in streaming:  # no switching after the first token
                yield piece
        finally:
            for task in list(racers):
                drop(task)
            if streaming is not None:  # closed early by the consumer: close the response too
                await streaming.aclose()  # type: ignore[attr-defined]
