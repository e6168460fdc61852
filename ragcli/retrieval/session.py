"""An `ask` session: questions answered in turn by one pipeline, written as `ragcli ask`
prints them — the answer streamed as it comes then the sources, or one JSON line each.

The same code writes to this process's stdout (`ragcli ask` in-process) and to the frames
the daemon streams to a client (ragcli.daemon.routes), so both print the same bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.core.errors import ProviderError
from ragcli.retrieval.answer import Answer, collect
from ragcli.retrieval.relevance import shown

if TYPE_CHECKING:
    from ragcli.retrieval.events import Query
    from ragcli.retrieval.pipeline import Pipeline

Counters = dict[str, dict[str, int]]
_CITATION = re.compile(r"\[(\d+)\]")


class Output(Protocol):
    """Where a session writes: stdout text (flushed at once) and dim notes on stderr."""

    def write(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


async def answer_all(
    pipeline: Pipeline, queries: Sequence[Query], out: Output, as_json: bool, batch: bool
) -> None:
    """Answer each question in turn (their retrievals batched first when there are several).
    The `caches` counts of each JSON line are those of this session alone."""
    before = pipeline.counters()
    if len(queries) > 1:
        await pipeline.prefetch(queries)
    for n, query in enumerate(queries):
        if batch and not as_json:
            out.write(f"{'' if n == 0 else chr(10)}Q: {query.question}\n")
        result = await answer_one(pipeline, query, out, stream=not as_json)
        result["caches"] = since(pipeline.counters(), before)
        if as_json:
            out.write(json.dumps(result) + "\n")
        else:
            write_sources(result, out, pipeline.settings.source_floor)


async def answer_one(pipeline: Pipeline, query: Query, out: Output, stream: bool) -> dict[str, Any]:
    """Run one question; write tokens as they arrive when `stream`."""
    label = getattr(pipeline.generator, "label", "")

    def on_sources(_sources: list[Any]) -> None:
        if stream and label:
            out.note(label)

    def on_token(text: str) -> None:
        if stream:
            out.write(text)

    answer = Answer()
    try:
        await collect(pipeline.ask(query), on_token, on_sources, into=answer)
    except ProviderError as exc:
        if answer.pieces and stream:
            # Keep what arrived, visibly marked; the answer cache never stores it.
            out.write("\n[answer cut off: the provider stopped mid-stream]\n")
            raise ProviderError(f"the answer is incomplete: {exc}") from None
        raise
    # a stream that ends without a token has no TTFT: an internal error, as before the split
    assert answer.done is not None and answer.ttft_ms is not None
    return {
        "question": query.question,
        "answer": answer.text,
        "generator": answer.done.generator,
        "cached": answer.cached or False,
        "answered": answer.answered,
        "sources": answer.source_dicts(),
        "ttft_ms": round(answer.ttft_ms, 3),
    }


def since(now: Counters, before: Counters) -> Counters:
    """Cache counters accumulated since `before` (a cache absent then counts from zero)."""
    return {
        cache: {key: value - before.get(cache, {}).get(key, 0) for key, value in counts.items()}
        for cache, counts in now.items()
    }


def write_sources(result: dict[str, Any], out: Output, floor: float = 0.0) -> None:
    """After the answer: one line per document. An answer's sources: those it cites first,
    then by rank, only those whose relevance reaches `floor` × the best one's; an abstention's
    closest sources, labelled as such (none of them is cited)."""
    if result["cached"]:
        out.note(f"(cached answer: {result['cached']} match)")
    out.write("\n\n")
    answered = result.get("answered", True)
    out.write("Sources:\n" if answered else "Closest sources (they do not answer it):\n")
    # One line per document; the numbers are its chunks as cited in the answer (the
    # prefix-cache prompt layout numbers sources in document order, not by rank).
    cited = {int(n) for n in _CITATION.findall(result["answer"])} if answered else set()
    kept = shown(result["sources"], floor) if answered else result["sources"]
    order = sorted(kept, key=lambda s: (s["number"] not in cited, s.get("rank", s["number"])))
    docs: dict[str, list[dict[str, Any]]] = {}
    for s in order:
        docs.setdefault(s["source"], []).append(s)
    for source, chunks in docs.items():
        first = chunks[0]
        refs = "".join(f"[{c['number']}]" for c in chunks) if answered else "-"
        values = [c["relevance"] for c in chunks if c.get("relevance") is not None]
        relevance = f"relevance {max(values):.2f}" if values else "relevance —"
        out.write(
            f"  {refs} {source} — {first['title']} ({first['partition']}, {first['date']}) "
            f"{relevance}\n"
        )
