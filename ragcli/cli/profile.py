"""`ragcli profile`: time every stage of answering, cold and warm, here or against a running
`ragcli serve`; optional ablations, sweeps, SVG, span and OpenTelemetry exports, budgets."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli.common import (
    ContextOpt,
    GlobalOptions,
    JsonFlag,
    KOpt,
    LayoutOpt,
    LlmOpt,
    NoCacheOpt,
    PartitionOpt,
    RetrievalOpt,
    SinceOpt,
    SourceOpt,
    global_options,
    note,
    print_json,
    run,
    settings_from,
    stdout,
)

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.profile.budget import Budget, Verdict
    from ragcli.profile.report import ProfileReport
    from ragcli.retrieval.events import Query, Span
    from ragcli.retrieval.pipeline import Pipeline

QuestionArg = Annotated[
    str | None, typer.Argument(help="The question to time.", show_default=False)
]
QuestionsOpt = Annotated[
    Path | None, typer.Option(help="A question set: one a line, or JSONL (as ask --batch).")
]
RunsOpt = Annotated[int, typer.Option(help="Warm runs measured (after warm-up).", min=0)]
WarmupOpt = Annotated[int, typer.Option(help="Warm-up runs, excluded from the figures.", min=0)]
ColdRunsOpt = Annotated[
    int,
    typer.Option(
        help="Cold runs: this process plus N-1 fresh processes; with N >= 2, also N fresh "
        "`ragcli ask` processes each way, in-process and through the daemon (stopped first).",
        min=1,
    ),
]
NoDaemonOpt = Annotated[
    bool,
    typer.Option(
        "--no-daemon",
        help="--cold-runs: time only in-process asks, not the daemon (or RAGCLI_DAEMON=off).",
    ),
]
AblateFlag = Annotated[bool, typer.Option(help="Switch each optimisation off in turn.")]
RoundsOpt = Annotated[int, typer.Option(help="Question-set rounds per ablation variant.", min=1)]
ConcurrencyOpt = Annotated[
    str | None, typer.Option(help="Concurrency sweep, e.g. 1,4,16,32 (requests in flight).")
]
RequestsOpt = Annotated[int, typer.Option(help="Requests per sweep level.", min=1)]
BudgetOpt = Annotated[
    str | None,
    typer.Option(help="Fail (exit 4) over budget, e.g. ttft_p95=300ms,retrieve_p50=5ms."),
]
SvgOpt = Annotated[Path | None, typer.Option(help="Write the waterfall as an SVG picture.")]
SpansOpt = Annotated[Path | None, typer.Option(help="Write every span as JSON lines.")]
OtelFlag = Annotated[
    bool, typer.Option(help="Also send the spans as OpenTelemetry traces (OTLP or stderr).")
]
SweepOpt = Annotated[
    str | None,
    typer.Option(
        help="TTFT against prompt size: k=1,2,4,8 or max_context_tokens=500,1000 "
        "(answer cache off; --runs answers per value)."
    ),
]
PrewarmFlag = Annotated[
    bool,
    typer.Option(help="Load the model and cache the instruction prefix before the cold run."),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        help="Profile a running `ragcli serve` (or set RAGCLI_SERVER): the TTFT this client "
        "sees next to the server's own TTFT and stage spans."
    ),
]


@dataclass(frozen=True)
class ProfilePlan:
    """What to measure: the runs, and the optional ablation, concurrency and prompt sweeps."""

    runs: int
    warmup: int
    cold_runs: int = 1
    ablate: bool = False
    rounds: int = 3
    levels: list[int] = field(default_factory=list)  # --concurrency
    requests: int = 32
    swept: tuple[str, list[int]] | None = None  # --sweep
    prewarm: bool = False


@dataclass(frozen=True)
class ProfileOutputs:
    """Where the figures go besides stdout, and the budgets that judge them."""

    budgets: list[Budget]
    svg: Path | None = None
    spans: Path | None = None
    otel: bool = False
    as_json: bool = False


def profile(
    ctx: typer.Context,
    question: QuestionArg = None,
    questions: QuestionsOpt = None,
    runs: RunsOpt = 10,
    warmup: WarmupOpt = 1,
    cold_runs: ColdRunsOpt = 1,
    ablate: AblateFlag = False,
    rounds: RoundsOpt = 3,
    concurrency: ConcurrencyOpt = None,
    requests: RequestsOpt = 32,
    budget: BudgetOpt = None,
    svg: SvgOpt = None,
    spans: SpansOpt = None,
    otel: OtelFlag = False,
    k: KOpt = None,
    partition: PartitionOpt = None,
    since: SinceOpt = None,
    source: SourceOpt = None,
    no_cache: NoCacheOpt = None,
    retrieval: RetrievalOpt = None,
    llm: LlmOpt = None,
    prompt_layout: LayoutOpt = None,
    max_context_tokens: ContextOpt = None,
    sweep: SweepOpt = None,
    prewarm: PrewarmFlag = False,
    server: ServerOpt = None,
    no_daemon: NoDaemonOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Time every stage: a cold run from process start, then warm runs; optionally ablations,
    a concurrency sweep, an SVG waterfall and a CI budget."""
    from ragcli.cli.app import CLI_STARTED_NS
    from ragcli.core.errors import UsageError
    from ragcli.core.process import process_started_ns
    from ragcli.profile.budget import parse_budgets
    from ragcli.profile.sweep import parse_sweep

    origin = process_started_ns() or CLI_STARTED_NS
    if (question is None) == (questions is None):
        raise UsageError("give either a QUESTION or --questions FILE")
    out = ProfileOutputs(parse_budgets(budget) if budget else [], svg, spans, otel, as_json)
    levels = _int_list(concurrency, "--concurrency") if concurrency else []
    settings = settings_from(
        ctx,
        k=k,
        no_cache=no_cache,
        retrieval=retrieval,
        llm=llm,
        prompt_layout=prompt_layout,
        max_context_tokens=max_context_tokens,
        server=server,
    )
    swept = parse_sweep(sweep) if sweep else None
    from ragcli.retrieval.questions import QueryFlags, queries_from

    flags = QueryFlags(k, tuple(partition or ()), since, source)
    queries = queries_from(question, questions, flags)
    plan = ProfilePlan(runs, warmup, cold_runs, ablate, rounds, levels, requests, swept, prewarm)
    setting_flags = {
        "--no-cache": no_cache,
        "--retrieval": retrieval,
        "--llm": llm,
        "--prompt-layout": prompt_layout,
        "--max-context-tokens": max_context_tokens,
    }
    if settings.server:
        _refuse_settings_for_a_server(setting_flags)
        _profile_remote(settings.server, queries, plan, out)
        return
    from ragcli.retrieval.pipeline import Pipeline

    pipeline = Pipeline(settings)
    report = run(_profile_local(pipeline, settings, queries, plan, origin, out.as_json))
    if cold_runs > 1:
        _cold_runs(ctx, settings, report, queries[0], plan, (setting_flags, no_daemon))
    _write_report(report, out)


