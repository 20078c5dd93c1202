"""matplotlib figures from hardmine's tables: score histograms, the precision/recall trade-off, confusion, galleries.

An optional extra: ``pip install 'hardmine[plot]'``. matplotlib is imported inside the functions, so importing this
module costs nothing and the rest of hardmine never needs it.

Every function takes the DataFrames hardmine returns, draws on the ``ax`` it is given (or on a new figure) and
returns the :class:`matplotlib.figure.Figure`. New figures are built with the object API (``Figure()``, not
``pyplot``), so nothing is left open in pyplot's global state and any backend works, Agg included. In a Jupyter
notebook (``%matplotlib inline``) a figure returned as a cell's value is displayed; in a script, save it with
``fig.savefig("hard.png")``.

- :func:`confidence_histogram`: the score distribution of each group, the threshold drawn.
- :func:`pr_curve`: precision, recall and F1 over decision thresholds, the best-F1 point marked.
- :func:`confusion`: the confusion matrix as a heat map with its counts.
- :func:`gallery`: the hardest samples as images, with label, prediction and score in each title.
- :func:`data_map`: training dynamics, confidence against variability, coloured by correctness.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hardmine.io import OnlyArg, select
from hardmine.metrics import _require, threshold_sweep
from hardmine.metrics import confusion as confusion_matrix
from hardmine.table import GROUPS, harder_when

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["GROUP_COLORS", "confidence_histogram", "confusion", "data_map", "gallery", "pr_curve"]

#: The colour of each group in every plot: hard samples warm, easy samples cool.
GROUP_COLORS: dict[str, str] = {
    "hard_positive": "#d62728",
    "easy_positive": "#2ca02c",
    "hard_negative": "#ff7f0e",
    "easy_negative": "#1f77b4",
}

# Known value ranges, so that histogram bins line up with round numbers.
_RANGES: dict[str, tuple[float, float]] = {
    "label_prob": (0.0, 1.0),
    "confidence": (0.0, 1.0),
    "correctness": (0.0, 1.0),
    "margin": (-1.0, 1.0),
}


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("hardmine.plot needs matplotlib: pip install 'hardmine[plot]'") from err
    return Figure


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` and its figure, or a new figure with one axes."""
    if ax is None:
        fig = _figure_class()(figsize=figsize, layout="constrained")
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
    """The distribution of a score in each group, one histogram per group on shared bins, the threshold drawn.

    Groups are ``hard_positive``, ``easy_positive``, ``hard_negative`` and ``easy_negative`` for a split table
    (each in its :data:`GROUP_COLORS` colour, empty groups left out), or all samples in one histogram for a score
    table that was not split.

    Args:
        table: a table from :func:`hardmine.split` (or :func:`hardmine.scoring.score`).
        by: the score column; defaults to the one the table was split by, else ``label_prob``.
        threshold: where to draw the threshold line; defaults to the table's split threshold (none is drawn for
            ``hard_fraction`` or per-class thresholds).
        bins: number of bins, shared by all groups (over ``[0, 1]`` for probabilities, ``[-1, 1]`` for margin,
            else the data's range).
        log: a logarithmic count axis, so that the few hard samples stay visible next to the easy majority.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure: one bar container of ``bins`` bars per group drawn, a dashed vertical line at the threshold.

    Raises:
        TypeError: when ``table`` is not a DataFrame.
        ValueError: when the ``by`` column is missing or ``bins`` is not a positive int.

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.3, 0.8, 0.6]})
        >>> from hardmine.splitting import split
        >>> fig = confidence_histogram(split(t, threshold=0.7), bins=10)
        >>> [len(c) for c in fig.axes[0].containers], fig.axes[0].lines[0].get_xdata()[0]
        ([10, 10, 10, 10], 0.7)
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
    edges = np.histogram_bin_edges(finite, bins=bins, range=(lo, hi if hi > lo else lo + 1.0)).tolist()

    fig, ax = _axes(ax, (6.4, 3.6))
    if "group" in table.columns:
        groups = table["group"].astype(str).to_numpy()
        parts = [(g, values[groups == g]) for g in GROUPS]
    else:
        parts = [("all samples", values)]
    for name, vals in parts:
        if len(vals) == 0:
            continue
        ax.hist(
            vals,
            bins=edges,
            alpha=0.55,
            log=log,
            label=f"{name} ({len(vals)})",
            color=GROUP_COLORS.get(name, "#7f7f7f"),
        )
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
    hard = settings.get("hard_when") or harder_when(by)
    ax.set_xlabel(f"{by} (hard when {'below' if hard == 'lower' else 'above'} the threshold)")
    ax.set_ylabel("samples (log scale)" if log else "samples")
    ax.set_title(f"{by} per group")
    ax.legend(fontsize="small")
    return fig


def pr_curve(
    scores: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    thresholds: Sequence[float] | np.ndarray | int | None = None,
    kind: Literal["threshold", "pr"] = "threshold",
    ax: Axes | None = None,
) -> Figure:
    """Precision and recall of the positive class over decision thresholds, the best-F1 point marked.

    Built from :func:`hardmine.metrics.threshold_sweep`: a sample is called positive when its probability of the
    positive class is at least the threshold. Raising the threshold raises precision and lowers recall; F1, their
    harmonic mean, peaks at a balance, which is marked with a point and labelled with its threshold.

    Args:
        scores: a score table (see :func:`hardmine.metrics.positive_prob` for the columns it needs), or a sweep
            already computed by :func:`hardmine.metrics.threshold_sweep`.
        positive: the positive class or classes (ignored for a sweep).
        thresholds: the thresholds to sweep, as in :func:`hardmine.metrics.threshold_sweep`.
        kind: ``"threshold"``: precision, recall and F1 (y) against the threshold (x), the best point at
            ``(best threshold, best F1)``; ``"pr"``: the precision-recall curve, precision (y) against recall (x),
            the best point at that threshold's ``(recall, precision)``; thresholds at which no sample is called
            positive (precision undefined) are left out of this curve.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure; the best-F1 point is the axes' line with the ``label`` ``"best F1"``.

    Raises:
        ValueError: for an unknown ``kind`` (and whatever :func:`hardmine.metrics.threshold_sweep` raises).

    Example:
        >>> s = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.6, 0.7, 0.9]})
        >>> fig = pr_curve(s, thresholds=[0.2, 0.5, 0.8])
        >>> best = [ln for ln in fig.axes[0].lines if ln.get_label() == "best F1"][0]
        >>> best.get_xydata().tolist()
        [[0.5, 1.0]]
    """
    kinds = ("threshold", "pr")
    if kind not in kinds:
        raise ValueError(f"Expected argument `kind` to be one of {kinds}, but got {kind!r}.")
    is_sweep = isinstance(scores, pd.DataFrame) and {"threshold", "precision", "recall", "f1"} <= set(scores.columns)
    sweep = scores if is_sweep else threshold_sweep(scores, positive=positive, thresholds=thresholds)
    best = int(np.argmax(sweep["f1"].to_numpy()))
    row = sweep.iloc[best]
    t = sweep["threshold"].to_numpy()

    fig, ax = _axes(ax, (5.6, 4.0))
    if kind == "threshold":
        ax.plot(t, sweep["precision"], color="#1f77b4", label="precision")
        ax.plot(t, sweep["recall"], color="#ff7f0e", label="recall")
        ax.plot(t, sweep["f1"], color="#2ca02c", linestyle="--", label="F1")
        point = (float(row["threshold"]), float(row["f1"]))
        ax.set_xlabel("decision threshold on the positive-class probability")
        ax.set_ylabel("precision / recall / F1")
    else:
        # Thresholds at which no sample is called positive have no precision (the sweep reports 0): left out.
        called = sweep[sweep["tp"] + sweep["fp"] > 0] if {"tp", "fp"} <= set(sweep.columns) else sweep
        ax.plot(called["recall"], called["precision"], color="#1f77b4", label="precision-recall")
        point = (float(row["recall"]), float(row["precision"]))
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    ax.plot([point[0]], [point[1]], marker="o", markersize=8, linestyle="none", color="#d62728", label="best F1")
    ax.annotate(
        f"best F1 {row['f1']:.3f}\nat threshold {row['threshold']:.2f}",
        point,
        xytext=(10, -34),
        textcoords="offset points",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#d62728", "alpha": 0.9},
    )
    positives = sweep.attrs.get("positive")
    ax.set_title("precision / recall trade-off" + (f" (positive class {positives})" if positives else ""))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def confusion(
    table: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    by_class: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """The confusion matrix as a heat map, ground truth in rows and prediction in columns, each cell's count written.

    Args:
        table: a score or split table (``label`` and ``pred`` columns).
        positive: the positive class or classes of the 2 x 2 matrix (see :func:`hardmine.metrics.confusion`).
        by_class: draw the ``C x C`` matrix over classes instead.
        ax: the axes to draw on; ``None`` makes a new figure.

    Returns:
        The figure: one image whose data is :func:`hardmine.metrics.confusion`'s matrix, one text per cell.

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 1, 0], "pred": [1, 1, 0, 1]})
        >>> fig = confusion(t)
        >>> fig.axes[0].images[0].get_array().tolist(), [x.get_text() for x in fig.axes[0].texts]
        ([[2, 1], [1, 0]], ['2', '1', '1', '0'])
    """
    mat = confusion_matrix(table, positive=positive, by_class=by_class)
    values = mat.to_numpy()
    size = max(3.2, 0.45 * values.shape[0] + 1.8)
    fig, ax = _axes(ax, (size + 0.8, size))
    image = ax.imshow(values, cmap="Blues", vmin=0)
    high = values.max() / 2 if values.size else 0
    for (i, j), count in np.ndenumerate(values):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize="small" if values.shape[0] > 5 else "medium",
            color="white" if count > high else "black",
        )
    ax.set_xticks(range(values.shape[1]), [str(c) for c in mat.columns])
    ax.set_yticks(range(values.shape[0]), [str(c) for c in mat.index])
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title("confusion by class" if by_class else "confusion of the positive class")
    fig.colorbar(image, ax=ax, shrink=0.8)
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


def gallery(
    table: pd.DataFrame,
    dataset: Any = None,
    *,
    group: OnlyArg = "hard_positive",
    n: int = 16,
    by: str | None = None,
    classes: Sequence[str] | None = None,
    ncols: int = 8,
    fig: Figure | SubFigure | None = None,
) -> Figure:
    r"""The hardest samples of a group as images, each titled with its index, label, prediction and score.

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
        group: which rows, as in :func:`hardmine.io.select`: a group name, ``"hard"``, ``"easy"``, a list of
            groups, or ``None`` for all rows.
        n: at most this many images.
        by: the score to rank and show; defaults to the one the table was split by, else ``label_prob``.
        classes: class names for the titles (``dataset.classes`` when the dataset has them), else class indices.
        ncols: images per row.
        fig: a figure (or sub-figure) to draw into, else a new one. A gallery needs a grid of axes, so it takes a
            figure where the other plots take an ``ax``.

    Returns:
        The figure, with one axes per image (one axes with a message when the group is empty).

    Raises:
        ValueError: for a missing column, an ``n`` or ``ncols`` below 1, or an unknown ``group``.

    Example:
        >>> import torch
        >>> from hardmine.splitting import split
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
    rows = select(table, group)
    direction = settings.get("hard_when") if settings.get("by") == by else None
    ascending = (direction or harder_when(by)) == "lower"
    rows = rows.sort_values([by, "index"], ascending=[ascending, True], kind="stable").head(n)
    names = list(classes) if classes is not None else getattr(dataset, "classes", None)

    own = fig is None
    if fig is None:
        k = max(len(rows), 1)
        cols = min(ncols, k)
        fig = _figure_class()(figsize=(1.7 * cols, 1.95 * math.ceil(k / cols) + 0.3), layout="constrained")
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

    ids = rows["id"].tolist() if dataset is None else None
    if ids is not None:
        missing = [i for i in ids if not os.path.isfile(str(i))]
        if missing and [str(i) for i in ids] == [str(i) for i in rows["index"].tolist()]:
            raise ValueError(
                "Expected the table's `id` column to hold image file paths (dataset=None opens them), but its ids "
                "are the sample indices (the dataset had no file paths): pass `dataset=` the dataset it was scored on."
            )
        if missing:
            raise FileNotFoundError(
                f"gallery(dataset=None) opens each row's `id` as an image file, but {len(missing)} of them are not "
                f"files, e.g. {str(missing[0])!r}: pass `dataset=` the dataset the table was scored on."
            )
    for k, (idx, label, pred, value) in enumerate(
        zip(rows["index"].tolist(), rows["label"].tolist(), rows["pred"].tolist(), rows[by].tolist(), strict=True)
    ):
        image = _to_image(ids[k] if ids is not None else dataset[idx])
        ax = fig.add_subplot(nrows, cols, k + 1)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"#{idx} label {name(label)} pred {name(pred)}\n{by} {_short(value)}",
            fontsize="small",
            color="#d62728" if label != pred else "black",
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

    Built from a training-dynamics table (:meth:`hardmine.dynamics.Dynamics.summary`): ``confidence`` is the mean
    probability of the label over the epochs (y), ``variability`` its standard deviation (x), ``correctness`` the
    fraction of epochs the model was right (the colour, red 0 to green 1). Easy-to-learn samples sit at the top left,
    hard-to-learn ones (often mislabelled) at the bottom left, ambiguous ones to the right. Samples never seen
    (NaN statistics) are left out.

    Args:
        dynamics_table: a table with ``confidence``, ``variability`` and ``correctness`` columns.
        ax: the axes to draw on; ``None`` makes a new figure.
        confidence_threshold: draw the region boundary at this confidence; defaults to the table's own (from
            :func:`hardmine.dynamics.dynamics_regions`), else none.
        variability_threshold: draw the region boundary at this variability; same default.

    Returns:
        The figure: one scatter collection whose offsets are ``(variability, confidence)``, a colour bar.

    Example:
        >>> t = pd.DataFrame({"confidence": [0.9, 0.5, 0.1], "variability": [0.05, 0.3, 0.02],
        ...                   "correctness": [1.0, 0.5, 0.0]})
        >>> fig = data_map(t)
        >>> fig.axes[0].collections[0].get_offsets().tolist()
        [[0.05, 0.9], [0.3, 0.5], [0.02, 0.1]]
    """
    _require(dynamics_table, ("confidence", "variability", "correctness"), "data_map")
    data = dynamics_table[["variability", "confidence", "correctness"]].to_numpy(dtype=np.float64)
    data = data[np.isfinite(data).all(axis=1)]
    settings = _settings(dynamics_table)
    conf_t = confidence_threshold if confidence_threshold is not None else settings.get("confidence_threshold")
    var_t = variability_threshold if variability_threshold is not None else settings.get("variability_threshold")

    fig, ax = _axes(ax, (5.6, 4.4))
    dots = ax.scatter(
        data[:, 0], data[:, 1], c=data[:, 2], cmap="RdYlGn", vmin=0.0, vmax=1.0, s=10, alpha=0.7, linewidths=0
    )
    if var_t is not None:
        ax.axvline(float(var_t), color="gray", linestyle=":", linewidth=1)
    if conf_t is not None:
        ax.axhline(float(conf_t), color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("variability (std of the label's probability over epochs)")
    ax.set_ylabel("confidence (mean probability of the label)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0.0)
    ax.set_title(f"data map ({len(data)} samples)")
    fig.colorbar(dots, ax=ax, label="correctness (fraction of epochs right)")
    return fig
