"""One self-contained interactive HTML report of a hardmine table: ``hm.report(table)``.

The report is a single HTML file with no network access (a Content-Security-Policy forbids it): it opens from disk
in any browser and inside a Jupyter notebook (``hm.report(table)`` as a cell's value). It holds:

- every row of the table (not a top-N) in a table that sorts by any column, filters by group, class, difficulty,
  region and score range, and searches ids; the rows are embedded as compact columnar JSON and rendered one page at a
  time, so 10**5 rows open and sort in about a second (``benchmarks/bench_report.py``);
- a thumbnail per sample, from ``dataset=`` (anything indexable by the table's ``index`` that returns an image
  tensor/array/PIL image, alone or first in a tuple) or from image files under ``image_root`` (the folder that was
  scored: files outside it are never read unless ``allow_any_path=True``, because ids may be hostile such as
  ``../../secret.png``); the thumbnails are stored per row as data URIs at the reduced size, made with PIL, and
  shown in a lightbox when clicked;
- the summary (:func:`hardmine.summary`'s HTML), the score histogram per group with the threshold, the
  precision-recall curve with its average precision and the ROC curve with its AUC when the table has
  probabilities, the confusion matrix with class names (counts and row-normalised), the data map with its region
  labels when the table has dynamics columns (:func:`hardmine.add_dynamics`), and the label-issue ranking when one is
  given (:func:`hardmine.label_issues`). Charts are inline SVG computed in numpy: no JavaScript library, no CDN.

Everything the table holds is user data (ids, class names): it is escaped in HTML and embedded in JSON with ``<``,
``>`` and ``&`` as unicode escapes, and the page's script writes it with ``textContent`` only.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis._curves import average_precision, pr_points, roc_auc, roc_points
from hardmine.analysis.dynamics import REGIONS, dynamics_regions
from hardmine.analysis.metrics import confusion, positive_prob, summary
from hardmine.analysis.plot import GROUP_COLORS, REGION_COLORS, _to_image
from hardmine.analysis.splitting import positive_classes
from hardmine.core._files import atomic_path
from hardmine.core.columns import GROUPS, harder_when, prob_columns

__all__ = ["Report", "report"]

#: At most this many ``prob_<c>`` columns are embedded in the report's table (more would swamp it).
MAX_PROB_COLUMNS = 10
#: The data map draws at most this many points (an even sample of the rows, stated under the chart).
MAX_MAP_POINTS = 4000
_CATEGORY_COLUMNS = ("group", "difficulty", "polarity", "region")
_CLASS_COLUMNS = ("label", "pred", "suggested_label", "runner_up")


@dataclass(frozen=True)
class Report:
    """What :func:`report` returns: the page, and where it was written.

    Displays itself in Jupyter (an ``<iframe>`` holding the page), and :meth:`save` writes it.

    Attributes:
        html: the complete page, one self-contained HTML document.
        path: where it was written, or ``None``.
        num_rows: rows in the report's table (every row of the input table).
        num_images: rows with a thumbnail.
        notes: what the report left out and why (images outside ``image_root``, unreadable files ...).
    """

    html: str
    path: Path | None
    num_rows: int
    num_images: int
    notes: tuple[str, ...] = ()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (atomically) and return the path."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Expected argument `path` to be a str or os.PathLike, but got {type(path).__name__}.")
        target = Path(path)
        with atomic_path(target) as tmp:
            tmp.write_text(self.html, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        doc = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{doc}" sandbox="allow-scripts" title="hardmine report" '
            'style="width:100%;height:820px;border:1px solid #ddd"></iframe>'
        )

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"Report(rows={self.num_rows}, images={self.num_images}, {len(self.html) / 1e6:.2f} MB{where})"


# ---------------------------------------------------------------------------------------------------- data to JSON
def _json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` or line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text


def _numbers(values: np.ndarray) -> list[float | None]:
    """Floats with 6 significant digits (short JSON), NaN and infinities as ``None``."""
    x = np.asarray(values, dtype=np.float64)
    out: list[float | None] = [float(v) for v in np.char.mod("%.6g", np.where(np.isfinite(x), x, 0.0))]
    if not np.isfinite(x).all():
        for i in np.flatnonzero(~np.isfinite(x)).tolist():
            out[i] = None
    return out


def _columns(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as columns for the page: ``name``, ``kind`` (int, num, bool, cat, class, str) and ``values``."""
    pcols = prob_columns(table)
    skip = set(pcols) if len(pcols) > MAX_PROB_COLUMNS else set()
    out: list[dict[str, Any]] = []
    for name in table.columns:
        if name in skip:
            continue
        col = table[name]
        key = str(name)
        if isinstance(col.dtype, pd.CategoricalDtype) or key in _CATEGORY_COLUMNS:
            cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
            out.append(
                {
                    "name": key,
                    "kind": "cat",
                    "categories": [str(c) for c in cat.cat.categories],
                    "values": cat.cat.codes.to_numpy(dtype=np.int64).tolist(),
                }
            )
        elif pd.api.types.is_bool_dtype(col):
            out.append({"name": key, "kind": "bool", "values": col.to_numpy(dtype=bool).astype(int).tolist()})
        elif pd.api.types.is_integer_dtype(col):
            kind = "class" if key in _CLASS_COLUMNS else "int"
            out.append({"name": key, "kind": kind, "values": col.to_numpy(dtype=np.int64).tolist()})
        elif pd.api.types.is_numeric_dtype(col):
            out.append({"name": key, "kind": "num", "values": _numbers(col.to_numpy(dtype=np.float64))})
        else:
            values = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in col.tolist()]
            out.append({"name": key, "kind": "str", "values": values})
    return out


