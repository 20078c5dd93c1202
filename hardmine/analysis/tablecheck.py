"""The soundness check of a hardmine table read back from a file: columns, numbers, ranges, groups and settings.

:func:`hardmine.read_csv` and :func:`hardmine.read_parquet` (:mod:`hardmine.analysis.io`) run :func:`check_table` on
every table they read. The column facts (which columns are integers or floats, their ranges) are the column
registry's, :mod:`hardmine.core.columns`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hardmine.core.columns import (
    DIFFICULTIES,
    FLOAT_COLUMNS,
    GROUPS,
    INT_COLUMNS,
    POLARITIES,
    SCORE_COLUMNS,
    SPLIT_COLUMNS,
    value_range,
)
from hardmine.core.frames import restore_dtypes

__all__ = ["TEXT_COLUMNS", "check_table"]

#: Columns read as text, never as numbers or missing values: ids and class names (a folder named "007" stays "007").
TEXT_COLUMNS: tuple[str, ...] = ("id", "label_name", "pred_name")
#: float32 rounding slack for the range checks.
_TOLERANCE = 1e-6


def _where_row(i: int, lines: bool) -> str:
    return f"row {i} (line {i + 2} of the file)" if lines else f"row {i}"


def _first_rows(mask: np.ndarray, n: int = 5) -> list[int]:
    return np.flatnonzero(mask)[:n].tolist()  # plain ints, not np.int64(3), in messages


def _numeric_columns(cols: Sequence[Any]) -> tuple[list[str], list[str]]:
    ints = [c for c in cols if c in INT_COLUMNS]
    floats = [c for c in cols if c in FLOAT_COLUMNS or _is_prob(c)]
    return ints, floats


def _is_prob(col: object) -> bool:
    return isinstance(col, str) and col.startswith("prob_") and col[5:].isdigit()


def check_table(table: pd.DataFrame, where: str, *, lines: bool = False) -> pd.DataFrame:
    """Check that ``table`` is a sound hardmine table and give its columns hardmine's dtypes.

    Args:
        table: a table read back from a file.
        where: the file, for messages.
        lines: name file lines as well as rows in messages (CSV).

    Returns:
        ``table``, its known columns converted (see :func:`hardmine.core.frames.restore_dtypes`).

    Raises:
        ValueError: naming the row and column of the first problem found.

    Example:
        >>> check_table(pd.DataFrame({"index": [0, 0]}), "t.csv")
        Traceback (most recent call last):
        ...
        ValueError: t.csv: column `index` holds 0 more than once (rows [0, 1]); every sample must appear once.
    """
    cols = list(table.columns)
    if "index" not in cols:
        raise ValueError(f"{where} is not a hardmine table: it has no `index` column (its columns are {cols[:20]}).")
    # A score table: it has label_prob, or pred next to one of the measures (a dynamics summary has no pred).
    # (Tables of other tasks, from hm.score with loss_fn=/task=/targets=False, have no `label`: not checked here.)
    if "label" in cols and ("label_prob" in cols or ("pred" in cols and any(c in cols for c in SCORE_COLUMNS[4:]))):
        missing = [c for c in SCORE_COLUMNS if c not in cols]
        if missing:
            raise ValueError(f"{where} is not a complete hardmine score table: columns {missing} are missing.")
    present = [c for c in SPLIT_COLUMNS if c in cols]
    # All three, or `difficulty` alone (a table split without a positive class: easy/hard only).
    if present and len(present) != len(SPLIT_COLUMNS) and present != ["difficulty"]:
        missing = [c for c in SPLIT_COLUMNS if c not in cols]
        raise ValueError(f"{where} has split columns {present} but not {missing}.")
    ints, floats = _numeric_columns(cols)
    is_scores = "label_prob" in cols and "pred" in cols
    # Columns that hardmine always fills: a score table's measures and probabilities, ids, labels and the split.
    # (A dynamics summary leaves the scores of never-seen samples empty.)
    known = [
        c
        for c in cols
        if c in ints or c in SPLIT_COLUMNS or c in TEXT_COLUMNS or (is_scores and (c in SCORE_COLUMNS or _is_prob(c)))
    ]
    # Empty cells in hardmine's columns: a short row, or a value removed by hand.
    for col in known:
        empty = table[col].isna().to_numpy()
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise ValueError(
                f"{where}: {_where_row(i, lines)}, column `{col}` is empty ({int(empty.sum())} empty cell(s) in that "
                f"column, rows {_first_rows(empty)}): a short row, or a missing value."
            )
    for col in ints + floats:
        series = table[col]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            numbers = pd.to_numeric(series, errors="coerce")
            bad = numbers.isna().to_numpy()
            i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            raise ValueError(
                f"{where}: {_where_row(i, lines)}, column `{col}` holds {series.iloc[i]!r}, which is not a number."
            )
        values = series.to_numpy()
        if col in ints and not pd.api.types.is_integer_dtype(series):
            frac = values != np.round(values)
            i = int(np.flatnonzero(frac)[0]) if frac.any() else 0
            raise ValueError(
                f"{where}: {_where_row(i, lines)}, column `{col}` must hold whole numbers, but holds "
                f"{values[i].item()!r}."
            )
        lo, hi = value_range(col) or (-math.inf, math.inf)
        with np.errstate(invalid="ignore"):
            out = ~((values >= lo - _TOLERANCE) & (values <= hi + _TOLERANCE)) & ~pd.isna(values)
        if col in floats:
            _refuse_rows(out, where, lines, col, _holds(values, f"outside its range [{lo}, {hi}]"))
        if col == "index" and (values < 0).any():
            bad = values < 0
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: {_where_row(i, lines)}, column `{col}` holds {values[i].item()!r}; expected >= 0."
            )
    index = table["index"].to_numpy()
    dup = pd.Series(index).duplicated(keep=False).to_numpy()
    if dup.any():
        first = index[np.flatnonzero(dup)[0]].item()
        rows = _first_rows(index == first)
        raise ValueError(
            f"{where}: column `index` holds {first!r} more than once (rows {rows}); every sample must appear once."
        )
    for col, allowed in (("polarity", POLARITIES), ("difficulty", DIFFICULTIES), ("group", GROUPS)):
        if col in cols:
            values = table[col].astype(str)
            bad = ~values.isin(allowed)
            if bad.any():
                rows = _first_rows(bad.to_numpy())
                raise ValueError(
                    f"{where}: {_where_row(rows[0], lines)}, column `{col}` has values "
                    f"{values[bad].unique()[:5].tolist()} (rows {rows}) outside {list(allowed)}."
                )
    if present:
        _check_split_consistency(table, where, lines)
    return restore_dtypes(table)


def _holds(values: np.ndarray, rest: str) -> Callable[[int], str]:
    """What a row's cell holds, for :func:`_refuse_rows`: ``holds <value>, <rest>``."""
    return lambda i: f"holds {values[i].item()!r}, {rest}"


