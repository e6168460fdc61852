"""The warm `Service` behind `serve`: one pipeline kept loaded, the count of requests in
flight (admission control), and the Prometheus series each answered request adds to."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ragcli.retrieval.events import DoneEvent, Event, Query, SourcesEvent, Span, TokenEvent
from ragcli.retrieval.pipeline import Pipeline
from ragcli.serve.prometheus import Registry

if TYPE_CHECKING:
    from ragcli.core.config import Settings

Counters = dict[str, dict[str, int]]
NO_SOURCES = "No ingested text matches this question."  # as the pipeline says it


class Service:
    """The warm pipeline plus admission control and metrics."""

    def __init__(self, settings: Settings, max_concurrency: int, request_timeout: float) -> None:
        self.settings = settings
        self.pipeline = Pipeline(settings)
        self.max_concurrency = max_concurrency
        self.request_timeout = request_timeout
        self.in_flight = 0
        self.metrics = Registry()
        self.started = time.time()
        self.last_active = time.monotonic()  # a request admitted or ended (the daemon's idle)
        self.warm_spans: list[Span] = []
        self._partitions: tuple[int, set[str]] | None = None
        m = self.metrics
        m.describe("ragcli_requests_total", "counter", "HTTP requests by endpoint and status.")
        m.describe("ragcli_stage_seconds", "histogram", "Pipeline stage durations.")
        m.describe("ragcli_ttft_seconds", "histogram", "Question received to first token.")
        m.describe("ragcli_cache_events_total", "counter", "Cache hits and misses by cache.")
        m.describe("ragcli_provider_errors_total", "counter", "Errors from the LLM/embedder.")
        m.describe("ragcli_overloaded_total", "counter", "Requests refused with 503.")

    async def start(self) -> None:
        self.warm_spans = await self.pipeline.warm()
        note = getattr(self.pipeline.generator, "warm_note", "")  # e.g. a local LLM's prefix
        if note:
            print(f"ragcli serve: warmed: {note}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.pipeline.close()

    async def known_partitions(self) -> set[str]:
        """The partitions the index holds now, read once per catalogue version."""
        if self.pipeline.catalog is None:
            await self.pipeline.open()
        catalog = self.pipeline.catalog
        assert catalog is not None
        version = catalog.version
        if self._partitions is None or self._partitions[0] != version:
            self._partitions = (version, catalog.partition_names())
        return self._partitions[1]

    async def ask(self, query: Query | None) -> AsyncIterator[Event]:
        """The pipeline's answer to `query`; None (a scope of no partition the index holds)
        is answered from no sources, without searching."""
        if query is not None:
            async for event in self.pipeline.ask(query):
                yield event
            return
        now = time.perf_counter_ns()
        yield SourcesEvent([], None)
        yield TokenEvent(NO_SOURCES)
        yield DoneEvent(NO_SOURCES, self.pipeline.generator.name, now, now, now, 1)

    def admit(self) -> bool:
        if self.in_flight >= self.max_concurrency:
            self.metrics.inc("ragcli_overloaded_total")
            return False
        self.in_flight += 1
        self.last_active = time.monotonic()
        return True

    def release(self) -> None:
        self.in_flight -= 1
        self.last_active = time.monotonic()

    def record(self, spans: list[Span], done: DoneEvent | None, before: Counters) -> None:
        """Stage latencies, TTFT and the cache hits/misses since `before` (counters())."""
        for s in spans:
            self.metrics.observe("ragcli_stage_seconds", s.ms / 1000, stage=s.name)
        if done is not None and done.first_token_ns is not None:
            self.metrics.observe(
                "ragcli_ttft_seconds", (done.first_token_ns - done.started_ns) / 1e9
            )
        after = self.pipeline.counters()
        for cache, counts in after.items():
            for event in ("hits", "misses"):
                delta = counts.get(event, 0) - before.get(cache, {}).get(event, 0)
                if delta:
                    self.metrics.inc("ragcli_cache_events_total", delta, cache=cache, event=event)
