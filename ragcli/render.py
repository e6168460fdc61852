"""Terminal rendering of profiles: waterfalls and percentile tables (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from ragcli.pipeline import Span
    from ragcli.profiling import ProfileReport

BAR_WIDTH = 40


def _bar(start: float, length: float, total: float) -> str:
    if total <= 0:
        return ""
    lead = int(start / total * BAR_WIDTH)
    cells = max(1, round(length / total * BAR_WIDTH)) if length > 0 else 0
    cells = min(cells, BAR_WIDTH - lead) or (1 if length > 0 else 0)
    return " " * lead + "█" * cells


def waterfall(title: str, spans: list[Span], zero_ns: int) -> object:
    from rich.table import Table

    end = max(s.end_ns for s in spans)
    total = (end - zero_ns) / 1e6
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("stage")
    table.add_column("start ms", justify="right")
    table.add_column("ms", justify="right")
    table.add_column(f"0 ─ {total:.1f} ms", no_wrap=True)
    for s in spans:
        start = (s.start_ns - zero_ns) / 1e6
        note = ""
        if s.attrs.get("cache"):
            note = f" cache {s.attrs['cache']}"
        table.add_row(
            s.name + note, f"{start:.1f}", f"{s.ms:.2f}", f"[cyan]{_bar(start, s.ms, total)}[/]"
        )
    return table


def render_profile(console: Console, report: ProfileReport) -> None:
    from rich.table import Table

    cold_spans = report.load_spans + report.cold.spans
    console.print(
        waterfall(
            f"Cold run (from process start): first token after {report.cold_ttft_ms:.1f} ms",
            cold_spans,
            report.origin_ns,
        )
    )
    console.print()
    if not report.warm:
        return
    last = report.warm[-1]
    console.print(
        waterfall(
            f"Warm run (same process): first token after {last.ttft_ms:.2f} ms",
            last.spans,
            last.spans[0].start_ns,
        )
    )
    console.print()
    stats = report.stats()
    n = len(report.warm)
    table = Table(
        title=f"Warm runs: {n} (the cold run excluded); generator {report.generator}",
        title_justify="left",
    )
    table.add_column("stage")
    for col in ("p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right")
    labels = {"pre_llm": "ragcli before the LLM", "ttft": "time to first token"}
    for name, s in stats.items():
        table.add_row(
            labels.get(name, name), f"{s['p50']:.3f}", f"{s['p95']:.3f}", f"{s['mean']:.3f}"
        )
    console.print(table)
