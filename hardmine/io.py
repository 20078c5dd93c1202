"""CSV and Parquet export and import of hardmine tables, written atomically.

A write goes to a temporary file in the destination folder, is flushed to disk, and then replaces the destination in
one ``os.replace``: a reader sees either the old file or the complete new one, never half a table. Under
torch.distributed only rank 0 writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from hardmine._files import atomic_path
from hardmine.distributed import is_main_process
from hardmine.table import DIFFICULTIES, GROUPS, POLARITIES, SCORE_COLUMNS, SPLIT_COLUMNS, restore_dtypes

__all__ = ["read_csv", "read_parquet", "select", "to_csv", "to_parquet"]

PathLike = str | os.PathLike[str]
OnlyArg = str | Iterable[str] | None
#: Columns read as text, never as numbers or missing values: ids and class names (a folder named "007" stays "007").
_TEXT_COLUMNS: tuple[str, ...] = ("id", "label_name", "pred_name")


def select(table: pd.DataFrame, only: OnlyArg = None) -> pd.DataFrame:
    """The rows of a split table in the named difficulty or groups.

    Args:
        table: a table from :func:`hardmine.split`.
        only: ``None`` (all rows), ``"hard"``/``"easy"`` (by difficulty), ``"positive"``/``"negative"`` (by
            polarity), a group name (``"hard_positive"`` ...) or a list of group names.

    Example:
        >>> t = pd.DataFrame({"index": [0, 1], "difficulty": ["hard", "easy"],
        ...                   "group": ["hard_negative", "easy_negative"]})
        >>> select(t, "hard")["index"].tolist()
        [0]
    """
    if only is None:
        return table
    if isinstance(only, str):
        if only in DIFFICULTIES:
            return table[_column(table, "difficulty", only) == only]
        if only in POLARITIES:
            return table[_column(table, "polarity", only) == only]
        names = [only]
    else:
        names = list(only)
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise ValueError(
            f"Expected argument `only` to be 'hard', 'easy', 'positive', 'negative', a group name {list(GROUPS)} or a "
            f"list of group names, but got {only!r}."
        )
    return table[_column(table, "group", only).isin(names)]


def _column(table: pd.DataFrame, col: str, only: object) -> pd.Series:
    if col not in table.columns:
        raise ValueError(f"only={only!r} needs the `{col}` column of a split table: call hm.split(scores, ...) first.")
    return table[col]


def _write(table: pd.DataFrame, path: PathLike, suffix: str, writer: Callable[[Path], Any]) -> Path:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    dest = Path(path)
    if not is_main_process():
        return dest
    with atomic_path(dest, suffix=suffix) as tmp:
        writer(tmp)
    return dest


def to_csv(table: pd.DataFrame, path: PathLike, *, only: OnlyArg = None, chunksize: int | None = 100_000) -> Path:
    """Write a hardmine table to CSV atomically, optionally only some rows (the hard samples, say).

    Floats are written with enough digits to come back bit-identical; the file is plain CSV with a header row, for
    people, spreadsheets and other tools. Rows are written ``chunksize`` at a time, so tens of millions of rows
    stream without a second copy of the table in memory.

    Args:
        table: any hardmine table (scores, a split table, dynamics, label issues).
        path: the destination file; its folder must exist.
        only: which rows, as in :func:`select`: ``"hard"``, ``"easy"``, a group name or a list of them.
        chunksize: rows per write.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: when the destination folder does not exist.
        PermissionError: when the destination is not writable.

    Example:
        >>> import tempfile, os
        >>> t = pd.DataFrame({"index": [0, 1], "label": [1, 0], "difficulty": ["hard", "easy"]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = to_csv(t, os.path.join(d, "hard.csv"), only="hard")
        ...     print(open(os.path.join(d, "hard.csv")).read().strip())
        index,label,difficulty
        0,1,hard
    """
    rows = select(table, only)

    def write(tmp: Path) -> None:
        rows.to_csv(tmp, index=False, chunksize=chunksize)

    return _write(rows, path, ".csv.tmp", write)


def read_csv(path: PathLike) -> pd.DataFrame:
    """Read a table written by :func:`to_csv`, with its columns checked and hardmine's dtypes restored.

    ``index``, ``label`` and ``pred`` come back as int64, ``id`` as str, the measures and ``prob_<c>`` columns as
    float32, ``polarity``/``difficulty``/``group`` as categoricals with hardmine's category order; other columns as
    pandas reads them.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file is not a hardmine table (no ``index`` column, some score or split columns
            missing, or unknown group names), naming what is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such file: {str(p)!r}.")
    try:
        header = pd.read_csv(p, nrows=0).columns
        # Empty cells are missing values, except in `id`, where an empty string is a valid id.
        na_values = {c: [""] for c in header if c not in _TEXT_COLUMNS}
        text = {c: str for c in _TEXT_COLUMNS if c in header}
        table = pd.read_csv(p, dtype=text, keep_default_na=False, na_values=na_values)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{str(p)!r} is empty, not a hardmine table.") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(p)!r} is not a hardmine CSV table: {err}") from err
    return _check_table(table, str(p))


def _check_table(table: pd.DataFrame, where: str) -> pd.DataFrame:
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
    for col, allowed in (("polarity", POLARITIES), ("difficulty", DIFFICULTIES), ("group", GROUPS)):
        if col in cols:
            values = table[col].astype(str)
            bad = ~values.isin(allowed)
            if bad.any():
                rows = bad.to_numpy().nonzero()[0][:5].tolist()  # plain ints, not np.int64(3) in the message
                raise ValueError(
                    f"{where}: column `{col}` has values {values[bad].unique()[:5].tolist()} (rows "
                    f"{rows}) outside {list(allowed)}."
                )
    for col in ("index", "label", "pred"):
        if col in cols and len(table) and not pd.api.types.is_integer_dtype(table[col]):
            raise ValueError(
                f"{where}: column `{col}` must hold whole numbers, but it reads as {table[col].dtype} "
                "(empty or non-numeric cells?)."
            )
    return restore_dtypes(table)


def _pyarrow() -> Any:
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise ImportError("Parquet export needs pyarrow: pip install 'hardmine[parquet]'") from err


def to_parquet(table: pd.DataFrame, path: PathLike, *, only: OnlyArg = None) -> Path:
    """Write a hardmine table to Parquet atomically (needs pyarrow: ``pip install 'hardmine[parquet]'``).

    Parquet keeps every dtype, categoricals included, and is several times smaller and faster than CSV for millions
    of rows.
    """
    _pyarrow()
    rows = select(table, only)

    def write(tmp: Path) -> None:
        rows.to_parquet(tmp, index=False)

    return _write(rows, path, ".parquet.tmp", write)


def read_parquet(path: PathLike) -> pd.DataFrame:
    """Read a table written by :func:`to_parquet`, with the same checks as :func:`read_csv`."""
    _pyarrow()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such file: {str(p)!r}.")
    return _check_table(pd.read_parquet(p), str(p))
