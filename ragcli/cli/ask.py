"""`ragcli ask`: answer questions from the index (or a running `ragcli serve`), streaming the
answer to stdout, then the sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragcli.cli.common import (
    ContextOpt,
    JsonFlag,
    KOpt,
    LayoutOpt,
    LlmOpt,
    NoCacheOpt,
    PartitionOpt,
    RetrievalOpt,
    SinceOpt,
    SourceOpt,
    print_json,
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
    str | None,
    typer.Option(
        help="Ask a running `ragcli serve` (or set RAGCLI_SERVER): http://HOST:PORT, or "
        "unix:PATH for a socket."
    ),
]
NoDaemonOpt = Annotated[
    bool,
    typer.Option(
        "--no-daemon",
        help="Answer in this process, not through the data directory's warm daemon "
        "(or RAGCLI_DAEMON=off).",
    ),
]
FloorOpt = Annotated[
    float | None,
    typer.Option(
        "--source-floor",
        help="Print only the sources whose relevance is at least this share (0-1) of the "
        "best one's; 0 prints them all [0.8].",
    ),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Say on stderr whether the daemon answered.")
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
    source_floor: FloorOpt = None,
    batch: BatchOpt = None,
    server: ServerOpt = None,
    as_json: JsonFlag = False,
    no_daemon: NoDaemonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Answer a question from the index, streaming the answer, then list the sources.

    A question goes to the data directory's warm daemon when it can answer it (started by
    the first `ask`; `ragcli daemon --help`); otherwise it is answered in this process."""
    from ragcli.core.errors import UsageError

    del no_daemon, verbose  # read before Typer by the entry point (ragcli.daemon.fastpath)
    if (question is None) == (batch is None):
        raise UsageError("give either a QUESTION or --batch FILE")
    if source_floor is not None and not 0.0 <= source_floor <= 1.0:  # NaN too
        raise UsageError(f"--source-floor must be between 0 and 1, got {source_floor}")
    settings = settings_from(
        ctx,
        k=k,
        no_cache=no_cache,
        server=server,
        retrieval=retrieval,
        llm=llm,
        prompt_layout=prompt_layout,
        max_context_tokens=max_context_tokens,
        source_floor=source_floor,
    )
    from ragcli.retrieval.questions import QueryFlags, queries_from

    flags = QueryFlags(k, tuple(partition or ()), since, source)
    queries = queries_from(question, batch, flags)
    if settings.server:
        _ask_remote(settings.server, queries, as_json, batch is not None, settings.source_floor)
        return
    from ragcli.retrieval.pipeline import Pipeline

    run(_ask_local(Pipeline(settings), queries, as_json, batch is not None))


class _Console:
    """The session's output in this process: stdout, and rich's dim notes on stderr."""

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def note(self, text: str) -> None:
        stderr().print(text, style="dim", markup=False)


async def _ask_local(pipeline: Pipeline, queries: list[Query], as_json: bool, batch: bool) -> None:
    """Answer each question in turn with the pipeline in this process, then close it."""
    from ragcli.retrieval.session import answer_all

    try:
        await answer_all(pipeline, queries, _Console(), as_json, batch)
    finally:
        pipeline.close()


def _ask_remote(
    server: str, queries: list[Query], as_json: bool, batch: bool, floor: float
) -> None:
    """Ask a running `ragcli serve`, streaming its tokens as they arrive (not in --json)."""
    from ragcli.retrieval.session import write_sources
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
            write_sources(result, _Console(), floor)
