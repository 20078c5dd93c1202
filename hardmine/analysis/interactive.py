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

import functools
import html
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
from hardmine.analysis._report_charts import MAX_MAP_POINTS as MAX_MAP_POINTS  # the old path keeps working
from hardmine.analysis._report_charts import (
    _confusion_html,
    _curve_svg,
    _data_map_svg,
    _dynamics_confidence,
    _histogram_svg,
)
from hardmine.analysis._report_thumbs import Overlay, _PathGuard, _thumbnails
from hardmine.analysis.metrics import positive_prob, summary
from hardmine.analysis.splitting import positive_classes
from hardmine.core import validate
from hardmine.core._files import atomic_path
from hardmine.core.columns import harder_when, prob_columns

__all__ = ["Report", "report"]

#: At most this many ``prob_<c>`` columns are embedded in the report's table (more would swamp it).
MAX_PROB_COLUMNS = 10
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
    masks: Any = None,
    boxes: pd.DataFrame | None = None,
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
        masks: segmentation tables: the masks of each image, as a callable ``masks(index)`` or anything indexable
            ``masks[index]`` giving ``(target, prediction)``: class-index masks ``(H, W)`` (tensors or arrays; either
            may be ``None``). Each thumbnail becomes the strip *image | target | prediction*, classes in matplotlib's
            ``tab20`` colours, pixels that are no class (255, negative, ``>= num_classes``) black. The target is
            usually ``dataset[index][1]``, the prediction ``model(image[None]).argmax(1)[0]``.
        boxes: detection tables: the per-box table of :func:`hardmine.score_detection` (``return_boxes=True``). Each
            thumbnail gets its boxes drawn: the ground truth in green (from ``dataset[index][1]["boxes"]``, when the
            images come from ``dataset=``), the missed boxes in red (dashed) and the confident false positives in
            orange, as :func:`hardmine.plot_dense.detection_gallery` draws them.

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
    validate.integer("thumbnail_size", thumbnail_size, min=8)
    validate.optional(validate.integer, "max_images", max_images, min=0)
    overlay = _overlay(masks, boxes, table)
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
            thumbs = _thumbnails(data, dataset, guard, thumbnail_size, np.sort(order), notes, overlay)
    elif "id" in data.columns:
        notes.append(
            "No thumbnails: pass `dataset=` (images by index) or `image_root=` (the folder whose files the ids name)."
        )

    payload = {
        "n": len(data),
        "columns": _columns(data),
        "classes": names,
        "score": by if by in data.columns else None,
        "wide": overlay is not None and overlay.masks is not None,
    }
    num_images = sum(t is not None for t in thumbs)
    legend = _OVERLAY_LEGEND[("masks" if overlay.masks is not None else "boxes") if overlay else ""]
    page = _page(title, settings, data, sections, notes, payload, thumbs if num_images else [], legend)
    result = Report(html=page, path=None, num_rows=len(data), num_images=num_images, notes=tuple(notes))
    if path is not None:
        return Report(page, result.save(path), len(data), num_images, tuple(notes))
    return result


_OVERLAY_LEGEND = {
    "": "",
    "masks": "Each thumbnail: the image, its target mask and the predicted mask (black: pixels that are no class).",
    "boxes": "Boxes: green the ground truth, red (dashed) the missed ones, orange the confident false positives.",
}


def _overlay(masks: Any, boxes: pd.DataFrame | None, table: pd.DataFrame) -> Overlay | None:
    """The masks or boxes to draw on the thumbnails, checked; ``None`` without either."""
    if masks is None and boxes is None:
        return None
    if masks is not None and boxes is not None:
        raise ValueError("Expected either `masks` (segmentation) or `boxes` (detection), but got both.")
    if masks is not None:
        if not callable(masks) and not hasattr(masks, "__getitem__"):
            raise TypeError(
                "Expected argument `masks` to be a callable or indexable giving (target, prediction) per index, but "
                f"got {type(masks).__name__}."
            )
        num_classes = table.attrs.get("hardmine", {}).get("num_classes")
        usable = isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0
        return Overlay(masks=masks, num_classes=num_classes if usable else None)
    if not isinstance(boxes, pd.DataFrame):
        raise TypeError(
            "Expected argument `boxes` to be the per-box DataFrame of hm.score_detection(..., return_boxes=True), "
            f"but got {type(boxes).__name__}."
        )
    needed = ("index", "kind", "x1", "y1", "x2", "y2")
    if missing := [c for c in needed if c not in boxes.columns]:
        raise ValueError(
            f"Expected argument `boxes` to have the columns {list(needed)} (hm.score_detection's per-box table), but "
            f"it lacks {missing}."
        )
    by_index: dict[int, list[tuple[str, Sequence[float]]]] = {}
    coords = boxes[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).tolist()
    for idx, kind, box in zip(boxes["index"].tolist(), boxes["kind"].astype(str).tolist(), coords, strict=True):
        if kind not in ("missed", "false_pos"):
            raise ValueError(f"Expected box kinds 'missed' or 'false_pos' in `boxes`, but got {kind!r}.")
        by_index.setdefault(int(idx), []).append((kind, box))
    return Overlay(boxes=by_index)


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
    legend: str = "",
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
<section id="hm-samples"><h2>Samples</h2>{f'<p class="legend">{esc(legend)}</p>' if legend and thumbs else ""}
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
