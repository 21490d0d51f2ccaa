"""Small inline SVG charts for the pages: histograms, bar charts, lines and scatters.

The dictionary page (Fig. 3's companion statistics) shows, per D model, how the correlations of
best-buddy pairs (Eq. 3) sit against those of all (G, D) unit pairs, and how many concepts have
a unit at each layer depth of each model; with the controls, each G unit's best correlation in
D against its untrained twins' (`controls`). Charts are plain SVG text: no plotting library, no
network, they scale with the page and print sharply.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
import pandas as pd

from ..core.stores import open_match_store, row_blocks

EDGES = np.linspace(-1.0, 1.0, 81)  # correlation bins of width 0.025
W, H = 360, 190
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 38, 34


def correlation_counts(match_path: str) -> np.ndarray:
    """Counts of all unit pairs' correlations of a match store in EDGES, row block by block."""
    ds = open_match_store(match_path)
    counts = np.zeros(len(EDGES) - 1, dtype=np.int64)
    for _, block in row_blocks(ds["corr"], match_path):
        counts += np.histogram(np.clip(block, -1, 1), bins=EDGES)[0]
    return counts


def null_series(null: pd.DataFrame) -> tuple[str, np.ndarray, str]:
    """The histogram series of a null best-buddy table (every permutation of it)."""
    return (f"null \u00d7{null['null'].nunique()}",
            np.histogram(np.clip(null["corr"].to_numpy(float), -1, 1), bins=EDGES)[0], "null")


def _fmt(v: float) -> str:
    v += 0.0  # -0.0 (a tick rounded up from below zero) reads 0
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:.0f}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
            'xmlns="http://www.w3.org/2000/svg">',
            f"<title>{escape(title)}</title>",
            f'<text x="{LEFT}" y="15" class="ct">{escape(title)}</text>',
            f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 4}" class="cl" '
            f'text-anchor="middle">{escape(x_label)}</text>',
            f'<text x="11" y="{(TOP + H - BOTTOM) / 2}" class="cl" text-anchor="middle" '
            f'transform="rotate(-90 11 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>',
            f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" class="ax"/>',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" class="ax"/>']


def _y_ticks(top: float, y, unit: str = "") -> list[str]:
    out = []
    for v in (0, top / 2, top):
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 3:.1f}" class="tk" '
                   f'text-anchor="end">{_fmt(v)}{unit}</text>')
    return out


