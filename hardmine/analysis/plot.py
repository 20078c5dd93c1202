"""matplotlib figures from hardmine's tables: score histograms, the precision/recall trade-off, confusion, galleries.

An optional extra: ``pip install 'hardmine[plot]'``. matplotlib is imported inside the functions, so importing this
module costs nothing and the rest of hardmine never needs it.

Every function takes the DataFrames hardmine returns, draws on the ``ax`` it is given (or on a new figure) and
returns the :class:`matplotlib.figure.Figure`. New figures are built with the object API (``Figure()``, not
``pyplot``), so nothing is left open in pyplot's global state and any backend works, Agg included. They display in
Jupyter as a cell's value with no ``%matplotlib inline`` (they have ``_repr_png_`` and ``_repr_html_``), and
``fig.savefig("hard.png")`` writes them at 150 dpi. Colours are the Okabe-Ito palette (:data:`OKABE_ITO`), readable
with the common colour-vision deficiencies.

What each needs:

- :func:`confidence_histogram`: a score column (a score or split table); the score distribution of each group as step
  histograms, the threshold drawn.
- :func:`pr_curve` and :func:`roc_curve`: ``label`` and the probability of the positive class (``label_prob`` for a
  binary task, ``prob_<c>`` columns from ``hm.score(..., keep_probs=True)`` otherwise); precision/recall/F1 over
  thresholds or the precision-recall curve with its average precision; the ROC curve with its AUC.
- :func:`confusion`: ``label`` and ``pred``; the confusion matrix, counts or row-normalised, readable at 50+ classes.
- :func:`gallery`: the images, from ``dataset=`` or from the ``id`` paths (under ``root=``).
- :func:`data_map`: training dynamics (:meth:`hardmine.Dynamics.summary`, or a score table joined with them by
  :func:`hardmine.add_dynamics`); confidence against variability with the three regions labelled.
"""

from __future__ import annotations

import base64
import io
import math
import os
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hardmine.analysis._curves import average_precision, pr_points, roc_auc, roc_points
from hardmine.analysis.io import OnlyArg, select
from hardmine.analysis.metrics import _require, classification_report, positive_prob, threshold_sweep
from hardmine.analysis.metrics import confusion as confusion_matrix
from hardmine.analysis.splitting import positive_classes
from hardmine.core.columns import GROUPS, harder_when

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = [
    "GROUP_COLORS",
    "OKABE_ITO",
    "REGION_COLORS",
    "roc_curve",
    "confidence_histogram",
    "confusion",
    "data_map",
    "gallery",
    "pr_curve",
]

#: The Okabe-Ito palette: eight colours that stay distinct under the common colour-vision deficiencies.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: The colour of each group in every plot and in the report: hard samples warm, easy samples blue (Okabe-Ito).
GROUP_COLORS: dict[str, str] = {
    "hard_positive": OKABE_ITO["vermillion"],
    "easy_positive": OKABE_ITO["blue"],
    "hard_negative": OKABE_ITO["orange"],
    "easy_negative": OKABE_ITO["sky_blue"],
    "hard": OKABE_ITO["vermillion"],  # a table split without a positive class: easy/hard only
    "easy": OKABE_ITO["blue"],
}

#: The colour of each data-map region (:func:`hardmine.dynamics_regions`), Okabe-Ito.
REGION_COLORS: dict[str, str] = {
    "easy-to-learn": OKABE_ITO["blue"],
    "ambiguous": OKABE_ITO["reddish_purple"],
    "hard-to-learn": OKABE_ITO["vermillion"],
}

# Known value ranges, so that histogram bins line up with round numbers.
_RANGES: dict[str, tuple[float, float]] = {
    "label_prob": (0.0, 1.0),
    "confidence": (0.0, 1.0),
    "correctness": (0.0, 1.0),
    "margin": (-1.0, 1.0),
}


#: The resolution of saved figures (``fig.savefig``) and of their PNG in Jupyter's high-resolution view.
DPI = 150
_FIGURE_CLASS: Any = None


