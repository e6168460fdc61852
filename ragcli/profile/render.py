"""Terminal rendering of a profile (rich), from the same dict that `--json` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_SHOWN = (
    "ttft",
    "pre_llm",
    "e2e",
    "itl",
    "output_per_s",
    "embed",
    "retrieve",
    "answer_cache",
    "prompt",
    "llm.first_token",
    "llm.stream",
)
_LABELS = {
    "ttft": "TTFT",
    "pre_llm": "ragcli before the LLM",
    "e2e": "end to end",
    "itl": "ITL",
    "output_per_s": "output pieces/s",
}


def _bar(start: float, length: float, total: float, width: int) -> str:
    if total <= 0:
        return ""
    lead = min(int(start / total * width), width - 1)
    cells = max(1, round(length / total * width))
    return " " * lead + "█" * min(cells, width - lead)


def waterfall(title: str, spans: list[dict[str, Any]], console_width: int = 100) -> Any:
    from rich.table import Table

    width = max(12, min(44, console_width - 64))
    total = max((s["start_ms"] + s["ms"] for s in spans), default=0.0)
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("", style="dim", no_wrap=True)
    table.add_column("start ms", justify="right")
    table.add_column("ms", justify="right")
    table.add_column(f"0 ─ {total:.1f} ms", no_wrap=True)
    for s in spans:
        note = s.get("attrs", {}).get("cache", "")
        table.add_row(
            s["name"],
            note,
            f"{s['start_ms']:.1f}",
            f"{s['ms']:.2f}",
            f"[cyan]{_bar(s['start_ms'], s['ms'], total, width)}[/]",
        )
    return table


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v * 100:+.0f} %"


def _tokens(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}"


def _render_prefill(console: Console, prefill: dict[str, Any]) -> None:
    """The `llm.prefill` view: what the LLM had to read before its first token."""
    from rich.table import Table

    if not prefill.get("runs"):
        return
    by = prefill["prompt_tokens_reported_by"]
    table = Table(
        title=f"llm.prefill: {prefill['runs']} LLM answers; prompt tokens from the {by}"
        + ("" if prefill["cached_tokens"].get("n") else "; cached tokens not reported"),
        title_justify="left",
    )
    table.add_column("metric")
    for col in ("p50", "p90", "p99", "mean", "n"):
        table.add_column(col, justify="right")
    for key, label in (
        ("prompt_tokens", "prompt tokens"),
        ("cached_tokens", "cached prompt tokens"),
        ("sources", "sources in the prompt"),
        ("llm_first_token", "LLM first token (ms)"),
        ("ttft", "TTFT (ms)"),
    ):
        s = prefill[key]
        if not s.get("n"):
            continue
        fmt = (lambda v: f"{v:.2f}") if key in ("llm_first_token", "ttft") else _tokens
        table.add_row(label, *(fmt(s[c]) for c in ("p50", "p90", "p99", "mean")), str(s["n"]))
    console.print()
    console.print(table)


def _render_sweep(console: Console, sweep: dict[str, Any]) -> None:
    from rich.table import Table

    knob = sweep["knob"]
    table = Table(
        title=f"TTFT against prompt size ({knob} sweep, answer cache off; prompt tokens from "
        f"the {sweep['prompt_tokens_reported_by']})",
        title_justify="left",
    )
    for col in (knob, "sources", "prompt tokens", "cached", "TTFT p50", "LLM 1st token p50", "n"):
        table.add_column(col, justify="right")
    for row in sweep["rows"]:
        table.add_row(
            str(row[knob]),
            _tokens(row["sources"]),
            _tokens(row["prompt_tokens"]),
            _tokens(row["cached_tokens"]),
            f"{row['ttft'].get('p50', float('nan')):.2f}",
            f"{row['llm_first_token'].get('p50', float('nan')):.2f}",
            str(row["runs"]),
        )
    console.print()
    console.print(table)


def render_profile(console: Console, report: dict[str, Any]) -> None:
    """The whole profile: the cold and warm waterfalls, the warm runs' figures, and the
    ablation, concurrency and prompt-size sweeps when they ran."""
    if report.get("prewarm"):
        console.print(f"[dim]prewarmed: {report['prewarm']}[/]")
    cold, warm = report["cold"], report["warm"]
    runs = cold["ttft_ms_runs"]
    more = (
        f"; {len(runs)} cold processes, p50 {sorted(runs)[len(runs) // 2]:.1f} ms"
        if len(runs) > 1
        else ""
    )
    console.print(
        waterfall(
            f"Cold run, from process start: first token after {cold['ttft_ms']:.1f} ms{more}"
            + (f" (answer cache {cold['cached']})" if cold["cached"] else ""),
            cold["spans"],
        )
    )
    if report.get("cold_both"):
        from ragcli.profile.cold import render_cold_both

        render_cold_both(console, report["cold_both"])
    console.print()
    if warm["runs"]:
        _render_warm(console, warm, report["generator"])
    if report.get("ablation"):
        _render_ablation(console, report["ablation"])
    if report.get("concurrency"):
        _render_concurrency(console, report["concurrency"])
    if report.get("sweep"):
        _render_sweep(console, report["sweep"])


def _render_warm(console: Console, warm: dict[str, Any], generator: str) -> None:
    """The last warm run's waterfall, then p50/p90/p99/mean of every warm metric."""
    from rich.table import Table

    console.print(
        waterfall(
            f"Warm run (same process, last of {warm['runs']}): "
            f"TTFT {warm['stats']['ttft']['p50']:.2f} ms p50",
            warm["last"],
        )
    )
    console.print()
    table = Table(
        title=f"Warm: {warm['runs']} runs, {warm['warmup_runs_excluded']} warm-up run(s) "
        f"excluded, {warm['cached_runs']} answered from the answer cache; "
        f"generator {generator}",
        title_justify="left",
    )
    table.add_column("metric (ms)")
    for col in ("p50", "p90", "p99", "mean", "n"):
        table.add_column(col, justify="right")
    for name in _SHOWN:
        s = warm["stats"].get(name, {})
        if not s.get("n"):
            continue
        table.add_row(
            _LABELS.get(name, name),
            *(f"{s[c]:.3f}" for c in ("p50", "p90", "p99", "mean")),
            str(s["n"]),
        )
    console.print(table)
    _render_prefill(console, warm.get("prefill") or {})


