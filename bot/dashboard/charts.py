"""Server-rendered SVG charts: no JavaScript library, no CDN, prints and works offline.

Each function returns one self-contained <svg> string (every label escaped) with a
<title> for screen readers and a <title> per bar/point as a hover tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

BLUE = "#1f5fa8"
GREEN = "#1b7f3b"
AMBER = "#b86e00"
RED = "#b3261e"
GREY = "#6b7280"
GRID = "#d9dee5"
TEXT = "#1f2933"

_counter = 0


def _id(prefix: str) -> str:
    global _counter
    _counter = (_counter + 1) % 1_000_000
    return f"{prefix}{_counter}"


def nice_max(value: float) -> float:
    """Round up to 1, 2, 2.5 or 5 times a power of ten, so axis ticks are round numbers."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def count_axis(value: float) -> tuple[float, int]:
    """(top, intervals) of an axis of counts: every tick a whole number (no "0,2 câu hỏi"), at
    most five intervals of 1, 2, 5 times a power of ten (or 25, 250 ...)."""
    steps = sorted({m * 10**p for p in range(12) for m in (1, 2, 5)} | {25 * 10**p for p in range(11)})
    step = next(s for s in steps if math.ceil(value / s) <= 5)
    intervals = max(1, math.ceil(value / step))
    return float(step * intervals), intervals


def _fmt(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return f"{int(round(value)):,}".replace(",", ".")
    return f"{value:.1f}".replace(".", ",")


def _open(width: int, height: int, title: str, css: str = "chart") -> tuple[list[str], str]:
    ident = _id("c")
    parts = [f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-labelledby="{ident}" preserveAspectRatio="xMidYMid meet" '
             f'font-family="system-ui, sans-serif" font-size="12">',
             f'<title id="{ident}">{escape(title)}</title>']
    return parts, ident


def _empty(width: int, height: int, title: str) -> str:
    parts, _ = _open(width, height, title, "chart chart-empty")
    parts.append(f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f7f8fa" stroke="{GRID}"/>')
    parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{GREY}" font-size="14">'
                 'Chưa có dữ liệu trong khoảng thời gian này</text></svg>')
    return "".join(parts)


def _y_axis(parts: list[str], left: int, top: int, plot_w: int, plot_h: int, top_value: float,
            suffix: str = "", intervals: int = 4) -> None:
    for i in range(intervals + 1):
        value = top_value * i / intervals
        y = top + plot_h - plot_h * i / intervals
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{GREY}">'
                     f'{escape(_fmt(value) + suffix)}</text>')


def _x_labels(parts: list[str], labels: Sequence[str], xs: Sequence[float], y: float, max_labels: int) -> None:
    every = max(1, math.ceil(len(labels) / max_labels))
    for i, (label, x) in enumerate(zip(labels, xs)):
        if i % every == 0 or i == len(labels) - 1 and len(labels) <= max_labels:
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{GREY}">{escape(label)}</text>')


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = "",
              color: str = BLUE, width: int = 760, height: int = 260) -> str:
    """Vertical bars, e.g. questions per day."""
    if not values or max(values) <= 0:
        return _empty(width, height, title)
    left, right, top, bottom = 48, 12, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value, intervals = count_axis(max(values))
    parts, _ = _open(width, height, title)
    _y_axis(parts, left, top, plot_w, plot_h, top_value, intervals=intervals)
    slot = plot_w / len(values)
    bar_w = max(1.0, slot * 0.72)
    xs = []
    for i, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / top_value
        x = left + slot * i + (slot - bar_w) / 2
        xs.append(x + bar_w / 2)
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                     f'height="{max(h, 0):.1f}" fill="{color}"><title>{escape(label)}: {escape(_fmt(value))}'
                     f'{escape(" " + unit if unit else "")}</title></rect>')
    _x_labels(parts, labels, xs, height - 10, 12)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *, title: str,
               top_value: float | None = None, suffix: str = "", width: int = 760, height: int = 280) -> str:
    """Lines over time, e.g. answer/suggest/fallback rates (give top_value), or counts (leave it
    out: whole-number ticks); a None value leaves a gap."""
    values = [v for _name, vals, _c in series for v in vals if v is not None]
    if not labels or not values:
        return _empty(width, height, title)
    left, right, top, bottom = 48, 12, 14, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    intervals = 4
    if not top_value:
        top_value, intervals = count_axis(max(values))
    parts, _ = _open(width, height, title)
    _y_axis(parts, left, top, plot_w, plot_h, top_value, suffix, intervals)
    step = plot_w / max(1, len(labels) - 1)
    xs = [left + step * i if len(labels) > 1 else left + plot_w / 2 for i in range(len(labels))]
    for name, vals, color in series:
        segments: list[list[str]] = [[]]
        for x, label, value in zip(xs, labels, vals):
            if value is None:
                segments.append([])
                continue
            y = top + plot_h - plot_h * min(value, top_value) / top_value
            segments[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                         f'<title>{escape(name)} — {escape(label)}: {escape(_fmt(value) + suffix)}</title></circle>')
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline class="line" points="{" ".join(seg)}" fill="none" stroke="{color}" '
                             'stroke-width="2.5" stroke-linejoin="round"/>')
    _x_labels(parts, labels, xs, top + plot_h + 18, 10)
    x = left
    for name, _vals, color in series:  # legend
        parts.append(f'<rect x="{x}" y="{height - 18}" width="14" height="14" fill="{color}"/>')
        parts.append(f'<text x="{x + 20}" y="{height - 6}" fill="{TEXT}">{escape(name)}</text>')
        x += 30 + 8 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, color: str = BLUE,
               width: int = 760, label_width: int = 300) -> str:
    """Horizontal bars with long labels, e.g. top topics or subscribers by ward."""
    if not values or max(values) <= 0:
        return _empty(width, 120, title)
    row_h, top = 28, 8
    height = top * 2 + row_h * len(values)
    plot_w = width - label_width - 60
    top_value = max(values)
    parts, _ = _open(width, height, title)
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + row_h * i
        w = plot_w * value / top_value
        short = label if len(label) <= 44 else label[:43] + "…"
        parts.append(f'<text x="{label_width - 8}" y="{y + 18}" text-anchor="end" fill="{TEXT}">'
                     f'<title>{escape(label)}</title>{escape(short)}</text>')
        parts.append(f'<rect class="bar" x="{label_width}" y="{y + 5}" width="{max(w, 1):.1f}" height="{row_h - 10}" '
                     f'fill="{color}"><title>{escape(label)}: {escape(_fmt(value))}</title></rect>')
        parts.append(f'<text x="{label_width + w + 6:.1f}" y="{y + 18}" fill="{TEXT}">{escape(_fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def split_bar(parts_: Sequence[tuple[str, float, str]], *, title: str, width: int = 760, height: int = 56) -> str:
    """One bar split into shares, e.g. 👍 against 👎."""
    total = sum(v for _n, v, _c in parts_)
    if total <= 0:
        return _empty(width, height, title)
    parts, _ = _open(width, height, title)
    x = 0.0
    for name, value, color in parts_:
        w = width * value / total
        if w <= 0:
            continue
        share = f"{name}: {_fmt(value)} ({_fmt(100 * value / total)}%)"
        parts.append(f'<rect class="bar" x="{x:.1f}" y="0" width="{w:.1f}" height="{height - 20}" fill="{color}">'
                     f'<title>{escape(share)}</title></rect>')
        if w > 90:
            parts.append(f'<text x="{x + 8:.1f}" y="{height - 32}" fill="#fff" font-size="14">{escape(share)}</text>')
        x += w
    parts.append("</svg>")
    return "".join(parts)