def _figure_class() -> type[Figure]:
    """The figure class of every new plot: a matplotlib ``Figure`` that displays itself in Jupyter.

    A figure made with ``Figure()`` instead of pyplot shows as ``<Figure size ...>`` in a notebook unless
    ``%matplotlib inline`` is on; this subclass gives it ``_repr_png_`` (a PNG at 100 dpi) and ``_repr_html_`` (a
    150-dpi PNG drawn at the 100-dpi size, sharp on high-resolution screens).
    """
    global _FIGURE_CLASS
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("hardmine.analysis.plot needs matplotlib: pip install 'hardmine[plot]'") from err
    if _FIGURE_CLASS is None:

        class PlotFigure(Figure):
            """A matplotlib Figure that Jupyter displays without ``%matplotlib inline``."""

            def _png(self, dpi: float) -> bytes:
                buf = io.BytesIO()
                self.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
                return buf.getvalue()

            def _repr_png_(self) -> bytes:
                return self._png(100)

            def _repr_html_(self) -> str:
                width = int(round(self.get_figwidth() * 100))
                data = base64.b64encode(self._png(DPI)).decode("ascii")
                return f'<img src="data:image/png;base64,{data}" width="{width}" alt="hardmine plot">'

        _FIGURE_CLASS = PlotFigure
    return _FIGURE_CLASS


