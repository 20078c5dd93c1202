"""The history of a :class:`hardmine.HardMiner`: one row per scoring pass, and how often its samples were drawn since.

Each scoring pass (or online refresh) opens a *period* that lasts until the next one. Its row records the split
(counts per group, hard fraction, mean scores, accuracy, seconds, the column that decided hardness, the suspects) and,
when the period closes, how often a hard, an easy and a suspected sample was drawn on average during it.

Example:
    >>> import pandas as pd
    >>> h = MiningHistory(num_samples=3)
    >>> table = pd.DataFrame({"index": [0, 1, 2], "difficulty": ["hard", "easy", "easy"],
    ...                       "label_prob": [0.2, 0.9, 0.8], "suspect": [False, False, False]})
    >>> _ = h.record(table, previous=None, draws=torch.zeros(3, dtype=torch.int64), epoch=1, by="label_prob",
    ...              seconds=0.0, dynamics_epochs=0, suspect_method=None)
    >>> h.frame(table, torch.tensor([4, 1, 1]))[["epoch", "hard", "drawn_per_hard", "drawn_per_easy"]]
       epoch  hard  drawn_per_hard  drawn_per_easy
    0      1     1             4.0             1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.core._state import plain
from hardmine.core.columns import GROUPS

__all__ = ["MiningHistory"]


class MiningHistory:
    """The rows of a miner's scoring passes and the draw counts at the latest one.

    Args:
        num_samples: ``N``, the dataset's length.

    Attributes:
        rows: one dict per scoring pass (see :attr:`hardmine.HardMiner.history` for the columns).
        draws_at_score: int64 ``(N,)``, the miner's draw counts when the latest period opened.
    """

    def __init__(self, num_samples: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.draws_at_score = torch.zeros(num_samples, dtype=torch.int64)

    def period_draws(self, draws: Tensor) -> Tensor:
        """Times each sample was drawn since the latest scoring, int64 ``(N,)``, from the miner's total ``draws``."""
        return draws - self.draws_at_score

    def record(
        self,
        table: pd.DataFrame,
        *,
        previous: pd.DataFrame | None,
        draws: Tensor,
        epoch: int,
        by: str,
        seconds: float,
        dynamics_epochs: int,
        suspect_method: str | None,
    ) -> dict[str, Any]:
        """Close the period of the ``previous`` table and open one for ``table``; returns the new row (mutable).

        Args:
            table: the new split table, with a bool ``suspect`` column.
            previous: the table of the period that ends (``None``: none).
            draws: the miner's draw counts so far, int64 ``(N,)``.
            epoch: the epoch of the scoring.
            by: the column that decided hardness.
            seconds: how long the scoring took.
            dynamics_epochs: epochs recorded in the miner's dynamics (0 without).
            suspect_method: the label-issue policy's method (``None``: off).
        """
        if previous is not None and self.rows:
            self.rows[-1].update(self.drawn_by_difficulty(previous, draws))
        counts = table["group"].value_counts() if "group" in table.columns else pd.Series(dtype=np.int64)
        hard = table["difficulty"] == "hard"
        row: dict[str, Any] = {
            "epoch": epoch,
            "samples": len(table),
            "hard": int(hard.sum()),
            "hard_fraction": float(hard.mean()),
        }
        for g in GROUPS:
            row[g] = int(counts.get(g, 0))
        row[f"mean_{by}"] = float(table[by].mean())
        for col in ("label_prob", "confidence", "loss"):
            if col != by and col in table.columns:
                row[f"mean_{col}"] = float(table[col].mean())
        has_labels = "pred" in table.columns and "label" in table.columns
        row["accuracy"] = float((table["pred"] == table["label"]).mean()) if has_labels else float("nan")
        row["seconds"] = seconds
        row["by"] = by
        row["dynamics_epochs"] = dynamics_epochs
        row["suspect_method"] = suspect_method
        row["suspects"] = int(table["suspect"].sum())
        row.update(drawn_per_hard=float("nan"), drawn_per_easy=float("nan"), drawn_per_suspect=float("nan"))
        self.rows.append(row)
        self.draws_at_score = draws.clone()
        return row

    def drawn_by_difficulty(self, table: pd.DataFrame, draws: Tensor) -> dict[str, float]:
        """Mean draws per hard, easy and suspected sample of ``table`` during its period (suspects apart)."""
        drawn = self.period_draws(draws).numpy()
        hard = (table["difficulty"] == "hard").to_numpy()
        suspect = (
            table["suspect"].to_numpy(dtype=bool) if "suspect" in table.columns else np.zeros(len(table), dtype=bool)
        )

        def per_sample(rows: np.ndarray) -> float:
            return float(drawn[rows].mean()) if rows.any() else float("nan")

        return {
            "drawn_per_hard": per_sample(hard & ~suspect),
            "drawn_per_easy": per_sample(~hard & ~suspect),
            "drawn_per_suspect": per_sample(suspect),
        }

    def frame(self, table: pd.DataFrame | None, draws: Tensor) -> pd.DataFrame:
        """The rows as a DataFrame; the last row's draw counts run up to ``draws`` (``table``: the latest table)."""
        rows = [dict(r) for r in self.rows]
        if rows and table is not None:
            rows[-1].update(self.drawn_by_difficulty(table, draws))
        return pd.DataFrame(rows)

    def describe_last(self, table: pd.DataFrame | None, *, score_calls: int, by: str | None) -> str:
        """The latest scoring in words, for the miner's repr (``by``: the miner's setting, for old rows without one)."""
        if not self.rows:
            return "none yet"
        row = self.rows[-1]
        settings = table.attrs.get("hardmine", {}) if table is not None else {}
        threshold, by = settings.get("threshold"), row.get("by", by)
        if threshold is None and settings.get("hard_fraction") is not None:
            rule = f"{by}, hardest {settings['hard_fraction']:.4g}"
        elif threshold == "per_class":
            rule = f"{by} under per-class thresholds"
        elif threshold is not None:
            rule = f"{by} {'<' if settings.get('hard_when') == 'lower' else '>'} {threshold:.4g}"
        else:
            rule = f"{by}"
        source = f"(scoring pass {score_calls})" if score_calls else "(no scoring pass: observed scores)"
        return f"epoch {row['epoch']}, {row['hard']} hard of {row['samples']} by {rule} {source}"

    def state_dict(self) -> dict[str, Any]:
        """``draws_at_score`` and ``history`` (plain values), the miner's state keys of the same names."""
        return {"draws_at_score": self.draws_at_score.clone(), "history": plain([dict(r) for r in self.rows])}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (a state without ``draws_at_score`` counts from zero)."""
        self.draws_at_score = state.get("draws_at_score", torch.zeros_like(self.draws_at_score)).clone()
        self.rows = [dict(r) for r in state["history"]]