def _int_list(text: str, flag: str) -> list[int]:
    """`1,4,16` → [1, 4, 16]; anything else, or a value under 1, is a usage error."""
    from ragcli.core.errors import UsageError

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text!r}: expected positive integers, e.g. 1,4,16")
    return values


async def _profile_local(
    pipeline: Pipeline,
    settings: Settings,
    queries: list[Query],
    plan: ProfilePlan,
    origin: int,
    quiet: bool,
) -> ProfileReport:
    """The cold run, warm runs and the optional measurements, in this process (`pipeline`
    is closed after the runs; the ablation and sweep variants share its embedder)."""
    import dataclasses

    from ragcli.profile.ablation import ablate
    from ragcli.profile.report import profile as profile_runs
    from ragcli.profile.sweep import prefill_sweep
    from ragcli.profile.sweep import sweep as concurrency_sweep
    from ragcli.retrieval.pipeline import Pipeline

    def variant(overrides: dict[str, Any]) -> Pipeline:
        # The model is loaded once for every variant.
        return Pipeline(dataclasses.replace(settings, **overrides).validate(), pipeline.embedder)

    try:
        warmed, before = await _prewarm(pipeline, quiet) if plan.prewarm else ("", [])
        report = await profile_runs(pipeline, queries, plan.runs, plan.warmup, origin, before)
        report.warmed = warmed
        if plan.levels:
            report.concurrency = await concurrency_sweep(
                pipeline, queries, plan.levels, plan.requests
            )
    finally:
        pipeline.close()
    if plan.ablate:
        report.ablation = await ablate(variant, queries, plan.rounds, plan.warmup)
    if plan.swept:
        off = ",".join(sorted({*(settings.no_cache or "").split(","), "answer"} - {""}))
        report.sweep = await prefill_sweep(
            lambda o: variant({**o, "no_cache": off}), queries, *plan.swept, max(plan.runs, 1)
        )
    return report