# ---------------------------------------------------------------------------------------------------- thumbnails
def _encode(image: np.ndarray, size: int) -> str:
    """A float image in [0, 1] as a data URI, reduced to fit ``size`` x ``size`` (PNG when small or grey, else JPEG)."""
    from PIL import Image

    pixels = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    img = Image.fromarray(pixels)
    return _encode_pil(img, size)


def _encode_pil(img: Any, size: int) -> str:
    from PIL import Image

    small = max(img.size) <= 2 * size
    img.thumbnail((size, size), Image.Resampling.BILINEAR if not small else Image.Resampling.NEAREST)
    buf = io.BytesIO()
    if img.mode == "L" or small:
        img.save(buf, format="PNG", optimize=False)
        mime = "png"
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=82)
        mime = "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _PathGuard:
    """Opens image files only under ``root`` (after resolving symlinks and ``..``), unless any path is allowed."""

    def __init__(self, root: str | os.PathLike[str] | None, allow_any_path: bool) -> None:
        self.root = None if root is None else Path(root).resolve()
        self.allow_any = allow_any_path
        self.outside = 0
        self.missing = 0
        if self.root is not None and not self.root.is_dir():
            raise ValueError(f"Expected argument `image_root` to be an existing folder, but got {str(root)!r}.")

    def resolve(self, name: str) -> Path | None:
        """The file to open for an id, or ``None`` (counted in ``outside`` or ``missing``).

        A relative id is looked up under ``root`` first, then as given (ids recorded as ``root/class/x.png``).
        """
        raw = Path(name)
        candidates = [raw] if raw.is_absolute() else ([self.root / raw] if self.root is not None else []) + [raw]
        allowed = False
        for cand in candidates:
            try:
                path = cand.resolve()
            except (OSError, RuntimeError):
                continue
            if not self.allow_any and (self.root is None or not path.is_relative_to(self.root)):
                continue
            allowed = True
            if path.is_file():
                return path
        if allowed:
            self.missing += 1
        else:
            self.outside += 1
        return None


