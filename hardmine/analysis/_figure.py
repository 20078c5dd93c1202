"""The plumbing of hardmine's figures: the colour palette, the figure class that Jupyter displays, images for display.

Shared by :mod:`hardmine.analysis.plot` (its figures live in :mod:`hardmine.analysis.plot_scores` and
:mod:`hardmine.analysis.plot_samples`), :mod:`hardmine.analysis.plot_dense` and the interactive report. matplotlib is
imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DPI", "GROUP_COLORS", "OKABE_ITO", "REGION_COLORS"]

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
