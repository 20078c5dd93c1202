"""The steps of :func:`hardmine.sample_weights` after the raw weights, and the class-collapse check of the result.

Into dataset order, normalise, smooth, floor, balance: steps 2-5 of :mod:`hardmine.feedback.weighting`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = [
    "balance_groups",
    "balanced",
    "collapse_message",
    "dataset_order",
    "equals",
    "hard_mask",
    "labels_of",
    "normalise_smooth_floor",
]

#: Collapse rule: hard set size, share of the hard set, share of the data, share of the classes.
_COLLAPSE_MIN_HARD = 10
_COLLAPSE_HARD_SHARE = 0.8
_COLLAPSE_DATA_SHARE = 0.5
_COLLAPSE_CLASS_SHARE = 0.2
_TOP_SHARE = 0.1


def equals(table: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """Bool array ``(N,)`` in row order: ``table[column] == value``, for categorical or string columns alike."""
    return (table[column] == value).to_numpy(dtype=bool, copy=True)


def normalise_smooth_floor(
    raw: Tensor, prev: Tensor | None, momentum: float, lo: float, groups: Tensor | None = None
) -> Tensor:
    """Steps 2-4 of the module doc: normalise, smooth with ``prev``, floor at ``lo``; within each group when given.

    ``groups`` is an int64 group id ``(N,)`` in ``[0, G)``; every group is normalised by its own maximum (a group
    whose values are all zero stays zero with ``lo == 0`` and becomes uniform otherwise). Vectorised: ``O(N)`` for
    any number of groups.
    """
    if groups is None:
        groups = torch.zeros(raw.numel(), dtype=torch.int64, device=raw.device)
    num_groups = int(groups.max()) + 1

    def per_group_max(values: Tensor) -> Tensor:
        top = torch.zeros(num_groups, dtype=values.dtype, device=values.device)
        return top.scatter_reduce(0, groups, values, reduce="amax", include_self=True)

    def scaled(values: Tensor) -> tuple[Tensor, Tensor]:
        """``values`` over their group's maximum, and the bool ``(G,)`` of all-zero groups."""
        top = per_group_max(values)
        zero = top <= 0
        return values / torch.where(zero, 1.0, top)[groups], zero

    w, zero = scaled(raw)
    if prev is not None:
        w = momentum * scaled(prev)[0] + (1.0 - momentum) * w
        w, zero = scaled(w)
    if lo > 0:
        w = torch.where(zero[groups], 1.0, w)
    return w.clamp(min=lo)


def balance_groups(balance: str, table: pd.DataFrame | None, labels: Tensor | None, n: int) -> Tensor:
    """Int64 group id ``(N,)`` in ``[0, G)``, dataset order: the class (``"label"``) or the polarity."""
    if balance == "label":
        if labels is None:
            raise ValueError(
                "Expected labels with balance='label': a `label` column in the table or `labels=`, but got neither."
            )
        return torch.unique(labels, return_inverse=True)[1]
    if table is None or "polarity" not in table.columns:
        shown = "a table without a `polarity` column" if table is not None else "no table"
        raise ValueError(
            f"Expected a split table (with a `polarity` column, from hm.split) with balance='polarity', "
            f"but got {shown}."
        )
    positive = equals(table, "polarity", "positive")
    if "index" in table.columns:
        ordered = np.empty_like(positive)
        ordered[table["index"].to_numpy()] = positive
        positive = ordered
    return torch.from_numpy(positive.astype(np.int64))


def balanced(raw: Tensor, prev: Tensor | None, momentum: float, lo: float, groups: Tensor) -> Tensor:
    """Steps 2-4 within every group, then equal total weight per group, then the largest weight 1."""
    w = normalise_smooth_floor(raw, prev, momentum, lo, groups)
    totals = torch.zeros(int(groups.max()) + 1, dtype=w.dtype, device=w.device).scatter_add_(0, groups, w)
    w = w / torch.where(totals > 0, totals, 1.0)[groups]
    return w / w.max()


