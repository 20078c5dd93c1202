"""A hardmine table as a Weights & Biases Table, to sort, filter and group the samples in the W&B UI.

Needs the ``wandb`` package (``pip install 'hardmine[wandb]'``). Building the Table needs no account and no network;
logging it goes wherever your ``wandb.init`` run goes (``WANDB_MODE=offline`` keeps it on disk for ``wandb sync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hardmine.core import validate
from hardmine.core.columns import prob_columns
from hardmine.integrations import require

__all__ = ["log_table", "to_wandb_table"]


def to_wandb_table(
    table: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    probs: bool = False,
    max_rows: int | None = None,
    images: bool = False,
) -> Any:
    """A ``wandb.Table`` with one row per sample of a hardmine table (hardness, labels, groups, ids).

    Categorical columns (``difficulty``, ``polarity``, ``group``) become text, so the W&B UI groups and filters on
    them; numbers stay numbers.

    Args:
        table: a table from :func:`hardmine.score`, :func:`hardmine.split`, ``miner.table`` or
            :func:`hardmine.read_csv`.
        columns: the columns to keep, in this order; default all but the per-class ``prob_*`` columns.
        probs: keep the ``prob_*`` columns too (one per class) when ``columns`` is not given.
        max_rows: keep only the first ``max_rows`` rows (W&B caps a logged Table at 200 000 rows by default); sort
            the table first (``table.sort_values("label_prob")``) to keep the hardest.
        images: add an ``image`` column of ``wandb.Image`` read from the file path in each row's ``id`` (tables of
            an ``ImageFolder`` or of :func:`hardmine.read_csv` hold them), so the W&B UI shows the samples.

    Returns:
        A ``wandb.Table``: ``.columns`` the column names, ``.data`` the rows as lists.

    Raises:
        ImportError: wandb is not installed.
        TypeError: ``table`` is not a DataFrame.
        ValueError: ``columns`` names a column the table lacks, ``max_rows < 1``, or ``images=True`` and an ``id``
            is not the path of an existing file.

    Example:
        >>> import pytest; _ = pytest.importorskip("wandb")
        >>> t = pd.DataFrame({"index": [0, 1], "label_prob": [0.2, 0.9],
        ...                   "difficulty": pd.Categorical(["hard", "easy"])})
        >>> w = to_wandb_table(t)
        >>> w.columns, [row[2] for row in w.data]
        (['index', 'label_prob', 'difficulty'], ['hard', 'easy'])
    """
    wandb = require("wandb", "wandb")
    frame = _frame(table, columns=columns, probs=probs, max_rows=max_rows)
    if images:
        ids = table["id"].head(len(frame)) if "id" in table.columns else None
        paths = [] if ids is None else [Path(str(i)) for i in ids]
        missing = [str(p) for p in paths if not p.is_file()]
        if ids is None or missing:
            raise ValueError(
                "Expected argument `images=True` to find an image file at the `id` of every row, but "
                + ("the table has no id column." if ids is None else f"{len(missing)} are missing, e.g. {missing[:3]}.")
            )
        frame["image"] = [wandb.Image(str(p)) for p in paths]
    return wandb.Table(dataframe=frame)


def log_table(
    run: Any,
    table: pd.DataFrame,
    *,
    key: str = "hardmine/table",
    step: int | None = None,
    **kwargs: Any,
) -> Any:
    """Log a hardmine table to a W&B run as a Table under ``key``; returns the ``wandb.Table``.

    Args:
        run: the run from ``wandb.init(...)`` (anything with ``log(dict, step=...)``).
        table: the hardmine table.
        key: the name of the Table in the run.
        step: the run's step to log at (for example the epoch of ``miner.table``); ``None`` lets W&B count.
        **kwargs: passed to :func:`to_wandb_table` (``columns``, ``probs``, ``max_rows``, ``images``).
    """
    w = to_wandb_table(table, **kwargs)
    if step is None:
        run.log({key: w})
    else:
        run.log({key: w}, step=step)
    return w


def _frame(table: pd.DataFrame, *, columns: Sequence[str] | None, probs: bool, max_rows: int | None) -> pd.DataFrame:
    """The table W&B gets: chosen columns, categoricals as text, at most ``max_rows`` rows."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    if columns is None:
        drop = set() if probs else set(prob_columns(table))
        columns = [c for c in table.columns if c not in drop]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"Expected argument `columns` to name columns of the table, but {missing} are not among them.")
    validate.optional(validate.integer, "max_rows", max_rows, min=1)
    frame = table.loc[:, list(columns)]
    if max_rows is not None:
        frame = frame.head(max_rows)
    frame = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(str)
    return frame.reset_index(drop=True)
