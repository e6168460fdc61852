"""`eval --svg`: quality against latency, the curve a user tunes on (same style as svg.py).

One point per configuration at (latency p50, document nDCG@10), a whisker out to p95, and a
line through the configurations that differ only in ef_search (one curve per retrieval mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

_W, _H, _PAD, _LEFT, _BOTTOM, _TOP = 980, 560, 16, 80, 60, 70
_COLOURS = {"dense": "#3b82f6", "lexical": "#10b981", "hybrid": "#8b5cf6"}
_STYLE = (
    "<style>text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif}"
    ".t{font-size:17px;font-weight:bold}.h{font-size:14px;font-weight:bold}"
    ".l{font-size:12px}.v{font-size:11px;fill:#334155}.ax{stroke:#94a3b8}"
    ".g{stroke:#e2e8f0}</style>"
)


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / ticks if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _points(report: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    out = []
    for row in report["configurations"]:
        lat = row.get("latency_ms")
        if not lat or not lat["total"].get("n") or not row.get("document"):
            continue
        out.append(
            {
                "row": row,
                "x": lat["total"]["p50"],
                "x95": lat["total"]["p95"],
                "y": row["document"].get(metric, 0.0),
            }
        )
    return out


@dataclass(frozen=True)
class _Plot:
    """The plot area and its scales: latency (ms) across, the metric up."""

    x_max: float
    y_lo: float
    y_hi: float = 1.0
    w: float = _W - _LEFT - 2 * _PAD - 150
    h: float = _H - _TOP - _BOTTOM

    def sx(self, v: float) -> float:
        return _LEFT + v / self.x_max * self.w

    def sy(self, v: float) -> float:
        return _TOP + (1 - (v - self.y_lo) / ((self.y_hi - self.y_lo) or 1.0)) * self.h


def _plot_for(points: list[dict[str, Any]]) -> _Plot:
    x_max = max((p["x95"] for p in points), default=1.0) * 1.08 or 1.0
    y_lo = max(0.0, math.floor((min((p["y"] for p in points), default=0.0) - 0.05) * 10) / 10)
    return _Plot(x_max, y_lo)


def _title(report: dict[str, Any], metric: str) -> list[str]:
    s = report["set"]
    return [
        f'<text x="{_PAD}" y="30" class="t">ragcli eval: {escape(s["name"])} — document '
        f"{escape(metric)} against retrieval latency</text>",
        f'<text x="{_PAD}" y="50" class="v">{s["queries"]} queries; latency = question → '
        "ranked chunks (embed + retrieve), p50 with a whisker to p95; caches for retrieval "
        "and answers off</text>",
    ]


def _axes(plot: _Plot, metric: str) -> list[str]:
    """Grid lines and tick values on both axes, the axes, and their titles."""
    parts: list[str] = []
    bottom, right = _TOP + plot.h, _LEFT + plot.w
    step = _nice_step(plot.x_max)
    tick = 0.0
    while tick <= plot.x_max + 1e-9:
        x = plot.sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{bottom}" class="g"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" class="v" text-anchor="middle">{tick:g}</text>'
        )
        tick += step
    ystep = _nice_step(plot.y_hi - plot.y_lo, 5)
    tick = plot.y_lo
    while tick <= plot.y_hi + 1e-9:
        y = plot.sy(tick)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="g"/>')
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" class="v" text-anchor="end">{tick:.2f}</text>'
        )
        tick += ystep
    parts.append(f'<line x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" class="ax"/>')
    parts.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}" class="ax"/>')
    parts.append(
        f'<text x="{_LEFT + plot.w / 2:.1f}" y="{_H - 18}" class="l" text-anchor="middle">'
        "retrieval latency, ms (p50 ● … p95 |)</text>"
    )
    parts.append(
        f'<text x="20" y="{_TOP + plot.h / 2:.1f}" class="l" text-anchor="middle" '
        f'transform="rotate(-90 20 {_TOP + plot.h / 2:.1f})">document {escape(metric)}</text>'
    )
    return parts


def _curves(points: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Configurations equal but for ef_search, each curve in ef_search order."""
    curves: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for p in points:
        c = dict(p["row"]["config"])
        c.pop("ef_search", None)
        curves.setdefault(tuple(sorted(c.items())), []).append(p)
    for members in curves.values():
        members.sort(key=lambda p: p["row"]["config"].get("ef_search") or 0)
    return list(curves.values())


