"""Figures of scores and decisions: the score histogram per group, precision/recall and ROC curves, confusion.

Part of :mod:`hardmine.analysis.plot` (use them as ``hm.plot.<name>``); see that module for what each figure needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hardmine.analysis._curves import average_precision, pr_points, roc_auc, roc_points
from hardmine.analysis._figure import GROUP_COLORS, OKABE_ITO, _axes, _settings
from hardmine.analysis.counts import _require, positive_prob, threshold_sweep
from hardmine.analysis.counts import confusion as confusion_matrix
from hardmine.analysis.reports import classification_report
from hardmine.analysis.splitting import positive_classes
from hardmine.core import validate
from hardmine.core.columns import GROUPS, display_range, harder_when

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MAX_CELL_TEXT_CLASSES",
    "MAX_CONFUSION_INCHES",
    "MAX_TICK_LABELS",
    "confusion",
    "label_prob_histogram",
    "pr_curve",
    "roc_curve",
]


def label_prob_histogram(
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
        >>> fig = label_prob_histogram(split(t, threshold=0.7), bins=10)
        >>> [int(p.get_data().values.sum()) for p in fig.axes[0].patches], fig.axes[0].lines[0].get_xdata()[0]
        ([1, 1, 1, 1], 0.7)
    """
    settings = _settings(table) if isinstance(table, pd.DataFrame) else {}
    by = by or settings.get("by") or "label_prob"
    _require(table, (by,), "label_prob_histogram")
    bins = validate.integer("bins", bins, min=1)
    log = validate.boolean("log", log)
    threshold = validate.optional(validate.number, "threshold", threshold)
    if threshold is None and settings.get("by", by) == by and isinstance(settings.get("threshold"), (int, float)):
        threshold = float(settings["threshold"])
    values = table[by].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = display_range(by, values)  # round bins over a bounded score's range
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
    validate.choice("kind", kind, ("threshold", "pr"))
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
    normalize = validate.boolean("normalize", normalize)
    by_class = validate.optional(validate.boolean, "by_class", by_class)
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
