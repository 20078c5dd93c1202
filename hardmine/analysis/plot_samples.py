"""Figures of samples: the gallery of the hardest images of a group, and the data map of training dynamics.

Part of :mod:`hardmine.analysis.plot` (use them as ``hm.plot.<name>``); see that module for what each figure needs.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hardmine.analysis._figure import (
    OKABE_ITO,
    REGION_COLORS,
    _axes,
    _figure_class,
    _new_figure,
    _settings,
    _short,
    _to_image,
)
from hardmine.analysis._renames import mean_label_prob_column, renamed_threshold
from hardmine.analysis.counts import _require
from hardmine.analysis.splitting import OnlyArg, select
from hardmine.core import validate
from hardmine.core.columns import harder_when

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["data_map", "gallery"]


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
    n = validate.integer("n", n, min=1)
    ncols = validate.integer("ncols", ncols, min=1)
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
    mean_label_prob_threshold: float | None = None,
    variability_threshold: float | None = None,
    **renamed: Any,
) -> Figure:
    """The data map of dataset cartography: each sample's mean label probability against its variability.

    Needs training dynamics, recorded during training with :class:`hardmine.Dynamics` (a score table alone has
    none): pass ``dyn.summary()``, or a score table joined with them by :func:`hardmine.add_dynamics`; both have
    ``mean_label_prob``, ``variability`` and ``correctness`` (a score table's own ``confidence``, the final model's
    top probability, is not used). ``mean_label_prob`` is the mean probability of the label over the epochs (y, the
    paper's "confidence"), ``variability`` its standard deviation (x), ``correctness`` the fraction of epochs the
    model was right (the colour, a colour-blind-safe dark-blue-to-yellow scale). The three regions of
    :func:`hardmine.dynamics_regions` are drawn and labelled with their counts: easy-to-learn (top left),
    hard-to-learn (bottom left, often mislabelled) and ambiguous (right); the x axis runs to 0.5, the largest
    variability a probability can have, so the whole ambiguous region shows. Samples never seen (NaN statistics) are
    left out.

    Args:
        dynamics_table: a table with ``mean_label_prob``, ``variability`` and ``correctness`` (a summary written
            before 0.4.0, with ``confidence`` instead, is read with a ``DeprecationWarning``).
        ax: the axes to draw on; ``None`` makes a new figure.
        mean_label_prob_threshold: the region boundary in mean label probability; defaults to the table's own (from
            :func:`hardmine.dynamics_regions`), else 0.5.
        variability_threshold: the region boundary in variability; same default, else 0.2.
        **renamed: ``confidence_threshold=``, the deprecated name of ``mean_label_prob_threshold`` (warns).

    Returns:
        The figure: one scatter collection whose offsets are ``(variability, mean_label_prob)``, the two boundary
        lines, one text per region, a colour bar.

    Raises:
        ValueError: when the columns are missing (the message says how to record dynamics).

    Example:
        >>> t = pd.DataFrame({"mean_label_prob": [0.9, 0.5, 0.1], "variability": [0.05, 0.3, 0.02],
        ...                   "correctness": [1.0, 0.5, 0.0]})
        >>> fig = data_map(t)
        >>> fig.axes[0].collections[0].get_offsets().tolist()
        [[0.05, 0.9], [0.3, 0.5], [0.02, 0.1]]
        >>> [x.get_text() for x in fig.axes[0].texts]
        ['easy-to-learn (1)', 'hard-to-learn (1)', 'ambiguous (1)']
    """
    threshold = renamed_threshold("data_map", mean_label_prob_threshold, renamed)
    threshold = validate.optional(validate.fraction, "mean_label_prob_threshold", threshold)
    variability_threshold = validate.optional(
        validate.number, "variability_threshold", variability_threshold, min=0.0, max=0.5
    )
    column = "mean_label_prob"
    if isinstance(dynamics_table, pd.DataFrame):
        column = mean_label_prob_column(dynamics_table, "data_map") or column
    needs = (column, "variability", "correctness")
    if isinstance(dynamics_table, pd.DataFrame) and any(c not in dynamics_table.columns for c in needs):
        missing = [c for c in needs if c not in dynamics_table.columns]
        raise ValueError(
            f"data_map needs training dynamics, the columns {missing}, which the table lacks. Record them during "
            "training with `dyn = hm.Dynamics(num_samples=N)` (`dyn.update(idx, logits, y)` each batch, "
            "`dyn.end_epoch()` each epoch) and pass `dyn.summary()`, or join them to a score table with "
            "`hm.add_dynamics(scores, dyn)`."
        )
    _require(dynamics_table, needs, "data_map")
    data = dynamics_table[["variability", column, "correctness"]].to_numpy(dtype=np.float64)
    data = data[np.isfinite(data).all(axis=1)]
    settings = _settings(dynamics_table)
    own = settings.get("mean_label_prob_threshold", settings.get("confidence_threshold", 0.5))
    conf_t = float(threshold if threshold is not None else own)
    var_t = float(
        variability_threshold if variability_threshold is not None else settings.get("variability_threshold", 0.2)
    )

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
    ax.set_ylabel("mean_label_prob (mean probability of the label)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(0.0, xmax)
    ax.set_title(f"data map ({len(data)} samples)")
    fig.colorbar(dots, ax=ax, label="correctness (fraction of epochs right)")
    return fig
