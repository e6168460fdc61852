"""`eval --svg`: quality against latency, the curve a user tunes on (same style as svg.py).

One point per configuration at (latency p50, document nDCG@10), a whisker out to p95, and a
line through the configurations that differ only in ef_search (one curve per retrieval mode).
"""

from __future__ import annotations

import math
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


def eval_svg(report: dict[str, Any], metric: str = "ndcg@10") -> str:
    points = _points(report, metric)
    plot_w, plot_h = _W - _LEFT - 2 * _PAD - 150, _H - _TOP - _BOTTOM
    x_max = max((p["x95"] for p in points), default=1.0) * 1.08 or 1.0
    y_lo = max(0.0, math.floor((min((p["y"] for p in points), default=0.0) - 0.05) * 10) / 10)
    y_hi = 1.0

    def sx(v: float) -> float:
        return _LEFT + v / x_max * plot_w

    def sy(v: float) -> float:
        return _TOP + (1 - (v - y_lo) / ((y_hi - y_lo) or 1.0)) * plot_h

    s = report["set"]
    parts = [
        f'<text x="{_PAD}" y="30" class="t">ragcli eval: {escape(s["name"])} — document '
        f"{escape(metric)} against retrieval latency</text>",
        f'<text x="{_PAD}" y="50" class="v">{s["queries"]} queries; latency = question → '
        "ranked chunks (embed + retrieve), p50 with a whisker to p95; caches for retrieval "
        "and answers off</text>",
    ]
    # axes and grid
    step = _nice_step(x_max)
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" class="g"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" class="v" text-anchor="middle">'
            f"{tick:g}</text>"
        )
        tick += step
    ystep = _nice_step(y_hi - y_lo, 5)
    tick = y_lo
    while tick <= y_hi + 1e-9:
        y = sy(tick)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" class="g"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" class="v" text-anchor="end">{tick:.2f}</text>'
        )
        tick += ystep
    parts.append(
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'class="ax"/>'
    )
    parts.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" class="ax"/>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 18}" class="l" text-anchor="middle">'
        "retrieval latency, ms (p50 ● … p95 |)</text>"
    )
    parts.append(
        f'<text x="20" y="{_TOP + plot_h / 2:.1f}" class="l" text-anchor="middle" '
        f'transform="rotate(-90 20 {_TOP + plot_h / 2:.1f})">document {escape(metric)}</text>'
    )
    # curves: configurations equal but for ef_search, in ef_search order
    curves: dict[tuple, list[dict[str, Any]]] = {}
    for p in points:
        c = dict(p["row"]["config"])
        c.pop("ef_search", None)
        curves.setdefault(tuple(sorted(c.items())), []).append(p)
    placed: list[tuple[float, float, float, float]] = []

    def label_at(x: float, y: float, text: str, css: str = "v", left: bool = True) -> None:
        """Place a label beside (x, y) where it overlaps no other label; skip it if crowded
        (every point keeps its full description as a tooltip)."""
        w, h = 6.2 * len(text), 12.0
        spots = [(7, -7), (7, 15), (7, -19), (7, 27), (7, -31), (7, 39)]
        for dx, dy in spots + ([(-w - 7, -7), (-w - 7, 15)] if left else []):
            box = (x + dx, y + dy - h + 2, x + dx + w, y + dy + 2)
            if box[0] < 4 or box[2] > _W - 4:
                continue
            if all(
                box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in placed
            ):
                placed.append(box)
                parts.append(
                    f'<text x="{box[0]:.1f}" y="{y + dy:.1f}" class="{css}">{escape(text)}</text>'
                )
                return

    for members in curves.values():
        colour = _COLOURS.get(members[0]["row"]["config"].get("retrieval", ""), "#64748b")
        members.sort(key=lambda p: p["row"]["config"].get("ef_search") or 0)
        if len(members) > 1:
            path = " ".join(f"{sx(p['x']):.1f},{sy(p['y']):.1f}" for p in members)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5" '
                'stroke-opacity="0.6"/>'
            )
        for p in members:
            x, x95, y = sx(p["x"]), sx(p["x95"]), sy(p["y"])
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
    # labels after every mark: each curve's name (or a lone point's label), then ef values
    for members in curves.values():
        first = members[0]
        name = " ".join(w for w in first["row"]["label"].split() if not w.startswith("ef="))
        label_at(
            sx(first["x"]), sy(first["y"]), name if len(members) > 1 else first["row"]["label"], "l"
        )
    for members in curves.values():
        if len(members) > 1:
            for p in members:
                ef = p["row"]["config"].get("ef_search")
                label_at(sx(p["x"]), sy(p["y"]), f"ef={ef}", left=False)
    # legend
    lx, ly = _LEFT + plot_w + 24, _TOP + 10
    parts.append(f'<text x="{lx}" y="{ly}" class="h">retrieval</text>')
    for i, (name, colour) in enumerate(_COLOURS.items()):
        y = ly + 22 + i * 20
        parts.append(f'<circle cx="{lx + 6}" cy="{y - 4}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 18}" y="{y}" class="l">{name}</text>')
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