def _thumbnails(
    table: pd.DataFrame,
    dataset: Any,
    guard: _PathGuard | None,
    size: int,
    rows: np.ndarray,
    notes: list[str],
) -> list[str | None]:
    """One data URI (or ``None``) per table row; images made for the row positions in ``rows`` only."""
    from PIL import Image

    thumbs: list[str | None] = [None] * len(table)
    errors = 0
    first_error = ""
    index = table["index"].to_numpy() if "index" in table.columns else np.arange(len(table))
    ids = table["id"].astype(str).to_numpy() if "id" in table.columns else None
    for pos in rows.tolist():
        try:
            item = dataset[int(index[pos])] if dataset is not None else ids[pos]  # type: ignore[index]
            if isinstance(item, (tuple, list)) and item:
                item = item[0]
            if isinstance(item, (str, bytes, os.PathLike)):
                path = guard.resolve(os.fsdecode(item)) if guard is not None else None
                if path is None:
                    continue
                with Image.open(path) as img:
                    img.draft("RGB", (size * 2, size * 2))
                    thumbs[pos] = _encode_pil(img.convert("RGB") if img.mode not in ("L", "RGB") else img, size)
            else:
                thumbs[pos] = _encode(_to_image(item), size)
        except Exception as err:  # one unreadable sample must not lose the report: counted and named in the notes
            errors += 1
            if not first_error:
                first_error = f"{type(err).__name__}: {err}"
    if errors:
        notes.append(f"{errors} image(s) could not be read and have no thumbnail (first: {first_error}).")
    if guard is not None and guard.missing:
        notes.append(f"{guard.missing} image file(s) named by the ids do not exist.")
    if guard is not None and guard.outside:
        notes.append(
            f"{guard.outside} image path(s) lie outside `image_root` and were not embedded "
            "(pass allow_any_path=True to embed files anywhere)."
        )
    return thumbs


# ---------------------------------------------------------------------------------------------------- SVG charts
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
    finite = values[np.isfinite(values)]
    if by in ("label_prob", "confidence", "correctness", "mean_label_prob") or by.startswith("prob_"):
        lo, hi = 0.0, 1.0
    elif by == "margin":
        lo, hi = -1.0, 1.0
    else:
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
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
        {"confidence": table[conf_col].to_numpy(np.float64), "variability": table["variability"].to_numpy()}
    )
    regions = dynamics_regions(frame)
    settings = regions.attrs["hardmine"]
    ct, vt = float(settings["confidence_threshold"]), float(settings["variability_threshold"])
    seen = np.isfinite(frame.to_numpy(dtype=np.float64)).all(axis=1)
    pos = np.flatnonzero(seen)
    step = max(1, math.ceil(len(pos) / MAX_MAP_POINTS))
    drawn = pos[::step]
    var = frame["variability"].to_numpy(np.float64)
    conf = frame["confidence"].to_numpy(np.float64)
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


# ---------------------------------------------------------------------------------------------------- the page
def _class_names(classes: Sequence[str] | None, dataset: Any, table: pd.DataFrame) -> list[str] | None:
    if classes is not None:
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
            raise TypeError(f"Expected argument `classes` to be a sequence of names, but got {type(classes).__name__}.")
        return [str(c) for c in classes]
    found = getattr(dataset, "classes", None) or table.attrs.get("hardmine", {}).get("classes")
    return [str(c) for c in found] if found is not None else None


