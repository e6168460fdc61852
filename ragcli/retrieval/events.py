"""The request path's vocabulary: the question (`Query`) and the events `Pipeline.ask` yields —
timing spans, the sources, answer tokens as they arrive, and a final summary. `ask`, `profile`
and `serve` consume these; none of them times anything itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragcli.generators.prompt_types import Prompt
from ragcli.retrieval.prompt import Source

# What a generator with several endpoints reports in `prompt.usage` about the route it took;
# the pipeline moves these keys onto the `llm.first_token` span.
ROUTE_KEYS = ("endpoint", "attempts", "failovers", "hedged", "hedge_won")


@dataclass(frozen=True)
class Query:
    question: str
    k: int | None = None
    partitions: tuple[str, ...] = ()
    since: str | None = None  # "30d", "12h", "2w" or an ISO date
    source: str | None = None  # glob over source paths, e.g. "*/runbooks/*"


@dataclass(frozen=True)
class Span:
    name: str
    start_ns: int  # time.perf_counter_ns() clock
    end_ns: int
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class SourcesEvent:
    sources: list[Source]
    prompt: Prompt | None  # None when the answer came from the cache


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: str
    generator: str
    started_ns: int  # when the question was received
    first_token_ns: int | None
    ended_ns: int
    tokens: int  # streamed pieces
    cached: str = ""  # "", "exact" or "semantic"
    piece_times_ns: tuple[int, ...] = ()  # arrival of each streamed piece (for ITL)
    answered: bool = True  # False: the evidence was too weak (retrieval.relevance)


Event = Span | SourcesEvent | TokenEvent | DoneEvent
