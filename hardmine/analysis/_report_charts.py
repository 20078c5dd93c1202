"""The SVG charts and the confusion-matrix grid of :func:`hardmine.report`, computed in numpy (no JavaScript library).

Every chart is inline SVG text; every user string (class names, titles) is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis.dynamics import REGIONS, dynamics_regions
from hardmine.analysis.metrics import confusion
from hardmine.analysis.plot import GROUP_COLORS, REGION_COLORS
from hardmine.core.columns import GROUPS, display_range

#: The data map draws at most this many points (an even sample of the rows, stated under the chart).
MAX_MAP_POINTS = 4000

_W, _H = 440, 300
_L, _R, _T, _B = 56, 14, 30, 46  # margins


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _svg_axes(
    title: str,
    xlabel: str,
    ylabel: str,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    *,
    logy: bool = False,
) -> tuple[list[str], Any, Any]:
    """The frame of a chart: the SVG parts so far and the x and y transforms (data -> pixels)."""
    x0, x1 = xlim
    y0, y1 = ylim
    pw, ph = _W - _L - _R, _H - _T - _B

    def fx(x: Any) -> Any:
        return _L + (np.asarray(x, dtype=np.float64) - x0) / (x1 - x0) * pw

    def fy(y: Any) -> Any:
        y = np.asarray(y, dtype=np.float64)
        if logy:
            y = np.log10(np.maximum(y, 10**y0))
        return _T + ph - (y - y0) / (y1 - y0) * ph

    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<text x="{_W / 2}" y="18" text-anchor="middle" class="t">{esc(title)}</text>',
        f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for v in np.linspace(x0, x1, 6):
        px = float(fx(v))
        parts.append(f'<line x1="{px:.1f}" y1="{_T + ph}" x2="{px:.1f}" y2="{_T + ph + 4}" stroke="#666"/>')
        parts.append(f'<text x="{px:.1f}" y="{_T + ph + 16}" text-anchor="middle">{_fmt(float(v))}</text>')
    yticks = (
        [float(10**e) for e in range(int(math.floor(y0)), int(math.ceil(y1)) + 1)] if logy else np.linspace(y0, y1, 6)
    )
    for v in yticks:
        py = float(fy(v))
        if py < _T - 0.5 or py > _T + ph + 0.5:
            continue
        parts.append(f'<line x1="{_L - 4}" y1="{py:.1f}" x2="{_L}" y2="{py:.1f}" stroke="#666"/>')
        parts.append(f'<text x="{_L - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(float(v))}</text>')
    parts.append(f'<text x="{_L + pw / 2}" y="{_H - 8}" text-anchor="middle">{esc(xlabel)}</text>')
    parts.append(
        f'<text x="14" y="{_T + ph / 2}" text-anchor="middle" transform="rotate(-90 14 {_T + ph / 2})">'
        f"{esc(ylabel)}</text>"
    )
    return parts, fx, fy


def _polyline(xs: np.ndarray, ys: np.ndarray, color: str, *, dash: str = "", width: float = 1.8) -> str:
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(np.asarray(xs).tolist(), np.asarray(ys).tolist(), strict=True))
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"{dashed}/>'


def _legend(items: Sequence[tuple[str, str]], *, x: float = _L + 8, y: float = _T + 14) -> list[str]:
    out = []
    for k, (text, color) in enumerate(items):
        yy = y + 15 * k
        out.append(f'<rect x="{x}" y="{yy - 8}" width="12" height="8" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{yy}">{html.escape(text)}</text>')
    return out


def _histogram_svg(table: pd.DataFrame, by: str, threshold: float | None, bins: int = 30) -> str:
    values = table[by].to_numpy(dtype=np.float64)
    lo, hi = display_range(by, values)
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    if "group" in table.columns:
        groups = table["group"].astype(str).to_numpy()
        series = [(g, values[groups == g], GROUP_COLORS[g]) for g in GROUPS if (groups == g).any()]
    else:
        series = [("all samples", values, "#000000")]
    counts = [np.histogram(v[np.isfinite(v)], bins=edges)[0] for _, v, _ in series]
    top = max(1, max(int(c.max()) for c in counts))
    parts, fx, fy = _svg_axes(
        f"{by} per group (step histograms)",
        by,
        "samples (log scale)",
        (lo, hi),
        (0.0, math.log10(top) + 0.15),
        logy=True,
    )
    legend = []
    for (name, vals, color), c in zip(series, counts, strict=True):
        # A step outline per group: no translucent overlap, so every colour on screen is in the legend.
        xs = np.repeat(edges, 2)[1:-1]
        ys = np.repeat(np.maximum(c, 0.0), 2).astype(np.float64)
        ys_px = np.where(ys > 0, fy(np.maximum(ys, 1.0)), fy(1.0) + 0.0)
        ys_px = np.where(ys > 0, ys_px, _T + (_H - _T - _B))  # zero counts sit on the axis
        parts.append(_polyline(fx(xs), ys_px, color))
        legend.append((f"{name} ({len(vals)})", color))
    if threshold is not None and lo <= threshold <= hi:
        px = float(fx(threshold))
        parts.append(
            f'<line x1="{px:.1f}" y1="{_T}" x2="{px:.1f}" y2="{_H - _B}" stroke="#000" stroke-dasharray="5 3"/>'
        )
        legend.append((f"threshold {threshold:g}", "#000000"))
    parts += _legend(legend)
    parts.append("</svg>")
    return "".join(parts)


def _curve_svg(kind: str, xs: np.ndarray, ys: np.ndarray, score: float, base: float | None) -> str:
    if kind == "pr":
        parts, fx, fy = _svg_axes("precision-recall", "recall", "precision", (0.0, 1.0), (0.0, 1.02))
        name = f"AP {score:.3f}"
        # The PR curve is a step function (precision held until recall grows), as sklearn draws it.
        sx, sy = np.repeat(xs, 2)[1:], np.repeat(ys, 2)[:-1]
    else:
        parts, fx, fy = _svg_axes("ROC", "false positive rate", "true positive rate", (0.0, 1.0), (0.0, 1.02))
        name = f"AUC {score:.3f}"
        sx, sy = xs, ys
    parts.append(_polyline(fx(sx), fy(sy), "#0072B2"))
    if kind == "roc":
        parts.append(_polyline(fx([0.0, 1.0]), fy([0.0, 1.0]), "#999999", dash="4 3", width=1.0))
        legend = [(name, "#0072B2"), ("chance", "#999999")]
        parts += _legend(legend, x=_W - _R - 130, y=_H - _B - 28)
    else:
        legend = [(name, "#0072B2")]
        if base is not None:
            parts.append(_polyline(fx([0.0, 1.0]), fy([base, base]), "#999999", dash="4 3", width=1.0))
            legend.append((f"positive rate {base:.3f}", "#999999"))
        parts += _legend(legend, x=_L + 8, y=_H - _B - 28)
    parts.append("</svg>")
    return "".join(parts)


def _dynamics_confidence(table: pd.DataFrame) -> str | None:
    """The column holding the dynamics' confidence, or ``None`` when the table has no dynamics.

    ``mean_label_prob`` of a score table from ``hm.add_dynamics``, or ``confidence`` of a
    :meth:`hardmine.Dynamics.summary` (never a score table's ``confidence``, the final model's top probability).
    """
    if "variability" not in table.columns:
        return None
    if "mean_label_prob" in table.columns:
        return "mean_label_prob"
    if "confidence" in table.columns and table.attrs.get("hardmine", {}).get("source") == "dynamics":
        return "confidence"
    return None


def _data_map_svg(table: pd.DataFrame, conf_col: str) -> tuple[str, str]:
    frame = pd.DataFrame(
        {"mean_label_prob": table[conf_col].to_numpy(np.float64), "variability": table["variability"].to_numpy()}
    )
    regions = dynamics_regions(frame)
    settings = regions.attrs["hardmine"]
    ct, vt = float(settings["mean_label_prob_threshold"]), float(settings["variability_threshold"])
    seen = np.isfinite(frame.to_numpy(dtype=np.float64)).all(axis=1)
    pos = np.flatnonzero(seen)
    step = max(1, math.ceil(len(pos) / MAX_MAP_POINTS))
    drawn = pos[::step]
    var = frame["variability"].to_numpy(np.float64)
    conf = frame["mean_label_prob"].to_numpy(np.float64)
    # The x range always holds the whole ambiguous region's start and some of it, whatever the data.
    xmax = max(vt * 1.6, float(np.nanmax(var[seen])) * 1.05 if len(pos) else 0.0, 0.25)
    xmax = math.ceil(xmax * 20.0) / 20.0  # round ticks: a multiple of 0.05
    parts, fx, fy = _svg_axes(
        "data map",
        "variability (std of the label's probability)",
        "confidence (mean label probability)",
        (0.0, xmax),
        (0.0, 1.0),
    )
    codes = regions["region"].cat.codes.to_numpy()
    for r, name in enumerate(REGIONS):
        sel = drawn[codes[drawn] == r]
        color = REGION_COLORS[name]
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}"/>'
            for x, y in zip(fx(var[sel]).tolist(), fy(conf[sel]).tolist(), strict=True)
        )
    px, py = float(fx(vt)), float(fy(ct))
    parts.append(f'<line x1="{px:.1f}" y1="{_T}" x2="{px:.1f}" y2="{_H - _B}" stroke="#555" stroke-dasharray="3 3"/>')
    parts.append(f'<line x1="{_L}" y1="{py:.1f}" x2="{px:.1f}" y2="{py:.1f}" stroke="#555" stroke-dasharray="3 3"/>')
    counts = regions["region"].value_counts()
    labels = (
        ("easy-to-learn", (_L + px) / 2, _T + 16),
        ("hard-to-learn", (_L + px) / 2, _H - _B - 8),
        ("ambiguous", (px + _W - _R) / 2, _T + (_H - _T - _B) / 2),
    )
    for name, x, y in labels:
        parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="region" fill="{REGION_COLORS[name]}">'
            f"{name} ({int(counts.get(name, 0))})</text>"
        )
    parts.append("</svg>")
    note = f"{len(drawn)} of {len(pos)} samples drawn" + (" (an even sample)" if step > 1 else "")
    return "".join(parts), note


def _confusion_html(table: pd.DataFrame, names: Sequence[str] | None) -> str:
    mat = confusion(table, by_class=True)
    counts = mat.to_numpy().astype(np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, np.maximum(rows, 1), dtype=np.float64)

    def name(c: Any) -> str:
        c = int(c)
        return html.escape(str(names[c]) if names is not None and 0 <= c < len(names) else str(c))

    small = " small" if counts.shape[0] > 12 else ""

    def grid(values: np.ndarray, kind: str) -> str:
        cells = ["<thead><tr><th>truth \\ predicted</th>"]
        cells += [f'<th class="col">{name(c)}</th>' for c in mat.columns]
        cells.append("</tr></thead><tbody>")
        top = float(values.max()) if values.size else 1.0
        for i, r in enumerate(mat.index):
            cells.append(f"<tr><th>{name(r)}</th>")
            for j in range(values.shape[1]):
                v = values[i, j]
                a = 0.0 if top <= 0 else float(v) / top
                text = f"{int(v)}" if kind == "counts" else f"{v:.2f}"
                fg = "#fff" if a > 0.55 else "#000"
                diag = " diag" if i == j else ""
                cells.append(f'<td class="cm{diag}" style="background:rgba(0,114,178,{a:.3f});color:{fg}">{text}</td>')
            cells.append("</tr>")
        cells.append("</tbody>")
        return f'<table class="cm-grid{small}" data-kind="{kind}">{"".join(cells)}</table>'

    return (
        '<div class="cm-switch"><label><input type="radio" name="hm-cm" value="counts" checked> counts</label> '
        '<label><input type="radio" name="hm-cm" value="normalised"> row-normalised (recall per class)</label></div>'
        f'<div id="hm-cm-counts">{grid(counts, "counts")}</div>'
        f'<div id="hm-cm-normalised" hidden>{grid(norm, "normalised")}</div>'
    )
