"""The per-sample table: column names, dtypes and categories, shared by scoring, split, metrics and io.

hardmine's user-facing unit is a pandas DataFrame with one row per sample, in dataset index order. This module is
the one place that says what its columns are, so that every part builds, checks and restores them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from hardmine.measures import HARDER_WHEN, MEASURES

__all__ = [
    "DIFFICULTIES",
    "FLOAT_COLUMNS",
    "GROUPS",
    "INT_COLUMNS",
    "POLARITIES",
    "SCORE_COLUMNS",
    "SPLIT_COLUMNS",
    "assemble_table",
    "build_table",
    "harder_when",
    "prob_columns",
    "restore_dtypes",
]

#: Columns of every table that :func:`hardmine.score` returns, in order.
SCORE_COLUMNS: tuple[str, ...] = ("index", "id", "label", "pred", *MEASURES)
#: Columns that :func:`hardmine.split` adds.
SPLIT_COLUMNS: tuple[str, ...] = ("polarity", "difficulty", "group")
POLARITIES: tuple[str, ...] = ("positive", "negative")
DIFFICULTIES: tuple[str, ...] = ("hard", "easy")
GROUPS: tuple[str, ...] = ("hard_positive", "easy_positive", "hard_negative", "easy_negative")

#: Integer columns hardmine writes (int64).
INT_COLUMNS: tuple[str, ...] = (
    "index",
    "label",
    "pred",
    "suggested_label",
    "runner_up",
    "fold",
    "forgetting",
    "epochs",
    "wrong",
)
#: Float columns hardmine writes as float32 (the score measures, class probabilities, regression columns).
FLOAT_COLUMNS: tuple[str, ...] = (*MEASURES, "target", "prediction", "abs_error")

_CATEGORIES: dict[str, tuple[str, ...]] = {"polarity": POLARITIES, "difficulty": DIFFICULTIES, "group": GROUPS}

#: Direction of hardness for score columns beyond the measures (training dynamics and label-issue scores).
_EXTRA_HARDER_WHEN: dict[str, Literal["lower", "higher"]] = {
    "aum": "lower",
    "mean_label_prob": "lower",
    "correctness": "lower",
    "variability": "higher",
    "forgetting": "higher",
    "abs_error": "higher",  # regression
    "wrong": "higher",  # multi-label: labels predicted wrong at 0.5
}

# The dense tasks' columns (issue 17: hardmine.dense, hardmine.detection).
_EXTRA_HARDER_WHEN.update(
    {
        "pixel_accuracy": "lower",
        "hard_pixel_fraction": "higher",
        "miou": "lower",
        "perplexity": "higher",
        "token_accuracy": "lower",
        "det_recall": "lower",
        "det_precision": "lower",
        "missed": "higher",
        "false_pos": "higher",
        "mean_iou": "lower",
        "mistakenness": "higher",
    }
)


def harder_when(column: str) -> Literal["lower", "higher"]:
    """Which direction of ``column`` means harder: ``"lower"`` for probabilities and margins, ``"higher"`` for loss.

    Columns hardmine does not know (your own scores) are read as probability-like: lower is harder.

    Example:
        >>> harder_when("label_prob"), harder_when("loss"), harder_when("my_score")
        ('lower', 'higher', 'lower')
    """
    if column in HARDER_WHEN:
        return HARDER_WHEN[column]
    return _EXTRA_HARDER_WHEN.get(column, "lower")


def prob_columns(table: pd.DataFrame) -> list[str]:
    """The ``prob_<class>`` columns of ``table`` (from ``hm.score(..., keep_probs=True)``), ordered by class."""
    cols = [c for c in table.columns if isinstance(c, str) and c.startswith("prob_") and c[5:].isdigit()]
    return sorted(cols, key=lambda c: int(c[5:]))


def assemble_table(
    index: np.ndarray, ids: Sequence[Any] | np.ndarray | None, columns: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """The per-sample table of any task: ``index`` (int64), ``id`` (str), then ``columns`` in their order.

    Example:
        >>> assemble_table(np.arange(2), None, {"loss": np.array([0.5, 1.0], dtype=np.float32)}).values.tolist()
        [[0, '0', 0.5], [1, '1', 1.0]]
    """
    if ids is None:
        # str objects made straight from Python ints: about 1.5-2x faster than numpy's astype(str).astype(object),
        # which goes through a fixed-width unicode copy (80 bytes a row), at 10**7 rows.
        id_col = np.fromiter(map(str, index.tolist()), dtype=object, count=len(index))
    else:
        id_col = np.asarray([str(i) for i in ids], dtype=object)
    # An explicit object Series: pandas >= 3 would infer its `str` dtype from a bare array, and the table would not
    # compare equal to itself after a CSV round trip (restore_dtypes gives object, as dynamics and labels do).
    data: dict[str, Any] = {"index": index.astype(np.int64), "id": pd.Series(id_col, dtype=object, copy=False)}
    data.update(columns)
    return pd.DataFrame(data, copy=False)


def build_table(columns: Mapping[str, np.ndarray], ids: Sequence[Any] | np.ndarray | None) -> pd.DataFrame:
    """Build the score table from per-sample numpy arrays (dataset order), once, at the edge.

    Args:
        columns: ``index`` (int64), ``label``, ``pred`` (int64), the measures (float32) and optional ``probs``
            (float32, ``(N, C)``).
        ids: per-sample ids (length ``N``) or ``None`` for the index as a string.

    Returns:
        A DataFrame with :data:`SCORE_COLUMNS` (and ``prob_0 .. prob_{C-1}``), a ``RangeIndex``.
    """
    index = columns["index"]
    if ids is None:
        # str objects made straight from Python ints: about 1.5-2x faster than numpy's astype(str).astype(object),
        # which goes through a fixed-width unicode copy (80 bytes a row), at 10**7 rows.
        id_col = np.fromiter(map(str, index.tolist()), dtype=object, count=len(index))
    else:
        id_col = np.asarray([str(i) for i in ids], dtype=object)
    # An explicit object Series: pandas >= 3 would infer its `str` dtype from a bare array, and the table would not
    # compare equal to itself after a CSV round trip (restore_dtypes gives object, as dynamics and labels do).
    data: dict[str, Any] = {"index": index.astype(np.int64), "id": pd.Series(id_col, dtype=object, copy=False)}
    data["label"] = columns["label"].astype(np.int64)
    data["pred"] = columns["pred"].astype(np.int64)
    for name in MEASURES:
        data[name] = columns[name].astype(np.float32, copy=False)
    probs = columns.get("probs")
    if probs is not None:
        for c in range(probs.shape[1]):
            data[f"prob_{c}"] = probs[:, c].astype(np.float32, copy=False)
    return pd.DataFrame(data, copy=False)


def restore_dtypes(table: pd.DataFrame) -> pd.DataFrame:
    """Give hardmine's known columns their dtypes (after a CSV round trip, say); other columns are left alone."""
    for col in table.columns:
        if col in ("id", "label_name", "pred_name"):
            table[col] = pd.Series(table[col].astype(str).to_numpy(dtype=object), index=table.index, dtype=object)
        elif col in INT_COLUMNS or _is_label_block(col):
            table[col] = table[col].astype(np.int64)
        elif col in FLOAT_COLUMNS or col in prob_columns(table):
            table[col] = table[col].astype(np.float32)
        elif col in _CATEGORIES:
            table[col] = pd.Categorical(table[col], categories=list(_CATEGORIES[col]))
    return table


def _is_label_block(column: Any) -> bool:
    """``target_<c>``/``pred_<c>``: the 0/1 columns of a multi-label table."""
    return isinstance(column, str) and any(
        column.startswith(p) and column[len(p) :].isdigit() for p in ("target_", "pred_")
    )


def categorical(values: np.ndarray, column: str) -> pd.Categorical:
    """A categorical with hardmine's fixed category order for ``column`` (polarity, difficulty or group)."""
    return pd.Categorical.from_codes(values, categories=list(_CATEGORIES[column]))
