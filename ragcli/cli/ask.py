"""`ragcli ask`: answer questions from the index (or a running `ragcli serve`), streaming the
answer to stdout, then the sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli.common import (
    ContextOpt,
    JsonFlag,
    KOpt,
    LayoutOpt,
    LlmOpt,
    NoCacheOpt,
    PartitionOpt,
    QueryFlags,
    RetrievalOpt,
    SinceOpt,
    SourceOpt,
    print_json,
    queries_from,
    run,
    settings_from,
    stderr,
)

if TYPE_CHECKING:
    from ragcli.retrieval.events import Query
    from ragcli.retrieval.pipeline import Pipeline

QuestionArg = Annotated[str | None, typer.Argument(help="The question.", show_default=False)]
BatchOpt = Annotated[
    Path | None,
    typer.Option(help="Answer every question in FILE (a question a line, or JSONL)."),
]
ServerOpt = Annotated[
    str | None, typer.Option(help="Ask a running `ragcli serve` (or set RAGCLI_SERVER).")
]


def ask(
    ctx: typer.Context,
    question: QuestionArg = None,
    k: KOpt = None,
    partition: PartitionOpt = None,
    since: SinceOpt = None,
    source: SourceOpt = None,
    no_cache: NoCacheOpt = None,
    retrieval: RetrievalOpt = None,
    llm: LlmOpt = None,
    prompt_layout: LayoutOpt = None,
    max_context_tokens: ContextOpt = None,
    batch: BatchOpt = None,
    server: ServerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from the index, streaming the answer, then list the sources."""
    from ragcli.core.errors import UsageError

    if (question is None) == (batch is None):
        raise UsageError("give either a QUESTION or --batch FILE")
    settings = settings_from(
        ctx,
        k=k,
        no_cache=no_cache,
        server=server,
        retrieval=retrieval,
        llm=llm,
        prompt_layout=prompt_layout,
        max_context_tokens=max_context_tokens,
    )
    flags = QueryFlags(k, tuple(partition or ()), since, source)
    queries = queries_from(question, batch, flags)
    if settings.server:
        _ask_remote(settings.server, queries, as_json, batch is not None)
        return
    from ragcli.retrieval.pipeline import Pipeline

    run(_ask_local(Pipeline(settings), queries, as_json, batch is not None))


async def _ask_local(pipeline: Pipeline, queries: list[Query], as_json: bool, batch: bool) -> None:
    """Answer each question in turn with the pipeline in this process, then close it."""
    try:
        if len(queries) > 1:
            await pipeline.prefetch(queries)
        for n, query in enumerate(queries):
            if batch and not as_json:
                print(f"{'' if n == 0 else chr(10)}Q: {query.question}")
            result = await _answer(pipeline, query, stream=not as_json)
            if as_json:
                print_json(result, flush=True)
            else:
                _print_sources(result)
    finally:
        pipeline.close()


async def _answer(pipeline: Pipeline, query: Query, stream: bool) -> dict[str, Any]:
    """Run one question; write tokens to stdout as they arrive when `stream`."""
    from ragcli.core.errors import ProviderError
    from ragcli.retrieval.answer import Answer, collect

    label = getattr(pipeline.generator, "label", "")

    def on_sources(_sources: list[Any]) -> None:
        if stream and label:
            stderr().print(f"[dim]{label}[/]")

    def on_token(text: str) -> None:
        if stream:
            sys.stdout.write(text)
            sys.stdout.flush()

    answer = Answer()
    try:
        await collect(pipeline.ask(query), on_token, on_sources, into=answer)
    except ProviderError as exc:
        if answer.pieces and stream:
            # Keep what arrived, visibly marked; the answer cache never stores it.
            sys.stdout.write("\n[answer cut off: the provider stopped mid-stream]\n")
            sys.stdout.flush()
            raise ProviderError(f"the answer is incomplete: {exc}") from None
        raise
    # a stream that ends without a token has no TTFT: an internal error, as before the split
    assert answer.done is not None and answer.ttft_ms is not None
    return {
        "question": query.question,
        "answer": answer.text,
        "generator": answer.done.generator,
        "cached": answer.cached or False,
        "sources": answer.source_dicts(),
        "ttft_ms": round(answer.ttft_ms, 3),
        "caches": pipeline.counters(),
    }


def _ask_remote(server: str, queries: list[Query], as_json: bool, batch: bool) -> None:
    """Ask a running `ragcli serve`, streaming its tokens as they arrive (not in --json)."""
    from ragcli.serve.remote import ask_remote

    def write(text: str) -> None:
        if not as_json:
            sys.stdout.write(text)
            sys.stdout.flush()

    for n, query in enumerate(queries):
        if batch and not as_json:
            print(f"{'' if n == 0 else chr(10)}Q: {query.question}")
        result = ask_remote(server, query, write)
        if as_json:
            print_json(result, flush=True)
        else:
            _print_sources(result)


def _print_sources(result: dict[str, Any]) -> None:
    """After the answer: one line per cited document, best first."""
    if result["cached"]:
        stderr().print(f"[dim](cached answer: {result['cached']} match)[/]")
    print("\n")
    print("Sources:")
    # One line per document, best first; the numbers are its chunks as cited in the answer
    # (the prefix-cache prompt layout numbers sources in document order, not by rank).
    docs: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(result["sources"], key=lambda s: s.get("rank", s["number"])):
        docs.setdefault(s["source"], []).append(s)
    for source, chunks in docs.items():
        first = chunks[0]
        refs = "".join(f"[{c['number']}]" for c in chunks)
        print(
            f"  {refs} {source} — {first['title']} ({first['partition']}, {first['date']}) "
            f"score {max(c['score'] for c in chunks):.3f}"
        )
