"""The `ragcli` command: parse flags, call the library, render. Nothing heavy is imported here;
each command imports what it needs, so `ragcli --help` stays fast."""

from __future__ import annotations

import time

_CLI_STARTED_NS = time.perf_counter_ns()

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any  # noqa: E402

import typer  # noqa: E402

from ragcli import __version__  # noqa: E402
from ragcli.core.config import Settings, load_settings  # noqa: E402
from ragcli.core.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, RagcliError  # noqa: E402

if TYPE_CHECKING:
    from rich.console import Console

    from ragcli.ingest.run import IngestReport

app = typer.Typer(
    name="ragcli",
    help="Retrieval-augmented generation from the shell, built for time-to-first-token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for another writer of the data directory.")
]
PartitionOpt = Annotated[
    list[str] | None,
    typer.Option("--partition", "-p", help="Search only this partition (repeatable)."),
]


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _version(value: bool) -> None:
    if value:
        print(f"ragcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory (default: $RAGCLI_HOME or ~/.local/share/ragcli)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: ./ragcli.toml).")
    ] = None,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            help="Chroma server (`chroma run`) to hold the index, e.g. http://127.0.0.1:8000 "
            "(default: $RAGCLI_CHROMA_URL, else embedded in the data directory).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Redis for the embedding, retrieval and answer caches, e.g. "
            "redis://127.0.0.1:6379/0 (default: $RAGCLI_REDIS_URL, else SQLite in the data "
            "directory).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = {
        "data_dir": data_dir,
        "config": config,
        "chroma_url": chroma_url,
        "redis_url": redis_url,
    }


def _settings(ctx: typer.Context, **overrides: Any) -> Settings:
    obj = ctx.obj or {}
    given = {k: obj.get(k) for k in ("data_dir", "chroma_url", "redis_url")}
    return load_settings({**given, **overrides}, obj.get("config"))


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders to ingest.", show_default=False)
    ],
    partition: Annotated[
        str | None,
        typer.Option(help="Put every file in this partition (default: top folder name)."),
    ] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Tokens per chunk [200].")] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Tokens shared by neighbours [40].")
    ] = None,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow symbolic links.")] = False,
    max_file_size: Annotated[int, typer.Option(help="Skip files larger than this (bytes).")] = 20
    * 1024
    * 1024,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder", help="local, or openai:MODEL (e.g. openai:text-embedding-3-small)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Remote embedder: most requests in flight [8].")
    ] = None,
    rpm: Annotated[
        int | None, typer.Option(help="Remote embedder: requests per minute, 0 = unpaced [0].")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(help="Remote embedder: tokens per minute, 0 = unpaced [0].")
    ] = None,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Read documents, chunk them by tokens, embed them (cached) and index them."""
    from ragcli.embedders import open_embedder
    from ragcli.ingest.run import ingest as run_ingest

    settings = _settings(
        ctx,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        embedder=embedder,
        embed_concurrency=concurrency,
        embed_rpm=rpm,
        embed_tpm=tpm,
    )
    err = _stderr()
    model = open_embedder(settings)
    from ragcli.core.locking import stderr_notice, writer_lock

    with writer_lock(settings.data_dir, wait, "ingest", stderr_notice):
        if as_json or not sys.stderr.isatty():
            report = _run(
                run_ingest(paths, settings, model, partition, follow_symlinks, max_file_size)
            )
        else:
            report = _ingest_with_progress(
                paths, settings, model, partition, follow_symlinks, max_file_size
            )
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/] {skipped.path}: {skipped.reason}", markup=True)
    if report.truncated:
        err.print(
            f"[yellow]truncated[/] {report.truncated} chunks over the embedder's "
            f"{model.max_tokens}-token input limit",
            markup=True,
        )
    _print_ingest_summary(report, settings)


def _ingest_with_progress(*args: Any) -> IngestReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ragcli.ingest.run import ingest as run_ingest

    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_stderr(), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return _run(run_ingest(*args, progress=progress))


def _print_ingest_summary(r: IngestReport, settings: Settings) -> None:
    print(
        f"{r.files} files: {r.new} new, {r.changed} changed, {r.unchanged} unchanged, "
        f"{r.removed} removed, {len(r.skipped)} skipped"
    )
    print(
        f"{r.chunks} chunks in the index (+{r.chunks_added} -{r.chunks_deleted}); "
        f"{r.embedded} chunks embedded, {r.cache_hits} from cache; "
        f"index version {r.index_version}; {r.seconds:.2f} s"
    )
    print(f"data directory: {settings.data_dir}")


# ----------------------------------------------------------------------------------- index
@app.command()
def index(
    ctx: typer.Context,
    m: Annotated[int | None, typer.Option("--m", help="HNSW M: links per node [16].")] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW build beam width [128].")
    ] = None,
    ef_search: Annotated[int | None, typer.Option(help="HNSW query beam width [64].")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
    recall_queries: Annotated[
        int, typer.Option(help="Queries for the recall@10 check (0: skip).")
    ] = 50,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Build or tune the HNSW index; report its size, build time and recall@10 vs exact search."""
    from ragcli.index.tuning import tune_index

    settings = _settings(
        ctx, hnsw_m=m, hnsw_ef_construction=ef_construction, hnsw_ef_search=ef_search
    )
    flags = {"m": m, "ef_construction": ef_construction, "ef_search": ef_search}
    from ragcli.core.locking import stderr_notice, writer_lock

    chosen = {k: v for k, v in flags.items() if v is not None}
    with writer_lock(settings.data_dir, wait, "index", stderr_notice):
        result = _run(tune_index(settings, chosen, rebuild, recall_queries))
    if as_json:
        print(json.dumps(result))
        return
    p, r = result["params"], result
    action = "rebuilt" if r["rebuilt"] else "kept"
    print(
        f"index {action}: {r['vectors']} vectors, M={p['m']} "
        f"ef_construction={p['ef_construction']} ef_search={p['ef_search']}"
    )
    size = "on the Chroma server" if r["disk_bytes"] is None else f"{r['disk_bytes'] / 1e6:.1f} MB"
    print(f"size on disk: {size}; build time: {r['build_seconds']:.2f} s")
    if r["recall_at_10"] is not None:
        print(f"recall@10 vs exact search: {r['recall_at_10']:.3f} ({r['recall_queries']} queries)")


