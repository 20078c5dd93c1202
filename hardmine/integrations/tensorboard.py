"""hardmine in TensorBoard: a miner's history as scalars, a table as text, the samples in the embedding projector.

- :func:`log_history`: one scalar per history column, at the epoch of each scoring pass (the Scalars tab).
- :func:`log_table`: the first rows of a table as a Markdown table (the Text tab).
- :func:`log_embedding`: one point per sample with its hardness, label and group as metadata (the Projector tab), to
  colour and search the samples by them.

Needs the ``tensorboard`` package (``pip install 'hardmine[tensorboard]'``) when given a folder; a writer you built
yourself (``torch.utils.tensorboard.SummaryWriter`` or anything with ``add_scalar``) needs nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from hardmine.core import validate
from hardmine.core.columns import prob_columns
from hardmine.integrations import history_metrics, require

__all__ = ["log_embedding", "log_history", "log_table"]


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


def _writer(writer: Any) -> tuple[Any, bool]:
    """``(writer, owned)``: a new ``SummaryWriter`` for a folder (to close after writing), else the writer given."""
    if isinstance(writer, (str, os.PathLike)):
        return require("torch.utils.tensorboard", "tensorboard").SummaryWriter(os.fspath(writer)), True
    return writer, False


def _check_table(table: Any, columns: Sequence[str] | None) -> list[str]:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    if columns is None:
        return list(table.columns)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"Expected argument `columns` to name columns of the table, but {missing} are not among them.")
    return list(columns)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame, *, columns: Sequence[str] | None = None, max_rows: int = 100) -> str:
    r"""The first ``max_rows`` rows of ``table`` as a Markdown table (numbers to 4 significant digits).

    Example:
        >>> print(markdown_table(pd.DataFrame({"index": [3, 1], "label_prob": [0.123456, 0.9], "id": ["a|b", "c"]})))
        | index | label_prob | id |
        |---|---|---|
        | 3 | 0.1235 | a\|b |
        | 1 | 0.9 | c |
    """
    names = _check_table(table, columns)
    validate.integer("max_rows", max_rows, min=1)
    lines = ["| " + " | ".join(_cell(n) for n in names) + " |", "|" + "---|" * len(names)]
    for row in table.loc[:, names].head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def log_table(
    writer: Any,
    table: pd.DataFrame,
    *,
    tag: str = "hardmine/table",
    step: int | None = None,
    columns: Sequence[str] | None = None,
    max_rows: int = 100,
) -> int:
    """Write the first ``max_rows`` rows of a table to TensorBoard's Text tab as a Markdown table.

    Sort first to choose the rows (``table.sort_values("label_prob")`` for the hardest); ``miner.table`` at each
    re-score with ``step=miner.epoch`` shows how the hard set changes.

    Args:
        writer: a ``SummaryWriter`` (or anything with ``add_text(tag, text, global_step)``), or a folder for a new
            ``SummaryWriter`` (closed again after writing).
        table: a hardmine table.
        tag: the text summary's tag.
        step: the global step (an epoch); ``None`` for none.
        columns: the columns to show, in this order; default all.
        max_rows: at most this many rows (TensorBoard renders long texts slowly).

    Returns:
        The number of rows written.

    Raises:
        ImportError: ``writer`` is a folder and tensorboard is not installed.
        TypeError: ``table`` is not a DataFrame.
        ValueError: ``columns`` names a missing column or ``max_rows < 1``.
    """
    text = markdown_table(table, columns=columns, max_rows=max_rows)
    writer, owned = _writer(writer)
    try:
        writer.add_text(tag, text, global_step=step)
    finally:
        if owned:
            writer.close()
    return min(len(table), max_rows)


def log_embedding(
    writer: Any,
    table: pd.DataFrame,
    features: torch.Tensor | None = None,
    *,
    tag: str = "hardmine",
    step: int | None = None,
    columns: Sequence[str] | None = None,
    images: torch.Tensor | None = None,
) -> int:
    """Put the samples in TensorBoard's embedding projector with their hardness, label and group as metadata.

    In the Projector tab each sample is a point; "Color by" ``difficulty`` or ``group`` shows where the hard samples
    lie, and the search box finds samples by ``index`` or ``id``.

    Args:
        writer: a ``SummaryWriter`` (or anything with ``add_embedding``), or a folder for a new ``SummaryWriter``.
        table: a hardmine table, one row per sample.
        features: ``(N, D)`` float features of the same samples in the same row order (for example the model's
            penultimate layer); default the table's ``prob_*`` columns (scored with ``keep_probs=True``).
        tag: the embedding's name in the projector.
        step: the global step; ``None`` for none.
        columns: the metadata columns; default those of ``index``, ``id``, ``label``, ``pred``, ``label_prob``,
            ``confidence``, ``loss``, ``polarity``, ``difficulty``, ``group`` and ``suspect`` that the table has.
        images: ``(N, C, H, W)`` float images in ``[0, 1]`` (C = 1 or 3), same row order: the projector shows each
            point as its image (a sprite).

    Returns:
        The number of samples written.

    Raises:
        ImportError: ``writer`` is a folder and tensorboard is not installed.
        TypeError: ``table`` is not a DataFrame or ``features`` not a tensor.
        ValueError: no ``features`` and no ``prob_*`` columns, ``features`` not ``(len(table), D)``, or a missing
            column, or ``images`` not ``(N, C, H, W)``.
    """
    default = ["index", "id", "label", "pred", "label_prob", "confidence", "loss", "polarity", "difficulty", "group"]
    default.append("suspect")
    names = _check_table(table, columns if columns is not None else [c for c in default if c in table.columns])
    if features is None:
        probs = prob_columns(table)
        if not probs:
            raise ValueError(
                "Expected argument `features` (N, D) or a table with prob_* columns (hm.score(..., keep_probs=True)), "
                "but got neither."
            )
        features = torch.tensor(table[probs].to_numpy(dtype="float32"))
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"Expected argument `features` to be a torch.Tensor, but got {type(features).__name__}.")
    if features.ndim != 2 or features.shape[0] != len(table):
        raise ValueError(
            f"Expected argument `features` to have shape ({len(table)}, D), one row per table row, but got "
            f"{tuple(features.shape)}."
        )
    if images is not None and (
        not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] != len(table)
    ):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected argument `images` to be a ({len(table)}, C, H, W) tensor, but got {shape}.")
    metadata = [[_cell(v) for v in row] for row in table.loc[:, names].itertuples(index=False)]
    writer, owned = _writer(writer)
    try:
        writer.add_embedding(
            features.detach().to("cpu", torch.float32),
            metadata=metadata if len(names) > 1 else [r[0] for r in metadata],
            metadata_header=names if len(names) > 1 else None,
            label_img=None if images is None else images.detach().to("cpu", torch.float32),
            global_step=step,
            tag=tag,
        )
    finally:
        if owned:
            writer.close()
    return len(table)