def _merge_issues(table: pd.DataFrame, issues: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(issues, pd.DataFrame):
        raise TypeError(
            f"Expected argument `issues` to be a DataFrame from hm.label_issues, but got {type(issues).__name__}."
        )
    for col in ("index", "score"):
        if col not in issues.columns:
            raise ValueError(
                f"Expected argument `issues` to have a `{col}` column (hm.label_issues' table), but the columns are "
                f"{list(issues.columns)}."
            )
    if "index" not in table.columns:
        raise ValueError("Expected an `index` column in `table` to join the label issues on.")
    extra = pd.DataFrame({"index": issues["index"].to_numpy(np.int64)})
    extra["issue_rank"] = np.arange(1, len(issues) + 1, dtype=np.int64)
    extra["issue_score"] = issues["score"].to_numpy(np.float64)
    if "suggested_label" in issues.columns and "suggested_label" not in table.columns:
        extra["suggested_label"] = issues["suggested_label"].to_numpy(np.int64)
    if "is_issue" in issues.columns:
        extra["is_issue"] = issues["is_issue"].to_numpy(bool)
    merged = table.merge(extra, on="index", how="left", validate="many_to_one")
    merged.attrs = dict(table.attrs)
    for col in ("issue_rank", "suggested_label"):
        if col in merged.columns and merged[col].isna().any():
            merged[col] = merged[col].astype("Float64").astype(np.float64)  # rows the ranking does not hold: NaN
        elif col in merged.columns:
            merged[col] = merged[col].astype(np.int64)
    if "is_issue" in merged.columns:
        merged["is_issue"] = merged["is_issue"].astype("boolean").fillna(False).astype(bool)
    return merged


def _hardest_order(table: pd.DataFrame, by: str) -> np.ndarray:
    if by not in table.columns or not pd.api.types.is_numeric_dtype(table[by]):
        return np.arange(len(table))
    values = table[by].to_numpy(np.float64)
    key = values if harder_when(by) == "lower" else -values
    return np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")


def report(
    table: pd.DataFrame,
    path: str | os.PathLike[str] | None = None,
    *,
    dataset: Any = None,
    image_root: str | os.PathLike[str] | None = None,
    allow_any_path: bool = False,
    classes: Sequence[str] | None = None,
    issues: pd.DataFrame | None = None,
    title: str = "hardmine report",
    thumbnail_size: int = 96,
    max_images: int | None = 10_000,
) -> Report:
    """One self-contained interactive HTML report of a score or split table; written to ``path`` when given.

    Args:
        table: a table from :func:`hardmine.score` or :func:`hardmine.split` (any table with one row per sample;
            the sections appear when their columns do: ``group`` for the summary and per-group histogram,
            ``label``/``pred`` for the confusion matrix, probabilities for PR/ROC, ``mean_label_prob`` and
            ``variability`` from :func:`hardmine.add_dynamics`, or a :meth:`hardmine.Dynamics.summary` itself, for
            the data map).
        path: write the page here (one ``.html`` file); ``None`` only returns it.
        dataset: images by dataset index: ``dataset[index]`` returns an image tensor ``(C, H, W)``/``(H, W)``, a
            numpy array, a PIL image, or a tuple whose first item is one (``(image, label)``).
        image_root: the folder that was scored; ids (file paths, as :func:`hardmine.score` records them for an
            ``ImageFolder``) are opened as images only when they resolve to a file inside it.
        allow_any_path: open id paths wherever they point (only for ids you trust).
        classes: class names, index ``c`` naming class ``c``; defaults to ``dataset.classes`` when it exists.
        issues: a label-issue ranking from :func:`hardmine.label_issues`; its rank, score, suggested label and flag
            join the table on ``index``, and a section lists the most suspicious samples.
        title: the page's title.
        thumbnail_size: the longest side of each thumbnail in pixels (images are reduced with PIL before embedding).
        max_images: embed thumbnails for at most this many rows, the hardest first (``None``: every row). Each
            thumbnail costs about 1-5 KB of HTML.

    Returns:
        A :class:`Report`: its ``html``, the ``path`` written, and notes on what was left out.

    Raises:
        TypeError: when ``table`` is not a DataFrame, or ``classes``/``issues`` have the wrong type.
        ValueError: for an ``image_root`` that is not a folder, a ``thumbnail_size`` below 8, a negative
            ``max_images``, or an ``issues`` table without ``index`` and ``score``.

    Example:
        >>> import pandas as pd, hardmine as hm
        >>> t = hm.split(pd.DataFrame({"index": [0, 1, 2, 3], "id": ["a", "b", "c", "d"], "label": [1, 1, 0, 0],
        ...                            "pred": [1, 0, 0, 1], "label_prob": [0.9, 0.4, 0.8, 0.3]}), threshold=0.5)
        >>> r = hm.report(t)
        >>> r.num_rows, r.html.startswith("<!DOCTYPE html>"), "precision-recall" in r.html
        (4, True, True)
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    if isinstance(thumbnail_size, bool) or not isinstance(thumbnail_size, int) or thumbnail_size < 8:
        raise ValueError(f"Expected argument `thumbnail_size` to be an int >= 8, but got {thumbnail_size!r}.")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0):
        raise ValueError(f"Expected argument `max_images` to be an int >= 0 or None, but got {max_images!r}.")
    settings = dict(table.attrs.get("hardmine", {}))
    names = _class_names(classes, dataset, table)
    notes: list[str] = []
    data = _merge_issues(table, issues) if issues is not None else table.reset_index(drop=True)

    by = settings.get("by") or ("label_prob" if "label_prob" in data.columns else None)
    sections: list[str] = []

    # The summary: whatever hm.summary gives for this table.
    if {"label", "pred", "group"} <= set(data.columns):
        try:
            sections.append(_section("summary", "Summary", summary(data)._repr_html_()))
        except (ValueError, KeyError) as err:
            notes.append(f"No summary: {err}")

    charts: list[str] = []
    if by is not None and by in data.columns and pd.api.types.is_numeric_dtype(data[by]):
        threshold = settings.get("threshold") if settings.get("by", by) == by else None
        threshold = (
            float(threshold) if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) else None
        )
        charts.append(_figure(_histogram_svg(data, by, threshold), "Score histogram per group", "hist"))
    if "label" in data.columns:
        try:
            prob = positive_prob(data)
            pos = positive_classes(data, required=True)
            actual = np.isin(data["label"].to_numpy(), pos)
            if actual.any() and not actual.all() and np.isfinite(prob).all():
                p, r, _ = pr_points(actual, prob)
                ap = average_precision(actual, prob)
                fpr, tpr, _ = roc_points(actual, prob)
                auc = roc_auc(actual, prob)
                what = f"positive class {', '.join(names[c] if names and 0 <= c < len(names) else str(c) for c in pos)}"
                charts.append(
                    _figure(_curve_svg("pr", r, p, ap, float(actual.mean())), f"Precision-recall ({what})", "pr")
                )
                charts.append(_figure(_curve_svg("roc", fpr, tpr, auc, None), f"ROC ({what})", "roc"))
            else:
                notes.append("No PR/ROC curve: the table has only one class among the positives and negatives.")
        except ValueError as err:
            notes.append(f"No PR/ROC curve: {err}")
    conf_col = _dynamics_confidence(data)
    if conf_col is not None:
        svg, caption = _data_map_svg(data, conf_col)
        charts.append(_figure(svg, f"Data map ({caption})", "datamap"))
    if charts:
        sections.append(_section("charts", "Charts", f'<div class="charts">{"".join(charts)}</div>'))
    if {"label", "pred"} <= set(data.columns):
        sections.append(_section("confusion", "Confusion matrix (rows: ground truth)", _confusion_html(data, names)))
    if issues is not None:
        method = html.escape(str(issues.attrs.get("hardmine", {}).get("method", "")))
        flagged = int(issues["is_issue"].sum()) if "is_issue" in issues.columns else None
        text = (
            f"<p>Method <b>{method or 'unknown'}</b>; {len(issues)} samples ranked"
            + (f", {flagged} flagged as likely label errors" if flagged is not None else "")
            + '. <button type="button" id="hm-sort-issues">Sort the table by issue rank</button></p>'
        )
        sections.append(_section("issues", "Label issues", text))

    # Thumbnails, hardest first when they are capped.
    thumbs: list[str | None] = [None] * len(data)
    if dataset is not None or image_root is not None or allow_any_path:
        if dataset is None and "id" not in data.columns:
            notes.append("No thumbnails: the table has no `id` column to open (pass `dataset=`).")
        else:
            guard = _PathGuard(image_root, allow_any_path) if (image_root is not None or allow_any_path) else None
            if dataset is not None and guard is None:
                guard = _PathGuard(None, False)
            order = _hardest_order(data, by) if by else np.arange(len(data))
            if max_images is not None and max_images < len(order):
                order = order[:max_images]
                notes.append(f"Thumbnails for the {max_images} hardest rows only (max_images={max_images}).")
            thumbs = _thumbnails(data, dataset, guard, thumbnail_size, np.sort(order), notes)
    elif "id" in data.columns:
        notes.append(
            "No thumbnails: pass `dataset=` (images by index) or `image_root=` (the folder whose files the ids name)."
        )

    payload = {
        "n": len(data),
        "columns": _columns(data),
        "classes": names,
        "score": by if by in data.columns else None,
    }
    num_images = sum(t is not None for t in thumbs)
    page = _page(title, settings, data, sections, notes, payload, thumbs if num_images else [])
    result = Report(html=page, path=None, num_rows=len(data), num_images=num_images, notes=tuple(notes))
    if path is not None:
        return Report(page, result.save(path), len(data), num_images, tuple(notes))
    return result


def _section(key: str, heading: str, body: str) -> str:
    return f'<section id="hm-{key}"><h2>{html.escape(heading)}</h2>{body}</section>'


def _figure(svg: str, caption: str, key: str) -> str:
    return f'<figure class="chart" id="hm-chart-{key}">{svg}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _page(
    title: str,
    settings: dict[str, Any],
    data: pd.DataFrame,
    sections: list[str],
    notes: list[str],
    payload: dict[str, Any],
    thumbs: list[str | None],
) -> str:
    esc = html.escape
    shown = {
        k: v for k, v in settings.items() if isinstance(v, (str, int, float, bool, list, tuple)) and k != "classes"
    }
    setting_text = "; ".join(f"{k} = {v}" for k, v in shown.items())
    notes_html = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{esc(title)}</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>{esc(title)}</h1><p>{len(data)} samples{"; " + esc(setting_text) if setting_text else ""}</p>
{f'<ul class="notes">{notes_html}</ul>' if notes_html else ""}</header>
{"".join(sections)}
<section id="hm-samples"><h2>Samples</h2>
<div class="controls" id="hm-controls"></div>
<p id="hm-count" aria-live="polite"></p>
<div class="tablewrap"><table id="hm-table"><thead></thead><tbody></tbody></table></div>
<div class="pager"><button type="button" id="hm-prev">&larr; previous</button>
<span id="hm-page"></span><button type="button" id="hm-next">next &rarr;</button>
<label>rows per page <select id="hm-pagesize"><option>25</option><option selected>50</option><option>100</option>
<option>500</option></select></label></div>
</section>
<div id="hm-lightbox" role="dialog" aria-modal="true" hidden><div class="lb-inner">
<button type="button" id="hm-lb-close" aria-label="close">&times;</button>
<img id="hm-lb-img" alt=""><dl id="hm-lb-info"></dl>
<div><button type="button" id="hm-lb-prev">&larr;</button> <button type="button" id="hm-lb-next">&rarr;</button></div>
</div></div>
<script type="application/json" id="hm-data">{_json_for_script(payload)}</script>
<script type="application/json" id="hm-thumbs">{_json_for_script(thumbs)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""


#: The page may load nothing: images are data URIs, style and script are inline.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


@functools.cache
def _asset(name: str) -> str:
    """The page's stylesheet or script, shipped beside this module in ``_report_assets/``."""
    return resources.files("hardmine.analysis").joinpath("_report_assets").joinpath(name).read_text(encoding="utf-8")
