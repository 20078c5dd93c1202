"""Drawing shared by the dense-task plots and the report: box colours, class colours, masks and boxes on PIL images.

One colour scheme for both :mod:`hardmine.analysis.plot_dense` (matplotlib) and :func:`hardmine.report` (PIL
thumbnails): ground-truth boxes green, missed boxes red, confident false positives orange; mask pixels coloured by
class with matplotlib's ``tab20`` colours (class ``c`` gets colour ``c % 20``), ignored pixels black. Needs PIL only
(no matplotlib).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["BOX_COLORS", "CLASS_COLORS", "draw_boxes", "mask_rgb", "sample_boxes"]

#: The colour of each kind of box: matched or not, the ground truth (``"gt"``), a ground-truth box no confident
#: prediction matched (``"missed"``) and a confident prediction that matches nothing (``"false_pos"``).
BOX_COLORS: dict[str, str] = {"gt": "limegreen", "missed": "red", "false_pos": "orange"}

#: matplotlib's ``tab20`` colours as RGB bytes: class ``c`` is drawn in ``CLASS_COLORS[c % 20]``.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (174, 199, 232),
    (255, 127, 14),
    (255, 187, 120),
    (44, 160, 44),
    (152, 223, 138),
    (214, 39, 40),
    (255, 152, 150),
    (148, 103, 189),
    (197, 176, 213),
    (140, 86, 75),
    (196, 156, 148),
    (227, 119, 194),
    (247, 182, 210),
    (127, 127, 127),
    (199, 199, 199),
    (188, 189, 34),
    (219, 219, 141),
    (23, 190, 207),
    (158, 218, 229),
)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().to("cpu").numpy()
    return np.asarray(value)


def mask_rgb(mask: Any, num_classes: int | None = None) -> np.ndarray:
    """A class-index mask ``(H, W)`` (or ``(1, H, W)``) as RGB bytes ``(H, W, 3)``, class ``c`` in colour ``c % 20``.

    Pixels that are not a class are black: negative values (-100), 255 (the usual ``ignore_index``), and values
    ``>= num_classes`` when it is given.

    Example:
        >>> mask_rgb(np.array([[0, 1], [255, -100]])).tolist()
        [[[31, 119, 180], [174, 199, 232]], [[0, 0, 0], [0, 0, 0]]]
    """
    m = _numpy(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"Expected a mask of shape (H, W), but got shape {m.shape}.")
    m = m.astype(np.int64)
    palette = np.asarray(CLASS_COLORS, dtype=np.uint8)
    out = palette[np.mod(m, len(CLASS_COLORS))]
    invalid = (m < 0) | (m == 255)
    if num_classes is not None and num_classes > 0:
        invalid |= m >= num_classes
    out[invalid] = 0
    return out


def sample_boxes(sample: Any) -> np.ndarray | None:
    """The ground-truth boxes ``(N, 4)`` of a detection sample ``(image, {"boxes": ...})``, or ``None`` without them.

    Example:
        >>> sample_boxes((None, {"boxes": [[0, 0, 2, 2]], "labels": [1]})).tolist()
        [[0.0, 0.0, 2.0, 2.0]]
    """
    if isinstance(sample, (tuple, list)) and len(sample) >= 2 and isinstance(sample[1], Mapping):
        boxes = sample[1].get("boxes")
        if boxes is not None:
            return _numpy(boxes).astype(np.float64).reshape(-1, 4)
    return None


def draw_boxes(img: Any, boxes: Iterable[tuple[str, Iterable[float]]], scale: float = 1.0, width: int = 1) -> Any:
    """Draw ``(kind, (x1, y1, x2, y2))`` boxes on a PIL image in place, in :data:`BOX_COLORS`; returns the image.

    Coordinates are in the original image's pixels and are multiplied by ``scale`` (the thumbnail's reduction).
    Missed boxes are drawn dashed, as in the plots.
    """
    from PIL import ImageDraw

    canvas = img if img.mode == "RGB" else img.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    for kind, box in boxes:
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        x1, x2 = sorted((min(max(x1, 0.0), w - 1.0), min(max(x2, 0.0), w - 1.0)))
        y1, y2 = sorted((min(max(y1, 0.0), h - 1.0), min(max(y2, 0.0), h - 1.0)))
        color = BOX_COLORS[kind]
        if kind == "missed":
            _dashed_rectangle(draw, (x1, y1, x2, y2), color, width)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
    return canvas


def _dashed_rectangle(draw: Any, box: tuple[float, float, float, float], color: str, width: int, dash: int = 3) -> None:
    x1, y1, x2, y2 = box
    for a, b, horizontal, at in ((x1, x2, True, y1), (x1, x2, True, y2), (y1, y2, False, x1), (y1, y2, False, x2)):
        starts = [*np.arange(a, b + 1, 2 * dash).tolist(), max(a, b - dash + 1)]  # dashes, and one ending at the corner
        for start in starts:
            stop = min(start + dash - 1, b)
            line = (start, at, stop, at) if horizontal else (at, start, at, stop)
            draw.line(line, fill=color, width=width)