def spread_edges(values: np.ndarray, bins: int = 60) -> np.ndarray:
    """`bins` equal bins over the finite `values`, their ends rounded out to tenths."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return EDGES
    lo, hi = np.floor(finite.min() * 10) / 10, np.ceil(finite.max() * 10) / 10
    return np.linspace(lo, max(hi, lo + 0.1), bins + 1)


def histogram_svg(title: str, series: Sequence[tuple[str, np.ndarray, str]],
                  edges: np.ndarray = EDGES, x_label: str = "correlation",
                  y_label: str = "share of pairs") -> str:
    """Overlaid histograms as shares of each series' total: [(label, counts, css class)]."""
    shares = [(label, c / max(c.sum(), 1), cls) for label, c, cls in series]
    used = np.flatnonzero(np.any([s > 0 for _, s, _ in shares], axis=0))
    lo_bin, hi_bin = (used[0], used[-1] + 1) if len(used) else (0, len(edges) - 1)
    lo_bin, hi_bin = max(lo_bin - 2, 0), min(hi_bin + 2, len(edges) - 1)
    x0, x1 = edges[lo_bin], edges[hi_bin]
    top = max((s.max() for _, s, _ in shares), default=0.0) or 1.0
    top = float(np.ceil(top * 20) / 20) if top > 0.05 else float(np.ceil(top * 100) / 100)

    def x(v):
        return LEFT + (v - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def y(v):
        return H - BOTTOM - v / top * (H - TOP - BOTTOM)

    out = _frame(title, x_label, y_label)
    out += _y_ticks(top * 100, lambda v: y(v / 100), "%")
    span = x1 - x0
    step = 0.1 if span <= 0.6 else 0.25 if span <= 2.5 else float(np.ceil(span / 5)) / 2
    for v in np.arange(np.ceil(x0 / step) * step, x1 + 1e-9, step):
        out.append(f'<text x="{x(v):.1f}" y="{H - BOTTOM + 13}" class="tk" '
                   f'text-anchor="middle">{_fmt(v)}</text>')
    for n, (label, s, cls) in enumerate(shares):
        for b in range(lo_bin, hi_bin):
            if s[b] > 0:
                out.append(f'<rect x="{x(edges[b]):.1f}" y="{y(s[b]):.1f}" '
                           f'width="{x(edges[b + 1]) - x(edges[b]):.1f}" '
                           f'height="{y(0) - y(s[b]):.1f}" class="{cls}"/>')
        total = int(series[n][1].sum())
        lx = LEFT + (W - LEFT) // len(shares) * n  # legend: one row under the title
        out.append(f'<rect x="{lx}" y="21" width="9" height="9" class="{cls}"/>')
        out.append(f'<text x="{lx + 13}" y="29" class="tk">{escape(label)} ({total:,})</text>')
    out.append("</svg>")
    return "".join(out)


def bars_svg(title: str, labels: Sequence[str], counts: Sequence[int], cls: str = "bar",
             x_label: str = "layer (input to output)") -> str:
    """Vertical bars, one per label, in order; full labels as tooltips."""
    n = max(len(labels), 1)
    top = max(max(counts, default=0), 1)
    width = (W - LEFT - RIGHT) / n

    def y(v):
        return H - BOTTOM - v / top * (H - TOP - BOTTOM)

    out = _frame(title, x_label, "concepts")
    out += _y_ticks(top, y)
    every = max(1, int(np.ceil(n / 8)))
    for i, (label, c) in enumerate(zip(labels, counts, strict=True)):
        x = LEFT + i * width
        out.append(f'<rect x="{x + 0.15 * width:.1f}" y="{y(c):.1f}" '
                   f'width="{0.7 * width:.1f}" height="{y(0) - y(c):.1f}" class="{cls}">'
                   f"<title>{escape(label)}: {c}</title></rect>")
        if c:
            out.append(f'<text x="{x + width / 2:.1f}" y="{y(c) - 2:.1f}" class="tk" '
                       f'text-anchor="middle">{c}</text>')
        if i % every == 0:
            short = label if len(label) <= 10 else label[:9] + "\u2026"
            out.append(f'<text x="{x + width / 2:.1f}" y="{H - BOTTOM + 13}" class="tk" '
                       f'text-anchor="middle">{escape(short)}</text>')
    out.append("</svg>")
    return "".join(out)


def lines_svg(title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
              x_label: str, y_label: str) -> str:
    """Lines with dots on a [0, 1] y axis, one per (label, xs, ys), x from 0 to the largest;
    the legend sits at the bottom left, where values near 1 leave room."""
    right = max((max(xs) for _, xs, _ in series if len(xs)), default=1) or 1

    def x(v):
        return LEFT + v / right * (W - LEFT - RIGHT)

    def y(v):
        return H - BOTTOM - v * (H - TOP - BOTTOM)

    out = _frame(title, x_label, y_label) + _y_ticks(1.0, y)
    for v in (0, right / 2, right):
        out.append(f'<text x="{x(v):.1f}" y="{H - BOTTOM + 13}" class="tk" '
                   f'text-anchor="middle">{_fmt(v)}</text>')
    for n, (label, xs, ys) in enumerate(series):
        cls = f"line{n % 4}"
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys, strict=True))
        out.append(f'<polyline points="{points}" class="trend {cls}"/>')
        out += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="2.5" class="{cls}">'
                f"<title>{escape(label)}: {_fmt(b)} at {a:g}</title></circle>"
                for a, b in zip(xs, ys, strict=True)]
        ly = H - BOTTOM - 8 - 12 * (len(series) - 1 - n)  # legend: rows at the bottom left
        out.append(f'<rect x="{LEFT + 6}" y="{ly - 8}" width="9" height="9" class="{cls}"/>')
        out.append(f'<text x="{LEFT + 19}" y="{ly}" class="tk">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def scatter_svg(title: str, xs: np.ndarray, ys: np.ndarray, x_label: str, y_label: str,
                tips: Sequence[str]) -> str:
    """A dot per (x, y), `tips` its tooltip, both axes on one range with the diagonal y = x
    drawn: dots above it have y > x."""
    both = np.concatenate([xs, ys])
    lo = float(np.floor(both.min() * 10) / 10) if len(both) else 0.0
    hi = max(float(np.ceil(both.max() * 10) / 10) if len(both) else 1.0, lo + 0.1)

    def x(v):
        return LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT)

    def y(v):
        return H - BOTTOM - (v - lo) / (hi - lo) * (H - TOP - BOTTOM)

    out = _frame(title, x_label, y_label)
    for v in (lo, (lo + hi) / 2, hi):
        out.append(f'<text x="{x(v):.1f}" y="{H - BOTTOM + 13}" class="tk" '
                   f'text-anchor="middle">{_fmt(v)}</text>')
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 3:.1f}" class="tk" '
                   f'text-anchor="end">{_fmt(v)}</text>')
    out.append(f'<line x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" y2="{y(hi):.1f}" '
               'class="diag"><title>y = x</title></line>')
    out += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="2" class="pt">'
            f"<title>{escape(tip)}</title></circle>"
            for a, b, tip in zip(xs, ys, tips, strict=True)]
    out.append("</svg>")
    return "".join(out)
