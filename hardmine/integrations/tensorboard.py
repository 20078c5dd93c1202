"""A miner's history in TensorBoard: one scalar per history column, at the epoch of each scoring pass.

Needs the ``tensorboard`` package (``pip install 'hardmine[tensorboard]'``) when given a folder; a writer you built
yourself (``torch.utils.tensorboard.SummaryWriter`` or anything with ``add_scalar``) needs nothing more.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from hardmine.integrations import history_metrics, require

__all__ = ["log_history"]


def log_history(
    writer: Any,
    history: Any,
    *,
    prefix: str = "hardmine/",
    since_epoch: int | None = None,
) -> int:
    """Write every row of a miner's history to TensorBoard, one scalar per numeric column, at step ``epoch``.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or any object with ``add_scalar(tag, value,
            global_step)``), or a folder for a new ``SummaryWriter`` (closed again after writing).
        history: a :class:`hardmine.HardMiner` (its ``history``) or the history DataFrame itself.
        prefix: prepended to every tag (``hardmine/hard_fraction``, ...).
        since_epoch: write only rows with ``epoch > since_epoch`` (to log each scoring pass once from a loop).

    Returns:
        The number of rows written.

    Raises:
        ImportError: ``writer`` is a folder and tensorboard is not installed.
        TypeError: ``history`` is neither a HardMiner nor a DataFrame.

    Example:
        >>> class Printer:
        ...     def add_scalar(self, tag, value, global_step):
        ...         print(tag, value, global_step)
        >>> log_history(Printer(), pd.DataFrame({"epoch": [1], "hard": [5], "by": ["label_prob"]}))
        hardmine/hard 5.0 1
        1
    """
    table = getattr(history, "history", history)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"Expected argument `history` to be a HardMiner or its history DataFrame, but got {type(history).__name__}."
        )
    rows = table if since_epoch is None or table.empty else table[table["epoch"] > since_epoch]
    owned = isinstance(writer, (str, os.PathLike))
    if owned:
        writer = require("torch.utils.tensorboard", "tensorboard").SummaryWriter(os.fspath(writer))
    try:
        for _, row in rows.iterrows():
            step = int(row["epoch"]) if "epoch" in row else None
            for tag, value in history_metrics(row, prefix).items():
                writer.add_scalar(tag, value, global_step=step)
    finally:
        if owned:
            writer.close()
    return len(rows)