def dataset_order(w: Tensor, table: pd.DataFrame) -> Tensor:
    if "index" not in table.columns:
        return w
    index = table["index"].to_numpy()
    n = len(index)
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"Expected the `index` column to hold integers, but it has dtype {index.dtype}.")
    seen = np.zeros(n, dtype=bool)
    inside = (index >= 0) & (index < n)
    seen[index[inside]] = True
    if not inside.all() or not seen.all():
        raise ValueError(
            f"Expected the `index` column to be a permutation of 0..{n - 1} (one row per dataset sample), but it is "
            "not: pass the whole table from hm.score/hm.split, not a filtered one, or drop `index` to use row order."
        )
    out = torch.empty_like(w)
    out[torch.from_numpy(index.astype(np.int64))] = w
    return out


def labels_of(table: pd.DataFrame | None, labels: Any, n: int) -> Tensor | None:
    if table is not None and labels is None:
        if "label" not in table.columns:
            return None
        raw = table["label"].to_numpy()
        if "index" in table.columns:  # into dataset order, like the weights
            ordered = np.empty_like(raw)
            ordered[table["index"].to_numpy()] = raw
            raw = ordered
        return torch.from_numpy(np.array(raw, dtype=np.int64))
    if labels is None:
        return None
    t = labels.detach().cpu() if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if t.ndim != 1 or t.numel() != n or t.is_floating_point():
        raise ValueError(
            f"Expected argument `labels` to be int class labels of shape ({n},), but got shape "
            f"{tuple(t.shape)} and dtype {t.dtype}."
        )
    return t.long()


def hard_mask(table: pd.DataFrame | None, w: Tensor) -> Tensor:
    """Bool ``(N,)``, dataset order: the ``difficulty == "hard"`` rows, or without that column the heaviest 10%."""
    if table is not None and "difficulty" in table.columns:
        hard = equals(table, "difficulty", "hard")
        if "index" in table.columns:
            ordered = np.empty_like(hard)
            ordered[table["index"].to_numpy()] = hard
            hard = ordered
        return torch.from_numpy(hard)
    mask = torch.zeros(w.numel(), dtype=torch.bool)
    if bool((w == w.max()).all()):
        return mask
    k = math.ceil(_TOP_SHARE * w.numel())
    mask[torch.topk(w.cpu(), k).indices] = True
    return mask


def collapse_message(labels: Tensor, hard: Tensor) -> str | None:
    """What to warn when the hard set (bool ``(N,)``) collapses onto a few of the ``labels``' classes, else None."""
    num_hard = int(hard.sum())
    if num_hard < _COLLAPSE_MIN_HARD:
        return None
    classes, all_counts = torch.unique(labels, return_counts=True)
    hard_counts = torch.bincount(torch.searchsorted(classes, labels[hard]), minlength=classes.numel())
    order = torch.argsort(hard_counts, descending=True, stable=True)
    covered = torch.cumsum(hard_counts[order], 0)
    k = int(torch.searchsorted(covered, math.ceil(_COLLAPSE_HARD_SHARE * num_hard))) + 1
    few = max(1, int(_COLLAPSE_CLASS_SHARE * classes.numel()))
    data_share = float(all_counts[order[:k]].sum()) / labels.numel()
    if k <= few and data_share < _COLLAPSE_DATA_SHARE:
        top = classes[order[:k]].tolist()
        share = float(covered[k - 1]) / num_hard
        return (
            f"The hard set ({num_hard} samples) collapses onto class(es) {top}: they hold {share:.0%} of the hard "
            f"samples but only {data_share:.0%} of the data, so sampling by these weights trains mostly on them. "
            "Consider a per-class threshold (hm.split(..., threshold='per_class')), per-group weights, or a higher "
            "`floor`."
        )
    return None