def _new_figure(figsize: tuple[float, float]) -> Figure:
    return _figure_class()(figsize=figsize, dpi=DPI, layout="constrained")


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure with one axes."""
    if ax is None:
        fig = _new_figure(figsize)
        return fig, fig.add_subplot()
    _figure_class()
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"Expected argument `ax` to be a matplotlib Axes or None, but got {type(ax).__name__}.")
    return ax.figure.figure, ax  # the root figure, also when ``ax`` sits in a sub-figure


def _settings(table: pd.DataFrame) -> dict[str, Any]:
    return dict(table.attrs.get("hardmine", {}))


def confidence_histogram(
    table: pd.DataFrame,
    *,
    by: str | None = None,
    threshold: float | None = None,
    bins: int = 25,
    log: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """The distribution of a score in each group, one step histogram per group on shared bins, the threshold drawn.

    Needs a score column (``by``). Groups are ``hard_positive``, ``easy_positive``, ``hard_negative`` and
    ``easy_negative`` for a split table (each in its :data:`GROUP_COLORS` colour, empty groups left out), ``hard``
    and ``easy`` for a table split without a positive class (multi-class, unlabeled, regression), or all samples in
    one histogram for a score table that was not split. Each group is drawn as an outline (a step histogram), so
    groups never blend into colours that are not in the legend and a group of one sample stays visible.

    Args:
        table: a table from :func:`hardmine.split` (or :func:`hardmine.score`).
        by: the score column; defaults to the one the table was split by, else ``label_prob``.
        threshold: where to draw the threshold line; defaults to the table's split threshold (none is drawn for
            ``hard_fraction`` or per-class thresholds).
        bins: number of bins, shared by all groups (over ``[0, 1]`` for probabilities, ``[-1, 1]`` for margin,
            else the data's range).
        log: a logarithmic count axis, so that the few hard samples stay visible next to the easy majority.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure: one step patch per group drawn (``ax.patches``; ``patch.get_data()`` holds its ``bins``
        counts and the bin edges), a dashed vertical line at the threshold.

    Raises:
        TypeError: when ``table`` is not a DataFrame.
        ValueError: when the ``by`` column is missing or ``bins`` is not a positive int.

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.3, 0.8, 0.6]})
        >>> from hardmine.analysis.splitting import split
        >>> fig = confidence_histogram(split(t, threshold=0.7), bins=10)
        >>> [int(p.get_data().values.sum()) for p in fig.axes[0].patches], fig.axes[0].lines[0].get_xdata()[0]
        ([1, 1, 1, 1], 0.7)
    """
    settings = _settings(table) if isinstance(table, pd.DataFrame) else {}
    by = by or settings.get("by") or "label_prob"
    _require(table, (by,), "confidence_histogram")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"Expected argument `bins` to be an int >= 1, but got {bins!r}.")
    if threshold is None and settings.get("by", by) == by and isinstance(settings.get("threshold"), (int, float)):
        threshold = float(settings["threshold"])
    values = table[by].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if by in _RANGES or by.startswith("prob_"):
        lo, hi = _RANGES.get(by, (0.0, 1.0))
    else:
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    edges = np.histogram_bin_edges(finite, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))

    fig, ax = _axes(ax, (6.4, 3.6))
    if "group" in table.columns:
        groups = table["group"].astype(str).to_numpy()
        parts = [(g, values[groups == g]) for g in GROUPS]
    elif "difficulty" in table.columns:  # split without a positive class: easy/hard only
        difficulty = table["difficulty"].astype(str).to_numpy()
        parts = [(d, values[difficulty == d]) for d in ("hard", "easy")]
    else:
        parts = [("all samples", values)]
    top = 1
    for name, vals in parts:
        if len(vals) == 0:
            continue
        counts, _ = np.histogram(vals[np.isfinite(vals)], bins=edges)
        top = max(top, int(counts.max()))
        ax.stairs(
            counts,
            edges,
            baseline=None,
            linewidth=1.8,
            label=f"{name} ({len(vals)})",
            color=GROUP_COLORS.get(name, OKABE_ITO["black"]),
        )
    if log:
        ax.set_yscale("log")
        ax.set_ylim(0.7, top * 1.6)
    else:
        ax.set_ylim(0, top * 1.08)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
    hard = settings.get("hard_when") or harder_when(by)
    ax.set_xlabel(f"{by} (hard when {'below' if hard == 'lower' else 'above'} the threshold)")
    ax.set_ylabel("samples (log scale)" if log else "samples")
    ax.set_title(f"{by} per group")
    ax.legend(fontsize="small")
    return fig


def _positive_scores(scores: pd.DataFrame, positive: int | Iterable[int] | None, what: str) -> tuple[Any, Any, Any]:
    """``(is_positive, probability, classes)`` for the curves, or an error that says how to get the probabilities."""
    _require(scores, ("label",), what)
    try:
        classes = positive_classes(scores, positive, required=True)
        prob = positive_prob(scores, positive=classes)
    except ValueError as err:
        raise ValueError(f"{what} needs the probability of the positive class: {err}") from err
    return np.isin(scores["label"].to_numpy(), classes), prob, classes


def _inside_annotation(ax: Axes, text: str, point: tuple[float, float], color: str) -> None:
    """A note on ``point`` whose box stays inside the axes: right of the middle, in the half away from the point.

    The legends of the curves sit in the lower left, so the note keeps to the right of it.
    """
    where = (0.55, 0.3) if point[1] >= 0.5 else (0.55, 0.7)
    ax.annotate(
        text,
        point,
        xytext=where,
        textcoords="axes fraction",
        ha="left",
        va="bottom" if where[1] < 0.5 else "top",
        fontsize="small",
        annotation_clip=False,
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": color},
        arrowprops={"arrowstyle": "-", "color": color, "linewidth": 0.8},
    )


def pr_curve(
    scores: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    thresholds: Sequence[float] | np.ndarray | int | None = None,
    kind: Literal["threshold", "pr"] = "threshold",
    ax: Axes | None = None,
) -> Figure:
    """Precision and recall of the positive class over decision thresholds, the best-F1 point marked.

    Needs ``label`` and the probability of the positive class: ``label_prob`` for a binary task, the ``prob_<c>``
    columns of ``hm.score(model, loader, keep_probs=True)`` for a multi-class one (see
    :func:`hardmine.positive_prob`); the error says so when they are missing. A sample is called positive
    when its probability of the positive class is at least the threshold. Raising the threshold raises precision and
    lowers recall; F1, their harmonic mean, peaks at a balance, which is marked with a point and annotated (inside
    the axes) with its threshold. Thresholds at which no sample is called positive have no precision and draw none.

    Args:
        scores: a score table, or a sweep already computed by :func:`hardmine.threshold_sweep`.
        positive: the positive class or classes (ignored for a sweep).
        thresholds: the thresholds of the sweep (the ``"threshold"`` curves and the best-F1 point), as in
            :func:`hardmine.threshold_sweep`.
        kind: ``"threshold"``: precision, recall and F1 (y) against the threshold (x), the best point at
            ``(best threshold, best F1)``; ``"pr"``: the precision-recall curve, precision (y) against recall (x),
            exactly ``sklearn.metrics.precision_recall_curve``'s points (for a sweep: the sweep's rows), its
            average precision in the legend, the best point at that threshold's ``(recall, precision)``.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure; the best-F1 point is the axes' line with the ``label`` ``"best F1"``; with ``kind="pr"`` the
        curve is the line whose label starts with ``"precision-recall"`` (``"precision-recall (AP 0.xxx)"``).

    Raises:
        ValueError: for an unknown ``kind``, a table without the positive-class probability (and whatever
            :func:`hardmine.threshold_sweep` raises).

    Example:
        >>> s = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.6, 0.7, 0.9]})
        >>> fig = pr_curve(s, thresholds=[0.2, 0.5, 0.8])
        >>> best = [ln for ln in fig.axes[0].lines if ln.get_label() == "best F1"][0]
        >>> best.get_xydata().tolist()
        [[0.5, 1.0]]
        >>> [ln.get_label() for ln in pr_curve(s, kind="pr").axes[0].lines][0]
        'precision-recall (AP 1.000)'
    """
    kinds = ("threshold", "pr")
    if kind not in kinds:
        raise ValueError(f"Expected argument `kind` to be one of {kinds}, but got {kind!r}.")
    is_sweep = isinstance(scores, pd.DataFrame) and {"threshold", "precision", "recall", "f1"} <= set(scores.columns)
    if not is_sweep:
        _positive_scores(scores, positive, "pr_curve")
    sweep = scores if is_sweep else threshold_sweep(scores, positive=positive, thresholds=thresholds)
    best = int(np.argmax(sweep["f1"].to_numpy()))
    row = sweep.iloc[best]
    t = sweep["threshold"].to_numpy()
    called = (sweep["tp"] + sweep["fp"] > 0).to_numpy() if {"tp", "fp"} <= set(sweep.columns) else np.ones(len(t), bool)

    fig, ax = _axes(ax, (5.6, 4.0))
    if kind == "threshold":
        precision = np.where(called, sweep["precision"].to_numpy(dtype=np.float64), np.nan)
        ax.plot(t, precision, color=OKABE_ITO["blue"], label="precision")
        ax.plot(t, sweep["recall"], color=OKABE_ITO["orange"], label="recall")
        ax.plot(t, sweep["f1"], color=OKABE_ITO["bluish_green"], linestyle="--", label="F1")
        point = (float(row["threshold"]), float(row["f1"]))
        ax.set_xlabel("decision threshold on the positive-class probability")
        ax.set_ylabel("precision / recall / F1")
    else:
        if is_sweep:
            rows = sweep[called]
            ax.plot(rows["recall"], rows["precision"], color=OKABE_ITO["blue"], label="precision-recall")
        else:
            actual, prob, _ = _positive_scores(scores, positive, "pr_curve")
            precision, recall, _ = pr_points(actual, prob)
            label = f"precision-recall (AP {average_precision(actual, prob):.3f})"
            ax.plot(recall, precision, color=OKABE_ITO["blue"], drawstyle="steps-post", label=label)
            ax.axhline(float(actual.mean()), color="#999999", linestyle=":", linewidth=1, label="chance")
        point = (float(row["recall"]), float(row["precision"]))
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    color = OKABE_ITO["vermillion"]
    ax.plot([point[0]], [point[1]], marker="o", markersize=8, linestyle="none", color=color, label="best F1")
    _inside_annotation(ax, f"best F1 {row['f1']:.3f}\nat threshold {row['threshold']:.2f}", point, color)
    positives = sweep.attrs.get("positive")
    ax.set_title("precision / recall trade-off" + (f" (positive class {positives})" if positives else ""))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def roc_curve(
    scores: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The ROC curve of the positive class, its AUC in the legend, the chance diagonal dashed.

    Needs ``label`` and the probability of the positive class, as :func:`pr_curve` (``label_prob`` for a binary
    task, ``hm.score(..., keep_probs=True)`` for a multi-class one), and both positive and negative samples.

    Args:
        scores: a score table.
        positive: the positive class or classes; defaults to the table's split settings, or 1 for binary labels.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure; the curve is the first line, its points exactly
        ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``'s, labelled ``"ROC (AUC 0.xxx)"``.

    Raises:
        ValueError: for a table without the positive-class probability, or with only one class present.

    Example:
        >>> s = pd.DataFrame({"label": [0, 0, 1, 1], "label_prob": [0.9, 0.6, 0.35, 0.8]})
        >>> line = roc_curve(s).axes[0].lines[0]
        >>> line.get_label(), line.get_xdata().tolist()
        ('ROC (AUC 0.750)', [0.0, 0.0, 0.5, 0.5, 1.0])
    """
    actual, prob, classes = _positive_scores(scores, positive, "roc_curve")
    fpr, tpr, _ = roc_points(actual, prob)
    fig, ax = _axes(ax, (4.6, 4.2))
    ax.plot(fpr, tpr, color=OKABE_ITO["blue"], label=f"ROC (AUC {roc_auc(actual, prob):.3f})")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title(f"ROC (positive class {classes})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.legend(fontsize="small", loc="lower right")
    return fig


#: Cell values are written into the confusion matrix up to this many classes; tick labels are thinned beyond
#: :data:`MAX_TICK_LABELS`, and the figure never grows past :data:`MAX_CONFUSION_INCHES` on a side.
MAX_CELL_TEXT_CLASSES = 20
MAX_TICK_LABELS = 40
MAX_CONFUSION_INCHES = 10.0


def confusion(
    table: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    by_class: bool | None = None,
    normalize: bool = False,
    classes: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The confusion matrix as a heat map, ground truth in rows and prediction in columns.

    Needs ``label`` and ``pred``. Readable at any number of classes: the figure grows with the classes up to
    :data:`MAX_CONFUSION_INCHES` on a side, each cell's value is written only up to
    :data:`MAX_CELL_TEXT_CLASSES` classes, and tick labels are thinned to at most :data:`MAX_TICK_LABELS` per axis.
    With ``normalize=True`` each row is divided by its count (the recall of each class on the diagonal), so the
    confusions of small classes stand out as much as those of big ones; over classes (``by_class``) the colour scale
    is a square root, so that the few off-diagonal confusions show beside the full diagonal.

    Args:
        table: a score or split table (``label`` and ``pred`` columns).
        positive: the positive class or classes of the 2 x 2 matrix (see :func:`hardmine.confusion`).
        by_class: draw the ``C x C`` matrix over classes instead; ``None`` (default) draws it for a table without a
            positive class (multi-class without ``positive``), the 2 x 2 matrix otherwise.
        normalize: divide each row by its sum (rows of no samples stay 0).
        classes: class names for the ticks of the ``by_class`` matrix, ``classes[c]`` naming class ``c``; defaults to
            the names :func:`hardmine.summary` uses (recorded at scoring, e.g. an ImageFolder's ``classes``).
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure: one image whose data is :func:`hardmine.confusion`'s matrix (row-normalised with
        ``normalize``), one text per cell up to :data:`MAX_CELL_TEXT_CLASSES` classes, a colour bar.

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 1, 0], "pred": [1, 1, 0, 1]})
        >>> fig = confusion(t)
        >>> fig.axes[0].images[0].get_array().tolist(), [x.get_text() for x in fig.axes[0].texts]
        ([[2, 1], [1, 0]], ['2', '1', '1', '0'])
        >>> confusion(t, normalize=True).axes[0].images[0].get_array().round(3).tolist()
        [[0.667, 0.333], [1.0, 0.0]]
    """
    if by_class is None:
        by_class = positive is None and positive_classes(table) is None
    if by_class:
        mat = classification_report(table, classes=classes)[1]  # rows and columns named by class
    else:
        mat = confusion_matrix(table, positive=positive)
    counts = mat.to_numpy()
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    k = values.shape[0]
    size = min(MAX_CONFUSION_INCHES, max(3.2, 0.32 * k + 1.8))
    fig, ax = _axes(ax, (size + 0.9, size))
    top = 1.0 if normalize else max(float(values.max()), 1.0)
    # Over classes, a square-root colour scale: the few off-diagonal confusions show next to the full diagonal.
    from matplotlib.colors import Normalize, PowerNorm

    norm = PowerNorm(0.5, vmin=0.0, vmax=top) if by_class else Normalize(vmin=0.0, vmax=top)
    image = ax.imshow(values, cmap="Blues", norm=norm, interpolation="nearest")
    if k <= MAX_CELL_TEXT_CLASSES:
        high = top / 4 if by_class else top / 2  # where the cell colour is dark enough for white text
        for (i, j), v in np.ndenumerate(values):
            ax.text(
                j,
                i,
                f"{v:.2f}" if normalize else str(v),
                ha="center",
                va="center",
                fontsize="x-small" if k > 8 else "medium",
                color="white" if v > high else "black",
            )

    step = max(1, math.ceil(k / MAX_TICK_LABELS))
    ticks = list(range(0, k, step))
    small = "x-small" if k > 12 else "medium"
    ax.set_xticks(ticks, [str(mat.columns[t]) for t in ticks], rotation=90 if by_class and k > 4 else 0, fontsize=small)
    ax.set_yticks(ticks, [str(mat.index[t]) for t in ticks], fontsize=small)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    what = "confusion by class" if by_class else "confusion of the positive class"
    ax.set_title(what + (" (each row divided by its count)" if normalize else ""))
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the row" if normalize else "samples")
    return fig


def _to_image(item: Any) -> np.ndarray:
    """An image as a numpy array matplotlib can show: ``(H, W)`` grey or ``(H, W, 3|4)`` colour, floats in [0, 1]."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    elif isinstance(item, dict):
        keys = [k for k in ("image", "img", "input", "pixel_values", "x") if k in item]
        if not keys:
            raise ValueError(f"Cannot find the image in a dict sample with keys {sorted(item)}.")
        item = item[keys[0]]
    if isinstance(item, (str, bytes)) or hasattr(item, "__fspath__"):
        from PIL import Image

        with Image.open(item) as img:
            item = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
    elif hasattr(item, "convert") and getattr(item, "mode", None) not in (None, "L", "RGB"):
        item = item.convert("RGB")  # a PIL image in palette, RGBA, 16-bit ... mode
    if hasattr(item, "detach"):  # a torch tensor, (C, H, W) or (H, W)
        t = item.detach().to("cpu")
        raw = (t.float() if t.is_floating_point() else t).numpy()  # bfloat16/half have no numpy dtype
        channels_first = raw.ndim == 3 and raw.shape[0] in (1, 3, 4)
    else:  # PIL image or numpy array, (H, W) or (H, W, C), or (C, H, W)
        raw = np.asarray(item)
        channels_first = raw.ndim == 3 and raw.shape[0] in (1, 3, 4) and raw.shape[-1] not in (1, 3, 4)
    if raw.ndim not in (2, 3):
        raise ValueError(f"Expected an image of shape (H, W), (C, H, W) or (H, W, C), but got shape {raw.shape}.")
    arr = raw.transpose(1, 2, 0) if channels_first else raw
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    arr = arr.astype(np.float64) / (255.0 if np.issubdtype(raw.dtype, np.integer) else 1.0)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if lo < 0.0 or hi > 1.0:  # normalised inputs: stretch to [0, 1] for display
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return arr


