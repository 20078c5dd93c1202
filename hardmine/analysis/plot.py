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

- :func:`label_prob_histogram`: a score column (a score or split table); the score distribution of each group as step
  histograms, the threshold drawn.
- :func:`pr_curve` and :func:`roc_curve`: ``label`` and the probability of the positive class (``label_prob`` for a
  binary task, ``prob_<c>`` columns from ``hm.score(..., keep_probs=True)`` otherwise); precision/recall/F1 over
  thresholds or the precision-recall curve with its average precision; the ROC curve with its AUC.
- :func:`confusion`: ``label`` and ``pred``; the confusion matrix, counts or row-normalised, readable at 50+ classes.
- :func:`gallery`: the images, from ``dataset=`` or from the ``id`` paths (under ``root=``).
- :func:`data_map`: training dynamics (:meth:`hardmine.Dynamics.summary`, or a score table joined with them by
  :func:`hardmine.add_dynamics`); mean label probability against variability with the three regions labelled.

The figures live in :mod:`hardmine.analysis.plot_scores` (histogram, curves, confusion) and
:mod:`hardmine.analysis.plot_samples` (gallery, data map), the plumbing in :mod:`hardmine.analysis._figure`; this
module is their one public face, ``hm.plot``. ``confidence_histogram`` is the old name of
:func:`label_prob_histogram` (it plots ``label_prob`` by default, not ``confidence``): it still works, with a
``DeprecationWarning``, for one release.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from hardmine.analysis._figure import DPI, GROUP_COLORS, OKABE_ITO, REGION_COLORS
from hardmine.analysis._figure import _figure_class as _figure_class  # re-exported: the interactive report uses them
from hardmine.analysis._figure import _short as _short
from hardmine.analysis._figure import _to_image as _to_image
from hardmine.analysis.plot_samples import data_map, gallery
from hardmine.analysis.plot_scores import (
    MAX_CELL_TEXT_CLASSES,
    MAX_CONFUSION_INCHES,
    MAX_TICK_LABELS,
    confusion,
    label_prob_histogram,
    pr_curve,
    roc_curve,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "GROUP_COLORS",
    "MAX_CELL_TEXT_CLASSES",
    "MAX_CONFUSION_INCHES",
    "MAX_TICK_LABELS",
    "OKABE_ITO",
    "REGION_COLORS",
    "confidence_histogram",
    "confusion",
    "data_map",
    "gallery",
    "label_prob_histogram",
    "pr_curve",
    "roc_curve",
]


def confidence_histogram(table: Any, **kwargs: Any) -> Figure:
    """Deprecated alias of :func:`label_prob_histogram` (the histogram plots ``label_prob`` by default).

    Warns with a ``DeprecationWarning``; it will be removed in the next release.
    """
    warnings.warn(
        "hm.plot.confidence_histogram is deprecated and will be removed in the next release: use "
        "hm.plot.label_prob_histogram (same arguments; it plots `label_prob` by default, not `confidence`)",
        DeprecationWarning,
        stacklevel=2,
    )
    return label_prob_histogram(table, **kwargs)
