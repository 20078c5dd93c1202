"""The per-sample table's columns: one registry of what each column is, read by every part of hardmine.

hardmine's user-facing unit is a pandas DataFrame with one row per sample, in dataset index order. This module is
the one place that says what its columns are: each column's dtype, which direction means harder, its value range and
its default threshold. :func:`hardmine.split`, :func:`hardmine.weights`, :class:`hardmine.HardMiner`, the command
line, the plots, the reports and the table readers all read it, so they cannot disagree.

Example:
    >>> COLUMNS["label_prob"].harder_when, COLUMNS["label_prob"].range, COLUMNS["label_prob"].default_threshold
    ('lower', (0.0, 1.0), 0.5)
    >>> value_range("entropy", num_classes=2)
    (0.0, 0.6931471805599453)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


__all__ = [
    "COLUMNS",
    "DIFFICULTIES",
    "FLOAT_COLUMNS",
    "GROUPS",
    "HARDER_WHEN",
    "INT_COLUMNS",
    "MEASURES",
    "POLARITIES",
    "SCORE_COLUMNS",
    "SPLIT_COLUMNS",
    "Column",
    "default_threshold",
    "display_range",
    "harder_when",
    "prob_columns",
    "value_range",
]

Direction = Literal["lower", "higher"]
_INF = math.inf


@dataclass(frozen=True)
class Column:
    """What one column of the per-sample table is.

    Attributes:
        name: the column name.
        dtype: ``"int64"``, ``"float32"``, ``"str"`` or ``"category"``.
        harder_when: ``"lower"`` or ``"higher"`` for a score column (which direction means harder), ``None`` for a
            column that is not a score (``index``, ``label``...).
        range: the values the column can take, ``(low, high)`` (``high`` may be ``inf``), or ``None`` for any value.
            ``entropy``'s upper end depends on the class count: read it with :func:`value_range`.
        default_threshold: the threshold :func:`hardmine.split` uses for this column when none is given, or ``None``
            when the column has no natural one (pass ``threshold=`` or ``hard_fraction=``).
        description: one line for people (CLI help, docs).
    """

    name: str
    dtype: Literal["int64", "float32", "str", "category"]
    harder_when: Direction | None = None
    range: tuple[float, float] | None = None
    default_threshold: float | None = None
    description: str = ""


def _col(
    name: str,
    dtype: Literal["int64", "float32", "str", "category"],
    harder: Direction | None = None,
    lo_hi: tuple[float, float] | None = None,
    default: float | None = None,
    text: str = "",
) -> tuple[str, Column]:
    return name, Column(name, dtype, harder, lo_hi, default, text)


#: Every column hardmine writes, by name. Unknown columns (your own scores) are read as probability-like.
COLUMNS: dict[str, Column] = dict(
    [
        # identity and labels
        _col("index", "int64", text="position of the sample in the dataset"),
        _col("id", "str", text="the sample's id (its file path for image folders)"),
        _col("label", "int64", text="ground-truth class"),
        _col("pred", "int64", text="predicted class (argmax)"),
        # the measures of the scoring pass, in table order
        _col("confidence", "float32", "lower", (0.0, 1.0), 0.5, "probability of the predicted class"),
        _col("label_prob", "float32", "lower", (0.0, 1.0), 0.5, "probability of the ground-truth class"),
        _col("margin", "float32", "lower", (-1.0, 1.0), 0.0, "label probability minus the best other class's"),
        _col("entropy", "float32", "higher", (0.0, _INF), None, "entropy of the predicted distribution (nats)"),
        _col("loss", "float32", "higher", (0.0, _INF), None, "per-sample loss (cross-entropy by default)"),
        # training dynamics (hm.Dynamics) and label issues
        _col("mean_label_prob", "float32", "lower", (0.0, 1.0), 0.5, "mean label probability over epochs"),
        _col("aum", "float32", "lower", None, 0.0, "area under the margin (mean logit margin over epochs)"),
        _col("correctness", "float32", "lower", (0.0, 1.0), None, "share of epochs predicted right"),
        _col("variability", "float32", "higher", (0.0, _INF), None, "std of the label probability over epochs"),
        _col("forgetting", "int64", "higher", (0.0, _INF), None, "times learned then forgotten"),
        _col("epochs", "int64", text="epochs recorded"),
        _col("suggested_label", "int64", text="the class a label-issue check suggests"),
        _col("runner_up", "int64", text="the most probable class other than the label"),
        _col("fold", "int64", text="cross-validation fold that scored the sample"),
        # regression and multi-label
        _col("target", "float32", text="regression target"),
        _col("prediction", "float32", text="regression prediction"),
        _col("abs_error", "float32", "higher", (0.0, _INF), None, "absolute regression error"),
        _col("wrong", "int64", "higher", (0.0, _INF), None, "labels predicted wrong at 0.5 (multi-label)"),
        # segmentation and sequences
        _col("pixel_accuracy", "float32", "lower", (0.0, 1.0), None, "share of valid pixels predicted right"),
        _col("hard_pixel_fraction", "float32", "higher", (0.0, 1.0), None, "share of valid pixels that are hard"),
        _col("miou", "float32", "lower", (0.0, 1.0), None, "mean IoU over the classes present in the image"),
        _col("valid_pixels", "int64", text="pixels that are not ignore_index"),
        _col("perplexity", "float32", "higher", (1.0, _INF), None, "exp of the mean token loss"),
        _col("token_accuracy", "float32", "lower", (0.0, 1.0), None, "share of counted tokens predicted right"),
        _col("tokens", "int64", text="tokens counted"),
        # detection
        _col("det_recall", "float32", "lower", (0.0, 1.0), None, "ground-truth boxes found"),
        _col("det_precision", "float32", "lower", (0.0, 1.0), None, "predictions that match a box"),
        _col("missed", "int64", "higher", (0.0, _INF), None, "ground-truth boxes not found"),
        _col("false_pos", "int64", "higher", (0.0, _INF), None, "confident predictions that match nothing"),
        _col("mean_iou", "float32", "lower", (0.0, 1.0), None, "mean IoU of the matches"),
        _col("mistakenness", "float32", "higher", (0.0, 1.0), 0.5, "1 - IoU-weighted F1 of the image"),
        # what hm.split adds
        _col("polarity", "category", text="positive or negative, by the ground truth"),
        _col("difficulty", "category", text="hard or easy, by the threshold"),
        _col("group", "category", text="polarity and difficulty together"),
    ]
)

#: The measures the scoring pass computes, in table column order.
MEASURES: tuple[str, ...] = ("confidence", "label_prob", "margin", "entropy", "loss")

#: Which direction means *harder* for each measure (a view of :data:`COLUMNS`).
HARDER_WHEN: dict[str, Direction] = {m: COLUMNS[m].harder_when for m in MEASURES}  # type: ignore[misc]


def _is_prob(column: Any) -> bool:
    return isinstance(column, str) and column.startswith("prob_") and column[5:].isdigit()


def harder_when(column: str) -> Direction:
    """Which direction of ``column`` means harder: ``"lower"`` for probabilities and margins, ``"higher"`` for loss.

    Columns hardmine does not know (your own scores) are read as probability-like: lower is harder.

    Example:
        >>> harder_when("label_prob"), harder_when("loss"), harder_when("my_score")
        ('lower', 'higher', 'lower')
    """
    spec = COLUMNS.get(column)
    return spec.harder_when if spec is not None and spec.harder_when is not None else "lower"


def value_range(column: str, *, num_classes: int | None = None) -> tuple[float, float] | None:
    """The values ``column`` can take, ``(low, high)``, or ``None`` when hardmine does not bound it.

    ``prob_<c>`` columns are probabilities; ``entropy`` is at most ``log(num_classes)`` when the class count is known.

    Example:
        >>> value_range("margin"), value_range("prob_3"), value_range("my_score")
        ((-1.0, 1.0), (0.0, 1.0), None)
    """
    if _is_prob(column):
        return (0.0, 1.0)
    spec = COLUMNS.get(column)
    if spec is None or spec.range is None:
        return None
    if column == "entropy" and num_classes:
        return (0.0, math.log(num_classes))
    return spec.range


def display_range(column: str, values: np.ndarray) -> tuple[float, float]:
    """The axis range of a histogram of ``column``: its registry range, or the finite values' min and max.

    The registry range is used when both its ends are finite (round bins for probabilities and margins); else the
    finite ``values``' min and max; else ``(0, 1)``.

    Example:
        >>> import numpy as np
        >>> display_range("margin", np.array([0.2, 0.4])), display_range("loss", np.array([0.5, np.inf, 2.0]))
        ((-1.0, 1.0), (0.5, 2.0))
    """
    known = value_range(column)
    if known is not None and all(math.isfinite(v) for v in known):
        return known
    import numpy as np  # here, not at the top: the command line reads this module without numpy

    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)


def default_threshold(column: str) -> float | None:
    """The threshold :func:`hardmine.split` uses for ``column`` when none is given (``None``: it has none).

    Example:
        >>> default_threshold("label_prob"), default_threshold("loss")
        (0.5, None)
    """
    spec = COLUMNS.get(column)
    return None if spec is None else spec.default_threshold


#: Columns of every table that :func:`hardmine.score` returns, in order.
SCORE_COLUMNS: tuple[str, ...] = ("index", "id", "label", "pred", *MEASURES)
#: Columns that :func:`hardmine.split` adds.
SPLIT_COLUMNS: tuple[str, ...] = ("polarity", "difficulty", "group")
POLARITIES: tuple[str, ...] = ("positive", "negative")
DIFFICULTIES: tuple[str, ...] = ("hard", "easy")
GROUPS: tuple[str, ...] = ("hard_positive", "easy_positive", "hard_negative", "easy_negative")

#: Integer columns hardmine writes (int64).
INT_COLUMNS: tuple[str, ...] = tuple(name for name, c in COLUMNS.items() if c.dtype == "int64")
#: Float columns hardmine writes as float32 (the score measures, class probabilities, regression columns).
FLOAT_COLUMNS: tuple[str, ...] = tuple(name for name, c in COLUMNS.items() if c.dtype == "float32")

_CATEGORIES: dict[str, tuple[str, ...]] = {"polarity": POLARITIES, "difficulty": DIFFICULTIES, "group": GROUPS}


def prob_columns(table: pd.DataFrame) -> list[str]:
    """The ``prob_<class>`` columns of ``table`` (from ``hm.score(..., keep_probs=True)``), ordered by class."""
    cols = [c for c in table.columns if isinstance(c, str) and c.startswith("prob_") and c[5:].isdigit()]
    return sorted(cols, key=lambda c: int(c[5:]))
