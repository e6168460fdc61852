"""The profile as a picture: cold and warm waterfalls plus the warm percentiles, in SVG."""

from __future__ import annotations

from html import escape
from typing import Any

_W, _ROW, _LABEL, _PAD = 980, 22, 210, 16
_COLOURS = {
    "startup": "#9aa5b1",
    "load": "#c9a227",
    "embed": "#3b82f6",
    "retrieve": "#10b981",
    "answer_cache": "#8b5cf6",
    "prompt": "#f97316",
    "llm": "#ef4444",
}


def _colour(name: str) -> str:
    return _COLOURS.get(name.split(".")[0], "#64748b")


def _waterfall(title: str, spans: list[dict[str, Any]], y: int) -> tuple[list[str], int]:
    out = [f'<text x="{_PAD}" y="{y}" class="h">{escape(title)}</text>']
    y += 10
    total = max((s["start_ms"] + s["ms"] for s in spans), default=1.0) or 1.0
    width = _W - _LABEL - 2 * _PAD - 90
    for s in spans:
        y += _ROW
        x = _LABEL + _PAD + s["start_ms"] / total * width
        w = max(1.5, s["ms"] / total * width)
        note = s.get("attrs", {}).get("cache")
        label = s["name"] + (f" ({note})" if note else "")
        out.append(f'<text x="{_PAD}" y="{y - 6}" class="l">{escape(label)}</text>')
        out.append(
            f'<rect x="{x:.1f}" y="{y - 17}" width="{w:.1f}" height="14" rx="2" '
            f'fill="{_colour(s["name"])}"><title>{escape(label)}: {s["ms"]:.3f} ms</title></rect>'
        )
        out.append(f'<text x="{x + w + 4:.1f}" y="{y - 6}" class="v">{s["ms"]:.2f} ms</text>')
    y += 8
    out.append(
        f'<line x1="{_LABEL + _PAD}" y1="{y}" x2="{_LABEL + _PAD + width}" y2="{y}" class="ax"/>'
    )
    out.append(f'<text x="{_LABEL + _PAD}" y="{y + 14}" class="v">0</text>')
    out.append(
        f'<text x="{_LABEL + _PAD + width}" y="{y + 14}" class="v" text-anchor="end">'
        f"{total:.1f} ms</text>"
    )
    return out, y + 40


def profile_svg(report: dict[str, Any]) -> str:
    parts: list[str] = []
    y = 30
    q = report["questions"][0] + (
        f" (+{len(report['questions']) - 1} more)" if len(report["questions"]) > 1 else ""
    )
    parts.append(f'<text x="{_PAD}" y="{y}" class="t">ragcli profile: {escape(q)}</text>')
    y += 34
    cold = report["cold"]
    block, y = _waterfall(
        f"Cold run, from process start: first token after {cold['ttft_ms']:.1f} ms",
        cold["spans"],
        y,
    )
    parts += block
    warm = report["warm"]
    if warm["last"]:
        ttft = warm["stats"]["ttft"]
        block, y = _waterfall(
            f"Warm run (last of {warm['runs']}; warm-up {warm['warmup_runs_excluded']} excluded):"
            f" TTFT p50 {ttft['p50']:.2f} ms, p99 {ttft['p99']:.2f} ms",
            warm["last"],
            y,
        )
        parts += block
        parts.append(f'<text x="{_PAD}" y="{y}" class="h">Warm percentiles (ms)</text>')
        y += 22
        cols = ("p50", "p90", "p99", "n")
        header = "".join(
            f'<text x="{_LABEL + _PAD + i * 110}" y="{y}" class="l">{c}</text>'
            for i, c in enumerate(cols)
        )
        parts.append(header)
        for name, s in warm["stats"].items():
            if not s.get("n"):
                continue
            y += 20
            parts.append(f'<text x="{_PAD}" y="{y}" class="l">{escape(name)}</text>')
            for i, c in enumerate(cols):
                v = s[c]
                text = f"{v:.0f}" if c == "n" else f"{v:.3f}"
                parts.append(f'<text x="{_LABEL + _PAD + i * 110}" y="{y}" class="v">{text}</text>')
        y += 30
    style = (
        "<style>text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif}"
        ".t{font-size:17px;font-weight:bold}.h{font-size:14px;font-weight:bold}"
        ".l{font-size:12px}.v{font-size:11px;fill:#334155}.ax{stroke:#94a3b8}</style>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{y}" '
        f'viewBox="0 0 {_W} {y}">{style}<rect width="100%" height="100%" fill="white"/>'
        + "".join(parts)
        + "</svg>\n"
    )
