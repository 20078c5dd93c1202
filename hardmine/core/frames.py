"""Building the per-sample table and restoring its dtypes: the DataFrames of the registry's columns.

:mod:`hardmine.core.columns` says what each column is and imports neither numpy nor pandas (the command line reads it
before anything heavy); this module builds and restores the DataFrames those facts describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hardmine.core.columns import _CATEGORIES, FLOAT_COLUMNS, INT_COLUMNS, MEASURES, prob_columns

__all__ = ["assemble_table", "build_table", "categorical", "restore_dtypes"]


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