async def _prewarm(pipeline: Pipeline, quiet: bool) -> tuple[str, list[Span]]:
    """Load the model and its instruction prefix before the cold run (which does the rest):
    what was done, and its span."""
    from ragcli.retrieval.events import Span

    t = time.perf_counter_ns()
    await pipeline.generator.warm()
    before = [Span("prewarm", t, time.perf_counter_ns())]
    warmed = getattr(pipeline.generator, "warm_note", "") or (
        f"{pipeline.generator.name} ready in {before[0].ms / 1000:.2f} s"
    )
    if not quiet:
        note(f"ragcli profile: prewarmed: {warmed}")
    return warmed, before


def _cold_runs(
    ctx: typer.Context,
    settings: Settings,
    report: ProfileReport,
    query: Query,
    plan: ProfilePlan,
    flags: tuple[dict[str, Any], bool],
) -> None:
    """`--cold-runs N`, N >= 2: N-1 fresh `ragcli profile` processes (the `cold` section), and
    N fresh `ragcli ask` processes each way, in-process and through the daemon (`cold_both`)."""
    from ragcli.daemon.location import Location
    from ragcli.profile.cold import cold_both, python_ragcli, query_args

    setting_flags, no_daemon = flags
    options = global_options(ctx)
    report.extra_cold_ttft_ms = _cold_processes(options, query, plan.cold_runs - 1, setting_flags)
    off = "--no-daemon" if no_daemon else None
    if off is None and settings.daemon == "off":
        off = "daemon = off (RAGCLI_DAEMON or the config file)"
    ask = ["ask", query.question, *query_args(query, setting_flags)]
    location = Location(settings.data_dir.resolve())
    both = cold_both(python_ragcli(options.argv()), ask, location, plan.cold_runs, off)
    report.cold_both = both.as_dict()


