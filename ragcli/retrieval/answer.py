"""What a consumer of `Pipeline.ask` makes of its events, written once.

`ask`, `profile` and `serve` all read the same event stream (spans, the sources, answer
tokens, a final summary). This module owns gathering that stream into an `Answer`
(`collect`, or `stream_tokens` for a consumer that forwards each token as it arrives) and
turning spans into the JSON every consumer prints (`span_dict`, `span_dicts`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ragcli.generators.prompt_types import Prompt
from ragcli.retrieval.events import DoneEvent, Event, SourcesEvent, Span, TokenEvent
from ragcli.retrieval.prompt import Source


@dataclass
class Answer:
    """One question's events, gathered as they arrived.

    Filled in place, so whoever passed it in keeps what arrived even when the stream stops
    with an error (`done` is then None)."""

    spans: list[Span] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    prompt: Prompt | None = None  # None when the answer came from the cache
    pieces: list[str] = field(default_factory=list)  # the streamed tokens, in order
    done: DoneEvent | None = None

    def add(self, event: Event) -> str | None:
        """Fold one event in; returns a token's text, else None."""
        if isinstance(event, TokenEvent):
            self.pieces.append(event.text)
            return event.text
        if isinstance(event, Span):
            self.spans.append(event)
        elif isinstance(event, SourcesEvent):
            self.sources, self.prompt = event.sources, event.prompt
        elif isinstance(event, DoneEvent):
            self.done = event
        return None

    @property
    def text(self) -> str:
        """The whole answer (what streamed so far when the stream did not finish)."""
        return self.done.answer if self.done is not None else "".join(self.pieces)

    @property
    def cached(self) -> str:
        """ "", "exact" or "semantic"."""
        return self.done.cached if self.done is not None else ""

    @property
    def answered(self) -> bool:
        """False when the pipeline abstained (no answer in the indexed documents)."""
        return self.done.answered if self.done is not None else True

    @property
    def ttft_ms(self) -> float | None:
        """Question received → first answer token, in ms; None before the first token."""
        done = self.done
        if done is None or done.first_token_ns is None:
            return None
        return (done.first_token_ns - done.started_ns) / 1e6

    def source_dicts(self) -> list[dict[str, object]]:
        """The sources as `--json` and `serve` show them."""
        return [s.as_dict() for s in self.sources]

    def span_dicts(self) -> list[dict[str, Any]]:
        """The spans as JSON, timed from the question's arrival (else from the first span)."""
        zero = self.done.started_ns if self.done else (self.spans[0].start_ns if self.spans else 0)
        return span_dicts(self.spans, zero)


async def stream_tokens(
    events: AsyncIterable[Event],
    answer: Answer,
    on_sources: Callable[[list[Source]], object] | None = None,
) -> AsyncIterator[str]:
    """Fold every event into `answer` and yield each token's text as it arrives (for a
    consumer that is itself a generator, such as the server's SSE stream)."""
    async for event in events:
        text = answer.add(event)
        if text is not None:
            yield text
        elif on_sources is not None and isinstance(event, SourcesEvent):
            on_sources(event.sources)


async def collect(
    events: AsyncIterable[Event],
    on_token: Callable[[str], object] | None = None,
    on_sources: Callable[[list[Source]], object] | None = None,
    into: Answer | None = None,
) -> Answer:
    """Gather one `Pipeline.ask` into an `Answer`. `on_token` sees each token as it arrives,
    `on_sources` the sources once known; errors propagate, and `into` (when given) keeps what
    arrived before them."""
    answer = into if into is not None else Answer()
    async for text in stream_tokens(events, answer, on_sources):
        if on_token is not None:
            on_token(text)
    return answer


def span_dict(
    span: Span, zero_ns: int | None = None, *, ndigits: int = 3, attrs: bool = True
) -> dict[str, Any]:
    """One span as JSON: its name, `start_ms` after `zero_ns` (when given), `ms`, and its
    attributes when it has any (and `attrs`). The one span serializer of ragcli."""
    out: dict[str, Any] = {"name": span.name}
    if zero_ns is not None:
        out["start_ms"] = round((span.start_ns - zero_ns) / 1e6, 3)
    out["ms"] = round(span.ms, ndigits)
    if attrs and span.attrs:
        out["attrs"] = span.attrs
    return out


def span_dicts(
    spans: Iterable[Span], zero_ns: int | None = None, *, ndigits: int = 3, attrs: bool = True
) -> list[dict[str, Any]]:
    """`span_dict` of each span, in the order given."""
    return [span_dict(s, zero_ns, ndigits=ndigits, attrs=attrs) for s in spans]
