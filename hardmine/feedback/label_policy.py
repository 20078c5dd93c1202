"""The label-issue policy of a :class:`hardmine.HardMiner`: which samples are suspected mislabelled, and how they weigh.

A sample the model keeps getting wrong is either genuinely hard or mislabelled, and drawing a mislabelled one more often
teaches the wrong label. :class:`LabelIssuePolicy` (from ``exclude_label_issues=``) finds the suspects at every scoring
(area under the margin below 0, confident learning on the scored probabilities, a callable, or a fixed set) and
:meth:`LabelIssuePolicy.weigh` keeps them out of the up-weighting: a suspect weighs as an easy sample of its
polarity, never more, and never zero.

Example:
    >>> policy = LabelIssuePolicy.from_argument([2, 0], dynamics=None, num_samples=4)
    >>> policy.method, policy.suspects(pd.DataFrame({"index": range(4)}), None).tolist()
    ('fixed', [True, False, True, False])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.analysis.dynamics import Dynamics
from hardmine.analysis.labels import issue_indices, label_issues
from hardmine.feedback.weighting import HardSetCollapseWarning
from hardmine.feedback.weighting import weights as sample_weights

__all__ = ["EXCLUDE_METHODS", "ExcludeArg", "LabelIssuePolicy", "check_indices"]

#: The built-in ways :class:`hardmine.HardMiner` finds suspected label issues (``exclude_label_issues=``).
EXCLUDE_METHODS: tuple[str, ...] = ("aum", "confident_learning")
ExcludeArg = (
    bool
    | Literal["aum", "confident_learning"]
    | Callable[[pd.DataFrame], Any]
    | Sequence[int]
    | AbstractSet[int]
    | np.ndarray
    | Tensor
)


def check_indices(value: Any, n: int, name: str) -> np.ndarray:
    """Sorted unique int64 dataset indices from a list, tuple, set, range, array, tensor or pandas Index/Series.

    Example:
        >>> check_indices({3, 1, 3}, 5, "exclude_label_issues").tolist()
        [1, 3]
    """
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple, range, pd.Index, pd.Series)) else None
    if isinstance(value, (set, frozenset)):
        arr = np.asarray(sorted(value))
    if arr is not None and arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr is None or arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        shown = f"dtype {arr.dtype} and shape {arr.shape}" if arr is not None else type(value).__name__
        raise TypeError(
            f"Expected `{name}` to be dataset indices (a 1-D sequence, array or tensor of ints), but got {shown}."
        )
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(f"Expected `{name}` to hold dataset indices in [0, {n}), but got {arr[bad][:10].tolist()}.")
    return np.unique(arr.astype(np.int64))


@dataclass(frozen=True, eq=False)  # eq=False: `fixed` is an array
class LabelIssuePolicy:
    """How a miner finds suspected label issues at each scoring, and keeps them from being up-weighted.

    Args:
        method: ``None`` (off), ``"aum"``, ``"confident_learning"``, ``"custom"`` (``find`` is called) or
            ``"fixed"`` (``fixed`` holds the suspects).
        num_samples: ``N``, the dataset's length.
        fixed: sorted int64 dataset indices, for ``"fixed"``.
        find: ``find(table) -> indices``, for ``"custom"``.
    """

    method: str | None
    num_samples: int
    fixed: np.ndarray | None = None
    find: Callable[[pd.DataFrame], Any] | None = None

    @classmethod
    def from_argument(cls, value: Any, *, dynamics: Dynamics | None, num_samples: int) -> LabelIssuePolicy:
        """The policy of ``exclude_label_issues=value`` (see :class:`hardmine.HardMiner`), checked."""
        n = num_samples
        if value is None or value is False:
            return cls(None, n)
        if value is True:
            return cls("aum" if dynamics is not None else "confident_learning", n)
        if isinstance(value, str):
            if value not in EXCLUDE_METHODS:
                raise ValueError(
                    f"Expected argument `exclude_label_issues` to be a bool, one of {EXCLUDE_METHODS}, a "
                    f"callable or dataset indices, but got {value!r}."
                )
            if value == "aum" and dynamics is None:
                raise ValueError(
                    "Expected argument `dynamics` with exclude_label_issues='aum' (the area under the margin "
                    "is recorded over epochs), but got None."
                )
            return cls(value, n)
        if callable(value):
            return cls("custom", n, find=value)
        return cls("fixed", n, fixed=check_indices(value, n, "exclude_label_issues"))

    @property
    def needs_probs(self) -> bool:
        """Whether the scoring pass must keep the class probabilities (confident learning reads them)."""
        return self.method == "confident_learning"

    def check_online(self) -> None:
        """Raise for a method that online mining (no scoring pass) cannot serve."""
        if self.needs_probs:
            raise ValueError(
                "Expected exclude_label_issues other than 'confident_learning' with rescore_every=None: confident "
                "learning needs every class probability of a scoring pass; use 'aum' with dynamics, a callable or "
                "indices."
            )

    def suspects(self, table: pd.DataFrame, summary: pd.DataFrame | None) -> Tensor:
        """Bool tensor ``(N,)`` in dataset-index order: the suspects of this scoring.

        Args:
            table: the scored and split table (``confident_learning`` and a callable read it).
            summary: the dynamics summary (``None`` before its first epoch: ``"aum"`` flags nothing).
        """
        mask = np.zeros(self.num_samples, dtype=bool)
        if self.method == "aum" and summary is not None:
            mask[issue_indices(label_issues(summary, method="aum"))] = True
        elif self.method == "confident_learning":
            mask[issue_indices(label_issues(table, method="confident_learning"))] = True
        elif self.method == "custom" and self.find is not None:
            mask[check_indices(self.find(table.copy()), self.num_samples, "exclude_label_issues(table)")] = True
        elif self.method == "fixed" and self.fixed is not None:
            mask[self.fixed] = True
        return torch.from_numpy(mask)

    def weigh(
        self, table: pd.DataFrame, suspect: Tensor, options: dict[str, Any], weigh: Callable[..., Tensor]
    ) -> Tensor:
        """Float64 sampling weights ``(N,)`` in which a suspect weighs no more than an easy sample of its polarity.

        Args:
            table: the split table with a ``suspect`` column, one row per weighed sample.
            suspect: bool ``(N,)``, the suspects among those rows (dataset-index order).
            options: keyword arguments for :func:`hardmine.weights`.
            weigh: ``weigh(table, **options) -> float64 (N,)``, :func:`hardmine.weights` as the miner calls it.
        """
        score_based = "by" in options
        suspects = bool(suspect.any())
        source = as_easy(table) if suspects and not score_based else table
        w = weigh(source, **options)
        if not suspects:
            return w
        if score_based:  # no easy weight to speak of: no more than the lightest other sample
            others = w[~suspect]
            others = others[others > 0]
            cap = others.min().expand_as(w) if others.numel() else w
        elif "previous" in options:  # momentum may carry a suspect's old hard weight: cap at today's easy weight
            plain = {k: v for k, v in options.items() if k not in ("previous", "momentum")}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", HardSetCollapseWarning)
                cap = sample_weights(source, **plain).detach().to("cpu", torch.float64)
        else:
            return w
        return torch.where(suspect, torch.minimum(w, cap), w)


def as_easy(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a split table with its ``suspect`` rows relabelled easy (difficulty and group), for the weights."""
    out = table.copy()
    rows = out["suspect"].to_numpy(dtype=bool)
    out.loc[rows, "difficulty"] = "easy"
    if "polarity" in out.columns:
        pos = (out["polarity"] == "positive").to_numpy(dtype=bool)
        out.loc[rows & pos, "group"] = "easy_positive"
        out.loc[rows & ~pos, "group"] = "easy_negative"
    return out