def _short(value: float) -> str:
    """A score for a title: two decimals, or two significant digits when that would read 0.00."""
    return f"{value:.2g}" if value != 0 and abs(value) < 0.005 else f"{value:.2f}"


def _image_path(name: Any, root: str | os.PathLike[str] | None) -> Path:
    """The image file an ``id`` names (under ``root`` when given), or an error that says how to show the images."""
    path = Path(root) / str(name) if root is not None else Path(str(name))
    if not path.is_file():
        where = f" under root={str(root)!r}" if root is not None else ""
        raise ValueError(
            f"gallery opens the `id` column as image files, but {str(name)!r} is not a file{where}. Pass "
            "`dataset=` (the dataset the table was scored on; its images are found by the `index` column) or "
            "`root=` (the folder the ids are relative to)."
        )
    return path


def gallery(
    table: pd.DataFrame,
    dataset: Any = None,
    *,
    group: OnlyArg = "hard_positive",
    n: int = 16,
    by: str | None = None,
    classes: Sequence[str] | None = None,
    ncols: int = 8,
    root: str | os.PathLike[str] | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure:
    r"""The hardest samples of a group as images, each titled with its index, label, prediction and score.

    Needs the images: ``dataset=`` (the dataset the table was scored on, indexed by the ``index`` column), or ids
    that are image file paths (an ``ImageFolder``'s, absolute or relative to ``root``). A table whose ids are not
    files (the demo's index ids) gets an error that says to pass ``dataset=`` or ``root=``.

    The rows of ``group`` are ranked hardest first by ``by`` (lowest ``label_prob`` first; highest first for
    ``loss`` and ``entropy``) and the first ``n`` are drawn, ``ncols`` to a row. Titles are red where the prediction
    differs from the label; scores show two decimals (two significant digits below 0.005).

    Images come from ``dataset[index]`` (the table's ``index`` column): a tensor ``(C, H, W)`` or ``(H, W)``, a PIL
    image or a numpy array, alone or first in a tuple, or under an ``image``-like key of a dict sample. With
    ``dataset=None`` each sample's ``id`` is opened as an image file, which shows the files of an ``ImageFolder``
    (whose ids are file paths) as they are on disk, before any transform. Normalised tensors are stretched to
    ``[0, 1]`` for display.

    Args:
        table: a split table (from :func:`hardmine.split`), or any table with ``index``, ``label``, ``pred``
            and the ``by`` column when ``group=None``.
        dataset: the dataset the table was scored on, or ``None`` to open the ``id`` paths.
        group: which rows, as in :func:`hardmine.select`: a group name, ``"hard"``, ``"easy"``, a list of
            groups, or ``None`` for all rows; the default ``"hard_positive"`` means ``"hard"`` for a table split
            without a positive class.
        n: at most this many images.
        by: the score to rank and show; defaults to the one the table was split by, else ``label_prob``.
        classes: class names for the titles (``dataset.classes`` when the dataset has them), else class indices.
        ncols: images per row.
        root: the folder the ``id`` paths are relative to (with ``dataset=None``).
        fig: a figure (or sub-figure) to draw into, else a new one. A gallery needs a grid of axes, so it takes a
            figure where the other plots take an ``ax``.

    Returns:
        The figure, with one axes per image (one axes with a message when the group is empty).

    Raises:
        ValueError: for a missing column, an ``n`` or ``ncols`` below 1, or an unknown ``group``.

    Example:
        >>> import torch
        >>> from hardmine.analysis.splitting import split
        >>> t = split(pd.DataFrame({"index": [0, 1, 2], "label": [1, 1, 0], "pred": [0, 1, 1],
        ...                         "label_prob": [0.2, 0.9, 0.1]}), threshold=0.5)
        >>> images = [(torch.rand(1, 8, 8), 0) for _ in range(3)]
        >>> fig = gallery(t, images, group="hard")
        >>> [ax.get_title() for ax in fig.axes]
        ['#2 label 0 pred 1\nlabel_prob 0.10', '#0 label 1 pred 0\nlabel_prob 0.20']
    """
    settings = _settings(table) if isinstance(table, pd.DataFrame) else {}
    by = by or settings.get("by") or "label_prob"
    _require(table, ("index", "label", "pred", by), "gallery")
    for arg, value in (("n", n), ("ncols", ncols)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected argument `{arg}` to be an int >= 1, but got {value!r}.")
    if dataset is None:
        _require(table, ("id",), "gallery with dataset=None (it opens the `id` paths)")
    if group == "hard_positive" and "group" not in table.columns and "difficulty" in table.columns:
        group = "hard"  # split without a positive class: the default shows the hard samples
    rows = select(table, group)
    direction = settings.get("hard_when") if settings.get("by") == by else None
    ascending = (direction or harder_when(by)) == "lower"
    rows = rows.sort_values([by, "index"], ascending=[ascending, True], kind="stable").head(n)
    names = list(classes) if classes is not None else getattr(dataset, "classes", None)

    own = fig is None
    if fig is None:
        k = max(len(rows), 1)
        cols = min(ncols, k)
        fig = _new_figure((1.7 * cols, 2.2 * math.ceil(k / cols) + 0.3))
    else:
        _figure_class()
    if len(rows) == 0:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no samples in {group!r}", ha="center", va="center", transform=ax.transAxes)
        return fig.figure
    cols = min(ncols, len(rows))
    nrows = math.ceil(len(rows) / cols)

    def name(c: int) -> str:
        return str(names[c]) if names is not None and 0 <= c < len(names) else str(c)

    ids = [_image_path(i, root) for i in rows["id"].tolist()] if dataset is None else None
    for k, (idx, label, pred, value) in enumerate(
        zip(rows["index"].tolist(), rows["label"].tolist(), rows["pred"].tolist(), rows[by].tolist(), strict=True)
    ):
        image = _to_image(ids[k] if ids is not None else dataset[idx])
        ax = fig.add_subplot(nrows, cols, k + 1)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        head = textwrap.wrap(f"#{idx} label {name(label)} pred {name(pred)}", width=22, max_lines=3, placeholder="…")
        ax.set_title(
            "\n".join([*head, f"{by} {_short(value)}"]),
            fontsize="small",
            color=OKABE_ITO["vermillion"] if label != pred else "black",
        )
    if own:
        fig.suptitle(f"{group if group is not None else 'all samples'}: {len(rows)} hardest by {by}", fontsize="medium")
    return fig.figure  # the root figure, also when drawn into a sub-figure


def data_map(
    dynamics_table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    confidence_threshold: float | None = None,
    variability_threshold: float | None = None,
) -> Figure:
    """The data map of dataset cartography: each sample's confidence against its variability, coloured by correctness.

    Needs training dynamics, recorded during training with :class:`hardmine.Dynamics` (a score table alone has
    none): pass ``dyn.summary()`` (``confidence``, ``variability``, ``correctness``), or a score table joined with
    them by :func:`hardmine.add_dynamics` (``mean_label_prob``, ``variability``, ``correctness``; its
    ``mean_label_prob`` is used, not the score table's ``confidence``, which is the final model's top probability).
    ``confidence`` is the mean probability of the label over the epochs (y), ``variability`` its standard deviation (x),
    ``correctness`` the fraction of epochs the model was right (the colour, a colour-blind-safe dark-blue-to-yellow
    scale). The three regions of :func:`hardmine.dynamics_regions` are drawn and labelled with their counts:
    easy-to-learn (top left), hard-to-learn (bottom left, often mislabelled) and ambiguous (right); the x axis runs
    to 0.5, the largest variability a probability can have, so the whole ambiguous region shows. Samples never seen
    (NaN statistics) are left out.

    Args:
        dynamics_table: a table with ``confidence`` (or ``mean_label_prob``), ``variability`` and ``correctness``.
        ax: the axes to draw on; ``None`` makes a new figure.
        confidence_threshold: the region boundary in confidence; defaults to the table's own (from
            :func:`hardmine.dynamics_regions`), else 0.5.
        variability_threshold: the region boundary in variability; same default, else 0.2.

    Returns:
        The figure: one scatter collection whose offsets are ``(variability, confidence)``, the two boundary lines,
        one text per region, a colour bar.

    Raises:
        ValueError: when the columns are missing (the message says how to record dynamics).

    Example:
        >>> t = pd.DataFrame({"confidence": [0.9, 0.5, 0.1], "variability": [0.05, 0.3, 0.02],
        ...                   "correctness": [1.0, 0.5, 0.0]})
        >>> fig = data_map(t)
        >>> fig.axes[0].collections[0].get_offsets().tolist()
        [[0.05, 0.9], [0.3, 0.5], [0.02, 0.1]]
        >>> [x.get_text() for x in fig.axes[0].texts]
        ['easy-to-learn (1)', 'hard-to-learn (1)', 'ambiguous (1)']
    """
    if isinstance(dynamics_table, pd.DataFrame) and "mean_label_prob" in dynamics_table.columns:
        # A score table from hm.add_dynamics: its `confidence` is the final model's top probability, the dynamics'
        # confidence is `mean_label_prob`.
        dynamics_table = dynamics_table.drop(columns="confidence", errors="ignore").rename(
            columns={"mean_label_prob": "confidence"}
        )
    needs = ("confidence", "variability", "correctness")
    if isinstance(dynamics_table, pd.DataFrame) and any(c not in dynamics_table.columns for c in needs):
        missing = [c for c in needs if c not in dynamics_table.columns]
        raise ValueError(
            f"data_map needs training dynamics, the columns {missing}, which the table lacks. Record them during "
            "training with `dyn = hm.Dynamics(num_samples=N)` (`dyn.update(idx, logits, y)` each batch, "
            "`dyn.end_epoch()` each epoch) and pass `dyn.summary()`, or join them to a score table with "
            "`hm.add_dynamics(scores, dyn)`."
        )
    _require(dynamics_table, needs, "data_map")
    data = dynamics_table[["variability", "confidence", "correctness"]].to_numpy(dtype=np.float64)
    data = data[np.isfinite(data).all(axis=1)]
    settings = _settings(dynamics_table)
    conf_t = confidence_threshold if confidence_threshold is not None else settings.get("confidence_threshold", 0.5)
    var_t = variability_threshold if variability_threshold is not None else settings.get("variability_threshold", 0.2)
    conf_t, var_t = float(conf_t), float(var_t)

    fig, ax = _axes(ax, (6.0, 4.6))
    dots = ax.scatter(
        data[:, 0], data[:, 1], c=data[:, 2], cmap="cividis", vmin=0.0, vmax=1.0, s=9, linewidths=0, zorder=2
    )
    ax.axvline(var_t, color="#555555", linestyle="--", linewidth=1, zorder=1)
    ax.plot([0.0, var_t], [conf_t, conf_t], color="#555555", linestyle="--", linewidth=1, zorder=1)
    var, conf = data[:, 0], data[:, 1]
    counts = {
        "easy-to-learn": int(((var < var_t) & (conf >= conf_t)).sum()),
        "hard-to-learn": int(((var < var_t) & (conf < conf_t)).sum()),
        "ambiguous": int((var >= var_t).sum()),
    }
    xmax = max(0.5, float(var.max()) * 1.02) if len(var) else 0.5
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    places = {
        "easy-to-learn": (var_t / 2, 1.0, "top"),
        "hard-to-learn": (var_t / 2, 0.0, "bottom"),
        "ambiguous": ((var_t + xmax) / 2, 0.5, "center"),
    }
    for name, (x, y, va) in places.items():
        ax.text(
            x,
            y,
            f"{name} ({counts[name]})",
            ha="center",
            va=va,
            fontsize="small",
            fontweight="bold",
            color=REGION_COLORS[name],
            bbox=box,
            zorder=3,
        )
    ax.set_xlabel("variability (std of the label's probability over epochs)")
    ax.set_ylabel("confidence (mean probability of the label)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(0.0, xmax)
    ax.set_title(f"data map ({len(data)} samples)")
    fig.colorbar(dots, ax=ax, label="correctness (fraction of epochs right)")
    return fig
