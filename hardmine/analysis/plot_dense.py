"""Plots of the hardest images of dense tasks: segmentation masks side by side, detection boxes coloured.

- :func:`segmentation_gallery`: one row per hard image: the image, its target mask and the model's predicted mask
  (ignored pixels in black), titled with the image's score.
- :func:`detection_gallery`: one panel per hard image with its ground-truth boxes (green), the missed ones (red,
  dashed) and the confident false positives (orange, with their scores), from the per-box table of
  :func:`hardmine.score_detection`.

Both return a matplotlib ``Figure`` (no pyplot state), as :mod:`hardmine.analysis.plot` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hardmine.analysis._draw import BOX_COLORS
from hardmine.analysis._figure import _figure_class, _short, _to_image
from hardmine.analysis.splitting import default_by
from hardmine.core import validate
from hardmine.core.columns import harder_when

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["detection_gallery", "hardest_rows", "segmentation_gallery"]


def hardest_rows(table: pd.DataFrame, k: int, by: str | None = None) -> pd.DataFrame:
    """The ``k`` hardest rows of ``table`` by ``by`` (default: the task's column), hardest first, ties by index.

    Example:
        >>> t = pd.DataFrame({"index": [0, 1, 2], "loss": [0.1, 0.9, 0.5]})
        >>> hardest_rows(t, 2, by="loss")["index"].tolist()
        [1, 2]
    """
    k = validate.integer("k", k, min=1)
    by = by or default_by(table)
    if by not in table.columns:
        raise ValueError(f"Expected a `{by}` column in `table`, but the columns are {list(table.columns)[:12]}.")
    ascending = harder_when(by) == "lower"
    return table.sort_values([by, "index"], ascending=[ascending, True], kind="stable").head(k)


def _sample_image(sample: Any) -> Any:
    return sample[0] if isinstance(sample, (tuple, list)) else sample


def segmentation_gallery(
    table: pd.DataFrame,
    dataset: Any,
    model: nn.Module,
    *,
    k: int = 4,
    by: str | None = None,
    ignore_index: int = 255,
    device: str | torch.device | None = None,
) -> Figure:
    """The ``k`` hardest images of a segmentation table: image, target mask and predicted mask side by side.

    The model runs once more on those ``k`` images (eval mode, no gradients, every training flag restored).

    Args:
        table: a table from ``hm.score(..., task="segmentation")`` (or a split of it).
        dataset: the scored dataset of ``(image (C, H, W), mask (H, W))`` pairs.
        model: the scored model (logits ``(1, C, H, W)``, or a dict with ``"out"``).
        k: how many images.
        by: the column that ranks them (default: the task's, ``label_prob``).
        ignore_index: mask value drawn in black (as are -100 pixels).
        device: where to run the model (default: its own device).

    Returns:
        A figure with ``k`` rows of three panels.
    """
    from hardmine.core.data import call_model
    from hardmine.scoring.engine import _model_for_scoring, _resolve_device

    rows = hardest_rows(table, k, by)
    by = by or default_by(table)
    num_classes = int(table.attrs.get("hardmine", {}).get("num_classes", 0)) or None
    fig = _figure_class()(figsize=(7.5, 2.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    run_device = _resolve_device(model, device)
    with _model_for_scoring(model, run_device), torch.inference_mode():
        for r, (_, row) in enumerate(rows.iterrows()):
            sample = dataset[int(row["index"])]
            image, mask = sample[0], torch.as_tensor(sample[1])
            logits = call_model(model, torch.as_tensor(image).unsqueeze(0).to(run_device))
            pred = logits.argmax(dim=1)[0].cpu().numpy()
            target = mask.cpu().numpy().astype(np.float64)
            ignored = (target == ignore_index) | (target == -100)
            target[ignored] = np.nan
            c = num_classes or int(logits.shape[1])
            shown: list[tuple[str, np.ndarray]] = [
                ("image", _to_image(image)),
                ("target", target),
                ("prediction", pred),
            ]
            for col, (title, arr) in enumerate(shown):
                ax = axes[r][col]
                if col == 0:
                    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
                    ax.set_title(f"#{int(row['index'])} {by}={_short(float(row[by]))}", fontsize=9)
                else:
                    cmap = _class_cmap()
                    ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, vmin=0, vmax=max(c - 1, 1), interpolation="nearest")
                    ax.set_facecolor("black")
                    ax.set_title(title, fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
    return fig


def _class_cmap() -> Any:
    from matplotlib import colormaps

    return colormaps["tab20"]


def detection_gallery(
    table: pd.DataFrame,
    boxes: pd.DataFrame,
    dataset: Any,
    *,
    k: int = 4,
    by: str | None = None,
    columns: int = 2,
) -> Figure:
    """The ``k`` hardest images of a detection table with their boxes drawn.

    Ground-truth boxes are green, the missed ones red and dashed, the confident false positives orange with their
    scores (the rows of ``boxes``).

    Args:
        table: the per-image table of :func:`hardmine.score_detection`.
        boxes: its per-box table (``return_boxes=True``).
        dataset: the scored dataset of ``(image, {"boxes", "labels"})`` pairs.
        k: how many images.
        by: the column that ranks them (default ``mistakenness``).
        columns: panels per row.

    Returns:
        A figure with ``k`` panels.
    """
    from matplotlib.patches import Rectangle

    rows = hardest_rows(table, k, by)
    by = by or default_by(table)
    n_rows = -(-len(rows) // columns)
    fig = _figure_class()(figsize=(3.2 * columns, 3.2 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, columns, squeeze=False).ravel()
    for ax in axes[len(rows) :]:
        ax.set_axis_off()
    for ax, (_, row) in zip(axes, rows.iterrows(), strict=False):
        idx = int(row["index"])
        image, target = dataset[idx][0], dataset[idx][1]
        ax.imshow(_to_image(_sample_image(image)))
        for x1, y1, x2, y2 in torch.as_tensor(target["boxes"]).reshape(-1, 4).tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=BOX_COLORS["gt"], lw=1.5))
        mine = boxes[boxes["index"] == idx]
        for _, b in mine.iterrows():
            missed = b["kind"] == "missed"
            color = BOX_COLORS["missed" if missed else "false_pos"]
            ax.add_patch(
                Rectangle(
                    (b["x1"], b["y1"]),
                    b["x2"] - b["x1"],
                    b["y2"] - b["y1"],
                    fill=False,
                    color=color,
                    lw=1.5,
                    ls="--" if missed else "-",
                )
            )
            if not missed:
                ax.text(b["x1"], b["y1"], f"{b['score']:.2f}", color=color, fontsize=7, va="bottom")
        ax.set_title(
            f"#{idx} {by}={_short(float(row[by]))}\nmissed {int(row['missed'])}, false pos {int(row['false_pos'])}",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
