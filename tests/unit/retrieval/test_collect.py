"""`collect` and `stream_tokens` (ragcli/retrieval/answer.py): one `Pipeline.ask` event
stream gathered into an `Answer`, tokens forwarded as they arrive, what arrived kept when
the stream fails; and the one span serializer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ragcli.core.errors import ProviderError
from ragcli.index.catalog import ChunkRecord
from ragcli.retrieval.answer import Answer, collect, span_dict, span_dicts, stream_tokens
from ragcli.retrieval.events import DoneEvent, Event, SourcesEvent, Span, TokenEvent
from ragcli.retrieval.prompt import Source

MS = 1_000_000
T0 = 5_000 * MS  # the question's arrival on the perf_counter_ns clock
CHUNK = ChunkRecord("c1", "Click Hand Over.", "/c/ops/pager.md", "ops/pager.md", "ops", "Pager",
                    "2026-03-14", 0)  # fmt: skip
SOURCES = [Source(1, CHUNK, 0.87654, 1)]
RETRIEVE = Span("retrieve", T0 + 2 * MS, T0 + 5 * MS, {"cache": "miss", "k": 5})
FIRST = Span("llm.first_token", T0 + 6 * MS, T0 + 9 * MS)
STREAM = Span("llm.stream", T0 + 9 * MS, T0 + 12 * MS, {"pieces": 2})
DONE = DoneEvent("Click Hand Over.", "extractive", T0, T0 + 9 * MS, T0 + 12 * MS, 2, "exact")


def events(fail_after: int | None = None) -> AsyncIterator[Event]:
    """What `Pipeline.ask` yields for one answer; `fail_after` n events: a provider error."""
    stream: list[Event] = [
        RETRIEVE,
        SourcesEvent(SOURCES, None),
        FIRST,
        TokenEvent("Click "),
        TokenEvent("Hand Over."),
        STREAM,
        DONE,
    ]

    async def gen() -> AsyncIterator[Event]:
        for n, event in enumerate(stream):
            if n == fail_after:
                raise ProviderError("the provider stopped mid-stream")
            await asyncio.sleep(0)
            yield event

    return gen()


def test_collect_gathers_every_event_and_forwards_tokens_in_order() -> None:
    seen: list[str] = []
    known: list[list[Source]] = []

    def on_token(text: str) -> None:
        seen.append(text)

    answer = asyncio.run(collect(events(), on_token, known.append))
    assert seen == ["Click ", "Hand Over."] == answer.pieces
    assert known == [SOURCES] and answer.sources == SOURCES and answer.prompt is None
    assert answer.spans == [RETRIEVE, FIRST, STREAM] and answer.done == DONE
    assert answer.text == "Click Hand Over." and answer.cached == "exact"
    assert answer.ttft_ms == 9.0
    assert answer.source_dicts() == [SOURCES[0].as_dict()]
    assert answer.source_dicts()[0]["score"] == 0.8765


def test_on_sources_is_called_before_the_first_token() -> None:
    order: list[str] = []
    asyncio.run(collect(events(), lambda t: order.append("token"), lambda s: order.append("src")))
    assert order == ["src", "token", "token"]


def test_a_failed_stream_keeps_what_arrived_in_into() -> None:
    answer = Answer()
    with pytest.raises(ProviderError):
        asyncio.run(collect(events(fail_after=4), into=answer))  # after the first token
    assert answer.done is None and answer.pieces == ["Click "] and answer.text == "Click "
    assert answer.spans == [RETRIEVE, FIRST] and answer.sources == SOURCES
    assert answer.ttft_ms is None and answer.cached == ""


def test_stream_tokens_yields_each_token_while_it_folds_the_rest() -> None:
    answer = Answer()

    async def go() -> list[tuple[str, int]]:
        # each token comes out before the next event is read: the spans seen so far show it
        return [(text, len(answer.spans)) async for text in stream_tokens(events(), answer)]

    assert asyncio.run(go()) == [("Click ", 2), ("Hand Over.", 2)]
    assert answer.done == DONE and len(answer.spans) == 3


def test_span_dict_is_the_one_serializer() -> None:
    assert span_dict(RETRIEVE, T0) == {
        "name": "retrieve",
        "start_ms": 2.0,
        "ms": 3.0,
        "attrs": {"cache": "miss", "k": 5},
    }
    assert list(span_dict(RETRIEVE, T0)) == ["name", "start_ms", "ms", "attrs"]
    assert span_dict(FIRST, T0) == {"name": "llm.first_token", "start_ms": 6.0, "ms": 3.0}
    assert span_dict(RETRIEVE, attrs=False) == {"name": "retrieve", "ms": 3.0}
    odd = Span("embed", T0, T0 + 1_234_567)
    assert span_dict(odd, ndigits=1) == {"name": "embed", "ms": 1.2}
    assert span_dict(odd, T0 - 1) == {"name": "embed", "start_ms": 0.0, "ms": 1.235}
    assert span_dicts([STREAM, RETRIEVE], T0) == [span_dict(STREAM, T0), span_dict(RETRIEVE, T0)]


def test_answer_span_dicts_count_from_the_question_else_the_first_span() -> None:
    answer = asyncio.run(collect(events()))
    assert [s["start_ms"] for s in answer.span_dicts()] == [2.0, 6.0, 9.0]
    partial = Answer(spans=[FIRST, STREAM])  # no summary: timed from the first span
    assert [s["start_ms"] for s in partial.span_dicts()] == [0.0, 3.0]
    assert Answer().span_dicts() == []