# ------------------------------------------------------------------------------------- ask
NoCacheOpt = Annotated[
    str | None,
    typer.Option("--no-cache", help="Switch caches off: embedding,retrieval,answer or all."),
]
RetrievalOpt = Annotated[
    str | None,
    typer.Option(help="dense (vectors), lexical (FTS5 BM25) or hybrid (both, fused) [hybrid]."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only documents dated within this (30d, 12h, 2w) or since a date."),
]
LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm", help="extractive, openai (OPENAI_BASE_URL/KEY) or local (llama.cpp in-process)."
    ),
]
LayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt-layout",
        help="prefix (canonical source order, question last: prefix-cache friendly), "
        "ranked (best first) or auto [auto].",
    ),
]
ContextOpt = Annotated[
    int | None,
    typer.Option(
        "--max-context-tokens", help="Prompt token budget: fewer tokens, faster prefill [1500]."
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(help="Only documents whose path matches this glob (e.g. '*/runbooks/*')."),
]


def _read_batch(path: Path, defaults: Any) -> list[Any]:
    """A question a line, or JSONL: {"question", and optional k, partition, since, source}."""
    from ragcli.core.errors import UsageError
    from ragcli.retrieval.pipeline import Query

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --batch file {path}: {exc}") from None
    queries = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("{"):
            queries.append(Query(line, *defaults))
            continue
        try:
            obj = json.loads(line)
            parts = obj.get("partition") or obj.get("partitions") or defaults[1]
            queries.append(
                Query(
                    str(obj["question"]),
                    obj.get("k") or defaults[0],
                    tuple([parts] if isinstance(parts, str) else parts),
                    obj.get("since") or defaults[2],
                    obj.get("source") or defaults[3],
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(
                f'{path}:{n}: expected a question or a JSON object with "question"'
            ) from None
    if not queries:
        raise UsageError(f"--batch file {path} holds no questions")
    return queries


async def _answer(pipeline: Any, query: Any, stream: bool) -> dict[str, Any]:
    """Run one question; write tokens to stdout as they arrive when `stream`."""
    from ragcli.core.errors import ProviderError
    from ragcli.retrieval.pipeline import DoneEvent, SourcesEvent, TokenEvent

    sources: list[Any] = []
    done: DoneEvent | None = None
    label = getattr(pipeline.generator, "label", "")
    streamed = False
    try:
        async for event in pipeline.ask(query):
            if isinstance(event, SourcesEvent):
                sources = event.sources
                if stream and label:
                    _stderr().print(f"[dim]{label}[/]")
            elif isinstance(event, TokenEvent):
                streamed = True
                if stream:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
            elif isinstance(event, DoneEvent):
                done = event
    except ProviderError as exc:
        if streamed and stream:
            # Keep what arrived, visibly marked; the answer cache never stores it.
            sys.stdout.write("\n[answer cut off: the provider stopped mid-stream]\n")
            sys.stdout.flush()
            raise ProviderError(f"the answer is incomplete: {exc}") from None
        raise
    assert done is not None
    return {
        "question": query.question,
        "answer": done.answer,
        "generator": done.generator,
        "cached": done.cached or False,
        "sources": [s.as_dict() for s in sources],
        "ttft_ms": round((done.first_token_ns - done.started_ns) / 1e6, 3),
        "caches": pipeline.counters(),
    }


def _ask_remote(server: str, queries: list[Any], as_json: bool, batch: bool) -> None:
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
            print(json.dumps(result), flush=True)
        else:
            _print_sources(result)


def _print_sources(result: dict[str, Any]) -> None:
    if result["cached"]:
        _stderr().print(f"[dim](cached answer: {result['cached']} match)[/]")
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


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[
        str | None, typer.Argument(help="The question.", show_default=False)
    ] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Chunks to retrieve [5].")] = None,
    partition: PartitionOpt = None,
    since: SinceOpt = None,
    source: SourceOpt = None,
    no_cache: NoCacheOpt = None,
    retrieval: RetrievalOpt = None,
    llm: LlmOpt = None,
    prompt_layout: LayoutOpt = None,
    max_context_tokens: ContextOpt = None,
    batch: Annotated[
        Path | None,
        typer.Option(help="Answer every question in FILE (a question a line, or JSONL)."),
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="Ask a running `ragcli serve` (or set RAGCLI_SERVER).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from the index, streaming the answer, then list the sources."""
    from ragcli.core.errors import UsageError
    from ragcli.retrieval.pipeline import Pipeline, Query

    if (question is None) == (batch is None):
        raise UsageError("give either a QUESTION or --batch FILE")
    settings = _settings(
        ctx,
        k=k,
        no_cache=no_cache,
        server=server,
        retrieval=retrieval,
        llm=llm,
        prompt_layout=prompt_layout,
        max_context_tokens=max_context_tokens,
    )
    defaults = (k, tuple(partition or ()), since, source)
    queries = _read_batch(batch, defaults) if batch else [Query(question, *defaults)]
    if settings.server:
        _ask_remote(settings.server, queries, as_json, bool(batch))
        return
    pipeline = Pipeline(settings)

    async def go() -> None:
        try:
            if len(queries) > 1:
                await pipeline.prefetch(queries)
            for n, query in enumerate(queries):
                if batch and not as_json:
                    print(f"{'' if n == 0 else chr(10)}Q: {query.question}")
                result = await _answer(pipeline, query, stream=not as_json)
                if as_json:
                    print(json.dumps(result), flush=True)
                else:
                    _print_sources(result)
        finally:
            pipeline.close()

    _run(go())


# --------------------------------------------------------------------------------- profile
def _int_list(text: str, flag: str) -> list[int]:
    from ragcli.core.errors import UsageError

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text!r}: expected positive integers, e.g. 1,4,16")
    return values


def _cold_processes(
    ctx: typer.Context, query: Any, n: int, setting_flags: dict[str, Any]
) -> list[float]:
    """TTFT from process start of `n` fresh `ragcli profile` processes (true cold starts)."""
    import subprocess

    from ragcli.core.errors import RagcliError

    obj = ctx.obj or {}
    base = [sys.executable, "-m", "ragcli"]
    for flag in ("data_dir", "config", "chroma_url", "redis_url"):
        if obj.get(flag):
            base += [f"--{flag.replace('_', '-')}", str(obj[flag])]
    args = ["profile", query.question, "--runs", "0", "--warmup", "0", "--json"]
    if query.k:
        args += ["--k", str(query.k)]
    for p in query.partitions:
        args += ["--partition", p]
    query_flags = {"--since": query.since, "--source": query.source}
    for flag, value in {**query_flags, **setting_flags}.items():
        if value:
            args += [flag, str(value)]
    out = []
    for _ in range(n):
        proc = subprocess.run(base + args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RagcliError(f"a cold profile process failed: {proc.stderr.strip()[-300:]}")
        out.append(json.loads(proc.stdout)["cold"]["ttft_ms"])
    return out


@app.command()
def profile(
    ctx: typer.Context,
    question: Annotated[
        str | None, typer.Argument(help="The question to time.", show_default=False)
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(help="A question set: one a line, or JSONL (as ask --batch).")
    ] = None,
    runs: Annotated[int, typer.Option(help="Warm runs measured (after warm-up).", min=0)] = 10,
    warmup: Annotated[
        int, typer.Option(help="Warm-up runs, excluded from the figures.", min=0)
    ] = 1,
    cold_runs: Annotated[
        int, typer.Option(help="Cold runs: this process plus N-1 fresh processes.", min=1)
    ] = 1,
    ablate: Annotated[bool, typer.Option(help="Switch each optimisation off in turn.")] = False,
    rounds: Annotated[
        int, typer.Option(help="Question-set rounds per ablation variant.", min=1)
    ] = 3,
    concurrency: Annotated[
        str | None, typer.Option(help="Concurrency sweep, e.g. 1,4,16,32 (requests in flight).")
    ] = None,
    requests: Annotated[int, typer.Option(help="Requests per sweep level.", min=1)] = 32,
    budget: Annotated[
        str | None,
        typer.Option(help="Fail (exit 4) over budget, e.g. ttft_p95=300ms,retrieve_p50=5ms."),
    ] = None,
    svg: Annotated[Path | None, typer.Option(help="Write the waterfall as an SVG picture.")] = None,
    spans: Annotated[Path | None, typer.Option(help="Write every span as JSON lines.")] = None,
    otel: Annotated[
        bool, typer.Option(help="Also send the spans as OpenTelemetry traces (OTLP or stderr).")
    ] = False,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Chunks to retrieve [5].")] = None,
    partition: PartitionOpt = None,
    since: SinceOpt = None,
    source: SourceOpt = None,
    no_cache: NoCacheOpt = None,
    retrieval: RetrievalOpt = None,
    llm: LlmOpt = None,
    prompt_layout: LayoutOpt = None,
    max_context_tokens: ContextOpt = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            help="TTFT against prompt size: k=1,2,4,8 or max_context_tokens=500,1000 "
            "(answer cache off; --runs answers per value)."
        ),
    ] = None,
    prewarm: Annotated[
        bool,
        typer.Option(help="Load the model and cache the instruction prefix before the cold run."),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            help="Profile a running `ragcli serve` (or set RAGCLI_SERVER): the TTFT this client "
            "sees next to the server's own TTFT and stage spans."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Time every stage: a cold run from process start, then warm runs; optionally ablations,
    a concurrency sweep, an SVG waterfall and a CI budget."""
    import dataclasses

    from ragcli.core.errors import UsageError
    from ragcli.profile import profiling
    from ragcli.profile.budget import parse_budgets
    from ragcli.retrieval.pipeline import Pipeline, Query

    origin = profiling.process_started_ns() or _CLI_STARTED_NS
    if (question is None) == (questions is None):
        raise UsageError("give either a QUESTION or --questions FILE")
    budgets = parse_budgets(budget) if budget else []
    levels = _int_list(concurrency, "--concurrency") if concurrency else []
    settings = _settings(
        ctx,
        k=k,
        no_cache=no_cache,
        retrieval=retrieval,
        llm=llm,
        prompt_layout=prompt_layout,
        max_context_tokens=max_context_tokens,
        server=server,
    )
    swept = profiling.parse_sweep(sweep) if sweep else None
    defaults = (k, tuple(partition or ()), since, source)
    queries = _read_batch(questions, defaults) if questions else [Query(question, *defaults)]
    if settings.server:
        local_only = {
            "--ablate": ablate, "--concurrency": levels, "--sweep": swept, "--svg": svg,
            "--spans": spans, "--otel": otel, "--prewarm": prewarm, "--cold-runs": cold_runs > 1,
        }  # fmt: skip
        given = [flag for flag, value in local_only.items() if value]
        if given:
            raise UsageError(f"{given[0]} profiles this process: drop it, or --server")
        _profile_remote(settings.server, queries, runs, warmup, budgets, as_json)
        return
    pipeline = Pipeline(settings)

    def variant(overrides: dict[str, Any]) -> Pipeline:
        p = Pipeline(dataclasses.replace(settings, **overrides).validate())
        p.embedder = pipeline.embedder  # the model is loaded once for every variant
        return p

    async def go() -> profiling.ProfileReport:
        try:
            warmed, before = "", []
            if prewarm:  # the model and its instruction prefix; the cold run does the rest
                t = time.perf_counter_ns()
                await pipeline.generator.warm()
                before = [profiling.Span("prewarm", t, time.perf_counter_ns())]
                warmed = getattr(pipeline.generator, "warm_note", "") or (
                    f"{pipeline.generator.name} ready in {before[0].ms / 1000:.2f} s"
                )
                if not as_json:
                    print(f"ragcli profile: prewarmed: {warmed}", file=sys.stderr, flush=True)
            report = await profiling.profile(pipeline, queries, runs, warmup, origin, before)
            report.warmed = warmed
            if levels:
                report.concurrency = await profiling.sweep(pipeline, queries, levels, requests)
        finally:
            pipeline.close()
        if ablate:
            report.ablation = await profiling.ablate(variant, queries, rounds, warmup)
        if swept:
            off = ",".join(sorted({*(settings.no_cache or "").split(","), "answer"} - {""}))
            report.sweep = await profiling.prefill_sweep(
                lambda o: variant({**o, "no_cache": off}), queries, *swept, max(runs, 1)
            )
        return report

    report = _run(go())
    if cold_runs > 1:
        setting_flags = {
            "--no-cache": no_cache,
            "--retrieval": retrieval,
            "--llm": llm,
            "--prompt-layout": prompt_layout,
            "--max-context-tokens": max_context_tokens,
        }
        report.extra_cold_ttft_ms = _cold_processes(ctx, queries[0], cold_runs - 1, setting_flags)
    data = report.as_dict()
    verdicts = _check_budgets(budgets, data, data)
    if svg:
        from ragcli.profile.svg import profile_svg

        svg.write_text(profile_svg(data), encoding="utf-8")
    if spans:
        _write_spans(spans, report)
    if otel:
        from ragcli.profile.otel import export

        export(report)
    if as_json:
        print(json.dumps(data))
    else:
        from ragcli.profile.render import render_profile

        render_profile(_stdout(), data)
    _enforce_budgets(verdicts, as_json)


def _check_budgets(budgets: list[Any], figures: dict[str, Any], data: dict[str, Any]) -> list:
    """Verdicts of `budgets` on a profile's `figures`, also recorded in `data["budgets"]`."""
    from ragcli.profile.budget import check

    verdicts = check(budgets, figures) if budgets else []
    if verdicts:
        data["budgets"] = [
            {"budget": v.budget.text, "actual_ms": v.actual_ms, "ok": v.ok} for v in verdicts
        ]
    return verdicts


def _enforce_budgets(verdicts: list[Any], as_json: bool) -> None:
    """Say each verdict (not in --json), then exit 4 in one line if any is over budget."""
    from ragcli.core.errors import EXIT_BUDGET

    if not as_json:
        for v in verdicts:
            print(("budget ok: " if v.ok else "budget FAILED: ") + v.line())
    failed = [v for v in verdicts if not v.ok]
    if failed:
        print("ragcli: error: over budget: " + "; ".join(v.line() for v in failed), file=sys.stderr)
        raise typer.Exit(EXIT_BUDGET)


def _profile_remote(
    server: str, queries: list[Any], runs: int, warmup: int, budgets: list[Any], as_json: bool
) -> None:
    """`profile --server`: client-observed TTFT next to the server's TTFT and spans."""
    from ragcli.profile.remote import profile_remote, render

    data = profile_remote(server, queries, runs, warmup)
    # budgets name the client's view: ttft is what a user of the server waits for
    shaped = {"warm": {"stats": {"ttft": data["client_ttft_ms"], **data["server_stages_ms"]}}}
    verdicts = _check_budgets(budgets, shaped, data)
    print(json.dumps(data, indent=2) if as_json else render(data))
    _enforce_budgets(verdicts, as_json)


def _write_spans(path: Path, report: Any) -> None:
    """Every span of every run as JSON lines (phase, run, question, name, start_ms, ms, attrs)."""
    with path.open("w", encoding="utf-8") as f:
        rows = [("cold", 0, report.cold.question, report.cold_spans())]
        rows += [
            ("warm", i, r.question, r.span_dicts(r.started_ns)) for i, r in enumerate(report.warm)
        ]
        for phase, run, q, items in rows:
            for item in items:
                f.write(json.dumps({"phase": phase, "run": run, "question": q, **item}) + "\n")


@app.command("eval")
def eval_(
    ctx: typer.Context,
    relevance_set: Annotated[
        Path,
        typer.Argument(
            metavar="SET",
            help="A BEIR folder (or its qrels/SPLIT.tsv), a TREC qrels file or folder, or JSONL.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="beir, trec, jsonl or auto (from the layout).")
    ] = "auto",
    queries: Annotated[
        Path | None, typer.Option(help="TREC: the queries (QUERY-ID<TAB>TEXT, or JSONL).")
    ] = None,
    ingest: Annotated[
        bool, typer.Option("--ingest", help="Ingest the BEIR set's corpus.jsonl first.")
    ] = False,
    k: Annotated[int, typer.Option("--k", "-k", help="Chunks retrieved per question.")] = 10,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=V1,V2 (repeatable; the product is run): ef_search, k, retrieval, "
            "partitions (on/off), search (hnsw/exact), hybrid_weight."
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option(help="Measured passes over the questions (after one warm-up).", min=1)
    ] = 1,
    run: Annotated[
        Path | None, typer.Option("--run", help="Score this TREC run file instead of retrieving.")
    ] = None,
    minimum: Annotated[
        str | None,
        typer.Option("--min", help="Fail (exit 6) below, e.g. ndcg@10=0.6,chunk.recall@5=0.5."),
    ] = None,
    svg: Annotated[Path | None, typer.Option(help="Write quality vs latency as SVG.")] = None,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Measure retrieval quality (recall@k, hit@k, MRR@10, nDCG@10; chunk and document level)
    and retrieval latency on a relevance set, for every configuration of a sweep."""
    from ragcli.core.errors import EXIT_QUALITY
    from ragcli.core.locking import stderr_notice
    from ragcli.eval.evaluation import run_eval

    settings = _settings(ctx)
    report, verdicts = run_eval(
        settings,
        relevance_set,
        fmt=fmt,
        queries=queries,
        run_file=run,
        ingest=ingest,
        k=k,
        sweeps=sweep or [],
        minimums=minimum,
        repeats=repeats,
        wait=wait,
        notify=stderr_notice,
    )
    if svg:
        from ragcli.eval.svg import eval_svg

        svg.write_text(eval_svg(report), encoding="utf-8")
    if as_json:
        print(json.dumps(report))
    else:
        from ragcli.eval.render import render_eval

        render_eval(_stdout(), report)
        for v in verdicts:
            print(("minimum ok: " if v["ok"] else "minimum FAILED: ") + v["line"])
    failed = [v for v in verdicts if not v["ok"]]
    if failed:
        lines = "; ".join(v["line"] for v in failed)
        print(f"ragcli: error: under the minimum: {lines}", file=sys.stderr)
        raise typer.Exit(EXIT_QUALITY)


cache_app = typer.Typer(help="Inspect or clear the embedding, retrieval and answer caches.")
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Entries in each cache and the age of the oldest."""
    from ragcli.caches.admin import stats

    info = stats(_settings(ctx))
    if as_json:
        print(json.dumps(info))
        return
    for name, s in info["caches"].items():
        age = (
            f", oldest {s['oldest_age_s'] / 3600:.1f} h old"
            if s["oldest_age_s"] is not None
            else ""
        )
        print(f"{name:<10} {s['entries']:>8} entries{age}")
    where = "redis" if info["path"].startswith(("redis", "unix")) else "file"
    print(f"{where}: {info['path']} ({info['bytes'] / 1e6:.1f} MB)")


@cache_app.command("clear")
def cache_clear(
    ctx: typer.Context,
    which: Annotated[
        str, typer.Option("--only", help="Comma list: embedding,retrieval,answer (default: all).")
    ] = "embedding,retrieval,answer",
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Empty caches. Embeddings are the expensive one: a later ingest or index rebuild re-embeds."""
    from ragcli.caches.admin import clear
    from ragcli.core.locking import stderr_notice, writer_lock

    settings = _settings(ctx)
    with writer_lock(settings.data_dir, wait, "cache clear", stderr_notice):
        removed = clear(settings, which)
    if as_json:
        print(json.dumps({"removed": removed}))
        return
    for name, n in removed.items():
        print(f"{name}: {'unreadable file set aside' if n < 0 else f'{n} entries removed'}")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8765,
    max_concurrency: Annotated[
        int, typer.Option(help="Requests in flight before answering 503.", min=1)
    ] = 64,
    request_timeout: Annotated[float, typer.Option(help="Seconds before a request ends.")] = 120.0,
    llm: LlmOpt = None,
) -> None:
    """Serve the pipeline, warm, behind an OpenAI-compatible API (/v1/chat/completions,
    /v1/retrieve, /healthz, /metrics)."""
    from ragcli.serve.server import run

    settings = _settings(ctx, llm=llm)

    def ready(server: Any) -> None:
        bound = server.servers[0].sockets[0].getsockname()
        print(
            f"ragcli serve: listening on http://{bound[0]}:{bound[1]}/v1 "
            f"(data {settings.data_dir}); Ctrl-C or SIGTERM to stop",
            file=sys.stderr,
            flush=True,
        )

    run(settings, host, port, max_concurrency, request_timeout, ready)


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """What is ingested and indexed: documents, chunks, partitions, index, digest."""
    from ragcli.status.report import collect_status

    info = collect_status(_settings(ctx))
    if as_json:
        print(json.dumps(info))
        return
    print(f"data directory: {info['data_dir']}")
    print(f"documents: {info['documents']}  chunks: {info['chunks']}  embedder: {info['embedder']}")
    parts = ", ".join(f"{p} ({n})" for p, n in info["partitions"].items()) or "none"
    print(f"partitions: {parts}")
    idx = info["index"]
    if idx:
        p = idx["params"]
        state = "in step" if idx["in_step"] else "not usable: see the problem below"
        print(
            f"index version: {info['index_version']} ({state}); M={p['m']} "
            f"ef_construction={p['ef_construction']} ef_search={p['ef_search']}"
        )
    c = info["cache"]
    print(
        f"caches: {c['embeddings']} embeddings, {c['retrievals']} retrievals, "
        f"{c['answers']} answers"
    )
    print(f"digest: {info['digest']}")
    for problem in info["problems"]:
        print(f"problem: {problem}")


def main() -> None:
    """Console entry point: one line on stderr and a documented exit code for every failure."""
    try:
        rc = app(standalone_mode=False)
    except RagcliError as exc:
        print(f"ragcli: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("ragcli: interrupted; run the same command again to resume", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors: bad flags, missing arguments
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            print(f"ragcli: error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except Exception as exc:
        if os.environ.get("RAGCLI_DEBUG"):
            raise
        # Storage trouble met mid-operation (read-only or full disk, a file gone): one line.
        import sqlite3

        if isinstance(exc, sqlite3.Error | OSError):
            detail = getattr(exc, "strerror", None) or str(exc)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            print(
                f"ragcli: error: storage: {detail}{where}; `ragcli status` says what is affected",
                file=sys.stderr,
            )
            sys.exit(EXIT_ERROR)
        print(
            f"ragcli: internal error: {type(exc).__name__}: {exc} "
            "(set RAGCLI_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(EXIT_ERROR)
    if rc == EXIT_INTERRUPTED:  # typer turns Ctrl-C into this return code, silently
        print("ragcli: interrupted; run the same command again to resume", file=sys.stderr)
    sys.exit(rc if isinstance(rc, int) else 0)


__all__ = ["app", "main"]