def _render_ablation(console: Console, ablation: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console.print()
    table = Table(
        title="Ablation: each optimisation off in turn (TTFT from question-set submission)",
        title_justify="left",
    )
    for col in ("variant", "TTFT p50", "TTFT p95", "vs", "Δp50", "Δp95", "round p50"):
        table.add_column(col, justify="left" if col in ("variant", "vs") else "right")
    for row in ablation:
        t = row["ttft"]
        table.add_row(
            row["variant"],
            f"{t['p50']:.2f}",
            f"{t['p95']:.2f}",
            "" if row["baseline"] == row["variant"] else row["baseline"],
            _pct(row.get("ttft_p50_change")),
            _pct(row.get("ttft_p95_change")),
            f"{row['round_ms']['p50']:.1f}",
        )
    console.print(table)


def _render_concurrency(console: Console, concurrency: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console.print()
    table = Table(title="Concurrency sweep", title_justify="left")
    for col in ("in flight", "requests", "req/s", "TTFT p50", "TTFT p99", "e2e p50"):
        table.add_column(col, justify="right")
    for row in concurrency:
        table.add_row(
            str(row["concurrency"]),
            str(row["requests"]),
            f"{row['requests_per_s']:.1f}",
            f"{row['ttft']['p50']:.2f}",
            f"{row['ttft']['p99']:.2f}",
            f"{row['e2e']['p50']:.2f}",
        )
    console.print(table)