def _refuse_rows(bad: np.ndarray, where: str, lines: bool, column: str, says: Callable[[int], str]) -> None:
    """A ValueError naming the first ``bad`` row, what its ``column`` holds (``says(row)``) and how many are bad."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: {_where_row(i, lines)}, column `{column}` {says(i)} ({int(bad.sum())} such row(s): "
            f"{_first_rows(bad)})."
        )


def _check_groups(group: np.ndarray, difficulty: np.ndarray, polarity: np.ndarray, where: str, lines: bool) -> None:
    expected = np.char.add(np.char.add(difficulty.astype(str), "_"), polarity.astype(str))
    _refuse_rows(
        group != expected,
        where,
        lines,
        "group",
        lambda i: (
            f"holds {group[i]!r}, but `difficulty` {difficulty[i]!r} and `polarity` {polarity[i]!r} make it "
            f"{expected[i]!r}"
        ),
    )


def _check_split_consistency(table: pd.DataFrame, where: str, lines: bool) -> None:
    """``group`` is ``<difficulty>_<polarity>``; with the settings known, polarity and difficulty follow them.

    A table split without a positive class (multi-class, unlabeled, regression) has ``difficulty`` alone: only the
    threshold rule is checked.
    """
    difficulty = table["difficulty"].astype(str).to_numpy()
    polarity = table["polarity"].astype(str).to_numpy() if "polarity" in table.columns else None
    if polarity is not None and "group" in table.columns:
        _check_groups(table["group"].astype(str).to_numpy(), difficulty, polarity, where, lines)
    settings = table.attrs.get("hardmine", {})
    positive = settings.get("positive")
    if polarity is not None and positive is not None and "label" in table.columns:
        is_pos = np.isin(table["label"].to_numpy(), np.asarray(list(positive), dtype=np.int64))
        _refuse_rows(
            (polarity == "positive") != is_pos,
            where,
            lines,
            "polarity",
            lambda i: (
                f"holds {polarity[i]!r}, but its label {int(table['label'].iloc[i])} is "
                f"{'' if is_pos[i] else 'not '}one of the positive classes {positive} of the table's settings"
            ),
        )
    by, threshold, direction = settings.get("by"), settings.get("threshold"), settings.get("hard_when")
    if by not in table.columns or direction not in ("lower", "higher"):
        return
    values = pd.to_numeric(table[by], errors="coerce").to_numpy(dtype=np.float64)
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        cut: np.ndarray | float = float(threshold)
    elif threshold == "per_class" and isinstance(settings.get("per_class_thresholds"), Mapping):
        per_class = settings["per_class_thresholds"]
        labels = table["label"].to_numpy()
        if not all(int(c) in per_class for c in np.unique(labels)):
            return
        cut = np.array([per_class[int(c)] for c in labels], dtype=np.float64)
    else:
        return
    hard = values < cut if direction == "lower" else values > cut

    def says(i: int) -> str:
        t = cut if isinstance(cut, float) else float(cut[i])
        return (
            f"holds {difficulty[i]!r}, but its `{by}` {float(values[i])!r} with the table's threshold {t!r} (hard "
            f"when {direction}) makes it {'hard' if hard[i] else 'easy'}"
        )

    _refuse_rows((difficulty == "hard") != hard, where, lines, "difficulty", says)