def _marks(plot: _Plot, members: list[dict[str, Any]], metric: str) -> list[str]:
    """One curve: its line, and each point with its p95 whisker and its tooltip."""
    parts: list[str] = []
    colour = _COLOURS.get(members[0]["row"]["config"].get("retrieval", ""), "#64748b")
    if len(members) > 1:
        path = " ".join(f"{plot.sx(p['x']):.1f},{plot.sy(p['y']):.1f}" for p in members)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5" '
            'stroke-opacity="0.6"/>'
        )
    for p in members:
        x, x95, y = plot.sx(p["x"]), plot.sx(p["x95"]), plot.sy(p["y"])
        label = p["row"]["label"]
        tip = f"{label}: {metric} {p['y']:.3f}, p50 {p['x']:.2f} ms, p95 {p['x95']:.2f} ms"
        parts.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x95:.1f}" y2="{y:.1f}" stroke="{colour}" '
            'stroke-opacity="0.5"/>'
            f'<line x1="{x95:.1f}" y1="{y - 4:.1f}" x2="{x95:.1f}" y2="{y + 4:.1f}" '
            f'stroke="{colour}"/>'
        )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return parts


class _Labels:
    """Labels placed where they overlap no other label; one that finds no room is skipped
    (every point keeps its full description as a tooltip)."""

    _SPOTS = [(7, -7), (7, 15), (7, -19), (7, 27), (7, -31), (7, 39)]

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.placed: list[tuple[float, float, float, float]] = []

    def at(self, x: float, y: float, text: str, css: str = "v", left: bool = True) -> None:
        w, h = 6.2 * len(text), 12.0
        for dx, dy in self._SPOTS + ([(-w - 7, -7), (-w - 7, 15)] if left else []):
            box = (x + dx, y + dy - h + 2, x + dx + w, y + dy + 2)
            if box[0] < 4 or box[2] > _W - 4:
                continue
            if all(
                box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]
                for b in self.placed
            ):
                self.placed.append(box)
                self.parts.append(
                    f'<text x="{box[0]:.1f}" y="{y + dy:.1f}" class="{css}">{escape(text)}</text>'
                )
                return


def _labels(plot: _Plot, curves: list[list[dict[str, Any]]]) -> list[str]:
    """Each curve's name (or a lone point's label), then the ef values along the curves."""
    labels = _Labels()
    for members in curves:
        first = members[0]
        name = " ".join(w for w in first["row"]["label"].split() if not w.startswith("ef="))
        text = name if len(members) > 1 else first["row"]["label"]
        labels.at(plot.sx(first["x"]), plot.sy(first["y"]), text, "l")
    for members in curves:
        if len(members) > 1:
            for p in members:
                ef = p["row"]["config"].get("ef_search")
                labels.at(plot.sx(p["x"]), plot.sy(p["y"]), f"ef={ef}", left=False)
    return labels.parts


def _legend(plot: _Plot) -> list[str]:
    lx, ly = _LEFT + plot.w + 24, _TOP + 10
    parts = [f'<text x="{lx}" y="{ly}" class="h">retrieval</text>']
    for i, (name, colour) in enumerate(_COLOURS.items()):
        y = ly + 22 + i * 20
        parts.append(f'<circle cx="{lx + 6}" cy="{y - 4}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 18}" y="{y}" class="l">{name}</text>')
    return parts


def eval_svg(report: dict[str, Any], metric: str = "ndcg@10") -> str:
    points = _points(report, metric)
    plot = _plot_for(points)
    curves = _curves(points)
    parts = _title(report, metric) + _axes(plot, metric)
    for members in curves:
        parts += _marks(plot, members, metric)
    parts += _labels(plot, curves) + _legend(plot)
    if not points:
        parts.append(
            f'<text x="{_LEFT + 20}" y="{_TOP + 30}" class="l">no timed configuration</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}">{_STYLE}<rect width="100%" height="100%" fill="white"/>'
        + "".join(parts)
        + "</svg>\n"
    )
