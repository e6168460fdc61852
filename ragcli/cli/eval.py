"""`ragcli eval`: retrieval quality and latency on a relevance set, per sweep configuration;
a minimum quality to exit 6 under."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ragcli.cli.common import JsonFlag, WaitOpt, print_json, settings_from, stdout

SetArg = Annotated[
    Path,
    typer.Argument(
        metavar="SET",
        help="A BEIR folder (or its qrels/SPLIT.tsv), a TREC qrels file or folder, or JSONL.",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--format", help="beir, trec, jsonl or auto (from the layout).")
]
QueriesOpt = Annotated[
    Path | None, typer.Option(help="TREC: the queries (QUERY-ID<TAB>TEXT, or JSONL).")
]
IngestFlag = Annotated[
    bool, typer.Option("--ingest", help="Ingest the BEIR set's corpus.jsonl first.")
]
SweepOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="NAME=V1,V2 (repeatable; the product is run): ef_search, k, retrieval, "
        "partitions (on/off), search (hnsw/exact), hybrid_weight."
    ),
]
RepeatsOpt = Annotated[
    int, typer.Option(help="Measured passes over the questions (after one warm-up).", min=1)
]
RunOpt = Annotated[
    Path | None, typer.Option("--run", help="Score this TREC run file instead of retrieving.")
]
MinOpt = Annotated[
    str | None,
    typer.Option("--min", help="Fail (exit 6) below, e.g. ndcg@10=0.6,chunk.recall@5=0.5."),
]
SvgOpt = Annotated[Path | None, typer.Option(help="Write quality vs latency as SVG.")]


def eval_(
    ctx: typer.Context,
    relevance_set: SetArg,
    fmt: FormatOpt = "auto",
    queries: QueriesOpt = None,
    ingest: IngestFlag = False,
    k: Annotated[int, typer.Option("--k", "-k", help="Chunks retrieved per question.")] = 10,
    sweep: SweepOpt = None,
    repeats: RepeatsOpt = 1,
    run: RunOpt = None,
    minimum: MinOpt = None,
    svg: SvgOpt = None,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Measure retrieval quality (recall@k, hit@k, MRR@10, nDCG@10; chunk and document level)
    and retrieval latency on a relevance set, for every configuration of a sweep."""
    from ragcli.cli.common import lock_notice
    from ragcli.eval.run import run_eval

    report, verdicts = run_eval(
        settings_from(ctx),
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
        notify=lock_notice,
    )
    _write_report(report, verdicts, svg, as_json)
    _enforce_minimums(verdicts)


def _write_report(
    report: dict[str, Any], verdicts: list[dict[str, Any]], svg: Path | None, as_json: bool
) -> None:
    """The SVG when asked for; the report as JSON, or as tables and one line per minimum."""
    if svg:
        from ragcli.eval.svg import eval_svg

        svg.write_text(eval_svg(report), encoding="utf-8")
    if as_json:
        print_json(report)
        return
    from ragcli.eval.render import render_eval

    render_eval(stdout(), report)
    for v in verdicts:
        print(("minimum ok: " if v["ok"] else "minimum FAILED: ") + v["line"])


def _enforce_minimums(verdicts: list[dict[str, Any]]) -> None:
    """Exit 6, in one line on stderr, when any minimum is not met."""
    from ragcli.core.errors import EXIT_QUALITY

    failed = [v for v in verdicts if not v["ok"]]
    if failed:
        lines = "; ".join(v["line"] for v in failed)
        print(f"ragcli: error: under the minimum: {lines}", file=sys.stderr)
        raise typer.Exit(EXIT_QUALITY)
