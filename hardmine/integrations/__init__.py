"""Thin layers over hardmine's public API for the frameworks people train with; each is an optional extra.

- :mod:`hardmine.integrations.lightning`: :class:`~hardmine.integrations.lightning.HardMiningCallback` for
  Lightning 2.x (``pip install 'hardmine[lightning]'``).
- :mod:`hardmine.integrations.hf`: :class:`~hardmine.integrations.hf.HardMiningTrainer` and
  :class:`~hardmine.integrations.hf.HardMiningCallback` for the Hugging Face ``Trainer``
  (``pip install 'hardmine[hf]'``).
- :mod:`hardmine.integrations.tensorboard`: :func:`~hardmine.integrations.tensorboard.log_history`, a miner's history
  in TensorBoard, :func:`~hardmine.integrations.tensorboard.log_table` and
  :func:`~hardmine.integrations.tensorboard.log_embedding`, a table as text and in the embedding projector
  (``pip install 'hardmine[tensorboard]'``).
- :mod:`hardmine.integrations.wandb`: :func:`~hardmine.integrations.wandb.to_wandb_table` and
  :func:`~hardmine.integrations.wandb.log_table`, a table as a W&B Table (``pip install 'hardmine[wandb]'``).

``import hardmine`` imports none of them, nor their frameworks; importing one without its extra raises an
``ImportError`` that names the ``pip install`` line.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

import pandas as pd

__all__ = ["history_metrics", "new_history_metrics", "require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` that says which hardmine extra installs it.

    Example:
        >>> require("math", "none").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"hardmine.integrations needs `{module}` for this; install it with: pip install 'hardmine[{extra}]'"
        ) from err


def history_metrics(row: pd.Series | dict[str, Any], prefix: str = "hardmine/") -> dict[str, float]:
    """The numeric, finite entries of one row of ``miner.history`` as ``{prefix + column: float}``, for a logger.

    ``epoch`` is left out (loggers take it as the step); text columns (``by``, ``suspect_method``) and NaN draw counts
    are left out.

    Example:
        >>> history_metrics({"epoch": 1, "hard": 12, "hard_fraction": 0.25, "by": "label_prob",
        ...                  "drawn_per_hard": float("nan")})
        {'hardmine/hard': 12.0, 'hardmine/hard_fraction': 0.25}
    """
    out: dict[str, float] = {}
    for key, value in dict(row).items():
        if key == "epoch" or isinstance(value, (str, bool)) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[f"{prefix}{key}"] = number
    return out


def new_history_metrics(
    history: pd.DataFrame, logged_epochs: list[int], prefix: str = "hardmine/"
) -> list[dict[str, float]]:
    """The :func:`history_metrics` of the rows of ``miner.history`` after its first ``len(logged_epochs)`` rows.

    Each row's metrics also carry ``prefix + "epoch"``; the epochs returned are appended to ``logged_epochs`` (the
    callbacks' record of what they have logged, one entry per row), so a second call returns only what came since,
    also when a second run's scoring passes repeat the first run's epoch numbers.

    Example:
        >>> logged = [0]
        >>> history = pd.DataFrame({"epoch": [0, 1], "hard": [3, 5]})
        >>> new_history_metrics(history, logged)
        [{'hardmine/hard': 5.0, 'hardmine/epoch': 1.0}]
        >>> logged, new_history_metrics(history, logged)
        ([0, 1], [])
    """
    out: list[dict[str, float]] = []
    for _, row in history.iloc[len(logged_epochs) :].iterrows():
        epoch = int(row["epoch"])
        logged_epochs.append(epoch)
        metrics = history_metrics(row, prefix)
        metrics[f"{prefix}epoch"] = float(epoch)
        out.append(metrics)
    return out