def _cold_processes(
    options: GlobalOptions, query: Query, n: int, setting_flags: dict[str, Any]
) -> list[float]:
    """TTFT from process start of `n` fresh `ragcli profile` processes (true cold starts)."""
    import subprocess

    from ragcli.core.errors import RagcliError
    from ragcli.profile.cold import python_ragcli, query_args

    base = python_ragcli(options.argv())
    args = ["profile", query.question, "--runs", "0", "--warmup", "0", "--json"]
    args += query_args(query, setting_flags)
    out = []
    for _ in range(n):
        proc = subprocess.run(base + args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RagcliError(f"a cold profile process failed: {proc.stderr.strip()[-300:]}")
        out.append(json.loads(proc.stdout)["cold"]["ttft_ms"])
    return out


def _write_report(report: ProfileReport, out: ProfileOutputs) -> None:
    """The report to stdout (text or JSON) and to the files asked for; then the budgets."""
    data = report.as_dict()
    verdicts = _check_budgets(out.budgets, data, data)
    if out.svg:
        from ragcli.profile.svg import profile_svg

        out.svg.write_text(profile_svg(data), encoding="utf-8")
    if out.spans:
        _write_spans(out.spans, report)
    if out.otel:
        from ragcli.profile.otel import export

        export(report)
    if out.as_json:
        print_json(data)
    else:
        from ragcli.profile.render import render_profile

        render_profile(stdout(), data)
    _enforce_budgets(verdicts, out.as_json)


def _write_spans(path: Path, report: ProfileReport) -> None:
    """Every span of every run as JSON lines (phase, run, question, name, start_ms, ms, attrs)."""
    with path.open("w", encoding="utf-8") as f:
        rows = [("cold", 0, report.cold.question, report.cold_spans())]
        rows += [
            ("warm", i, r.question, r.span_dicts(r.started_ns)) for i, r in enumerate(report.warm)
        ]
        for phase, run, q, items in rows:
            for item in items:
                f.write(json.dumps({"phase": phase, "run": run, "question": q, **item}) + "\n")


def _check_budgets(
    budgets: list[Budget], figures: dict[str, Any], data: dict[str, Any]
) -> list[Verdict]:
    """Verdicts of `budgets` on a profile's `figures`, also recorded in `data["budgets"]`."""
    from ragcli.profile.budget import check

    verdicts = check(budgets, figures) if budgets else []
    if verdicts:
        data["budgets"] = [
            {"budget": v.budget.text, "actual_ms": v.actual_ms, "ok": v.ok} for v in verdicts
        ]
    return verdicts


def _enforce_budgets(verdicts: list[Verdict], as_json: bool) -> None:
    """Say each verdict (not in --json), then exit 4 in one line if any is over budget."""
    from ragcli.core.errors import EXIT_BUDGET

    if not as_json:
        for v in verdicts:
            print(("budget ok: " if v.ok else "budget FAILED: ") + v.line())
    failed = [v for v in verdicts if not v.ok]
    if failed:
        print("ragcli: error: over budget: " + "; ".join(v.line() for v in failed), file=sys.stderr)
        raise typer.Exit(EXIT_BUDGET)


def _refuse_settings_for_a_server(flags: dict[str, Any]) -> None:
    """A server answers with its own settings: a setting flag would be silently ignored."""
    from ragcli.core.errors import UsageError

    given = [flag for flag, value in flags.items() if value is not None]
    if given:
        raise UsageError(
            f"{given[0]} sets this process's pipeline; the server answers with its own "
            "settings: drop it, or --server"
        )


def _profile_remote(
    server: str, queries: list[Query], plan: ProfilePlan, out: ProfileOutputs
) -> None:
    """`profile --server`: client-observed TTFT next to the server's TTFT and spans."""
    from ragcli.core.errors import UsageError
    from ragcli.profile.remote import profile_remote, render

    local_only = {
        "--ablate": plan.ablate, "--concurrency": plan.levels, "--sweep": plan.swept,
        "--svg": out.svg, "--spans": out.spans, "--otel": out.otel, "--prewarm": plan.prewarm,
        "--cold-runs": plan.cold_runs > 1,
    }  # fmt: skip
    given = [flag for flag, value in local_only.items() if value]
    if given:
        raise UsageError(f"{given[0]} profiles this process: drop it, or --server")
    data = profile_remote(server, queries, plan.runs, plan.warmup)
    # budgets name the client's view: ttft is what a user of the server waits for
    shaped = {"warm": {"stats": {"ttft": data["client_ttft_ms"], **data["server_stages_ms"]}}}
    verdicts = _check_budgets(out.budgets, shaped, data)
    print(json.dumps(data, indent=2) if out.as_json else render(data))
    _enforce_budgets(verdicts, out.as_json)
