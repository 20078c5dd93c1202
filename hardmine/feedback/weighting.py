"""Per-sample sampling weights from a split table or from a score: the bridge from ``hm.split`` to ``HardSampler``.

Every weight goes through the same four steps (all in float64, returned in ``dtype``):

1. **raw weight** ``r_i``, from one of two sources:

   - a split table (``difficulty`` column, from :func:`hardmine.split`): ``r_i = hard`` for hard rows and
     ``r_i = easy`` for easy rows; ``hard``/``easy`` may be mappings keyed by polarity (``"positive"``,
     ``"negative"``) or group name (``"hard_positive"``, ...) to weigh each group on its own;
   - a score (``by=`` a column, or a 1-D tensor/array of hardness): first the *hardness* ``h_i``, larger is harder:
     ``1 - v`` for probability-like columns (``label_prob``, ``confidence``, ``prob_<c>``, ``correctness``, and
     columns hardmine does not know), ``(1 - v) / 2`` for ``margin`` (in ``[0, 1]``), ``v`` itself for ``loss``,
     ``entropy`` (and ``variability``, ``forgetting``) and for a tensor/array. Then, by ``mode``:

     - ``"power"``: ``r_i = h_i ** gamma`` (``h`` must be non-negative; ``gamma=2`` with ``by="label_prob"`` is the
       focal-loss factor ``(1 - p) ** 2``);
     - ``"softmax"``: ``r_i = exp((h_i - max h) / temperature)``, a tempered softmax over the samples;
     - ``"rank"``: ``r_i = (rank_i / N) ** gamma``, the percentile rank of ``h_i`` (1 = easiest, ``N`` = hardest, ties
       share their average rank). It ignores the scale of the score: a loss and its square give the same weights.

2. **normalise**: ``r_i / max(r)``, so the heaviest sample weighs 1.
3. **smooth** (only with ``previous=``): ``m * previous_i / max(previous) + (1 - m) * r_i`` with ``m = momentum``, then
   normalised again; an exponential moving average across re-scorings that keeps weights from jumping.
4. **floor**: ``w_i = max(r_i, lo)`` with ``lo = max(floor, 1 / max_ratio)``. No sample weighs less than ``lo`` times
   the heaviest one, so none starves, and ``max(w) / min(w) <= 1 / lo`` (20 with the default ``floor=0.05``). Only
   ``floor=0`` without ``max_ratio`` lets a weight be zero.
5. **balance** (only with ``balance=``): steps 2-4 run within each class (``"label"``) or each polarity
   (``"polarity"``) on its own, so the heaviest sample of every class weighs 1 and the floor holds within a class;
   then every class is scaled so that all classes carry the same total weight, ``sum_{i in c} w_i`` equal for every
   ``c``, and the result is divided by its maximum. A weighted draw then picks each class equally often (as a
   class-balanced ``WeightedRandomSampler`` does, weights ``1 / count``) and, inside a class, the hard samples in the
   proportions of steps 1-4. The ratio bound of step 4 holds within a class; across classes it is multiplied by the
   class imbalance. A class whose raw weights are all zero keeps zero weight with ``floor=0``, else it is uniform.

Weights are in dataset-index order: a table with an ``index`` column (as :func:`hardmine.score` returns it,
in dataset-index order) may come in any row order, weight ``i`` belongs to the row whose ``index`` is ``i``; a table
without one is taken in row order.

Class collapse: when the labels are known (a ``label`` column, or ``labels=``), :func:`weights` warns with
:class:`HardSetCollapseWarning` when the hard set (the ``difficulty == "hard"`` rows, or without that column the
heaviest 10% of samples) holds at least 10 samples and collapses onto a few classes: the fewest classes that hold 80%
of the hard set are at most a fifth of the classes (at least one) and make up less than half of the data. Sampling
such weights trains mostly on those classes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.core.columns import GROUPS, POLARITIES, harder_when

__all__ = ["BALANCE_MODES", "WEIGHT_MODES", "Balance", "HardSetCollapseWarning", "WeightMode", "hardness", "weights"]

WeightMode = Literal["power", "softmax", "rank"]
WEIGHT_MODES: tuple[str, ...] = ("power", "softmax", "rank")
Balance = Literal["label", "polarity"]
#: What ``balance=`` may give equal total weight to: every class, or positives and negatives.
BALANCE_MODES: tuple[str, ...] = ("label", "polarity")

_HIGHER_IS_HARDER_OK = ("loss", "entropy", "variability", "forgetting")

#: Collapse rule: hard set size, share of the hard set, share of the data, share of the classes.
_COLLAPSE_MIN_HARD = 10
_COLLAPSE_HARD_SHARE = 0.8
_COLLAPSE_DATA_SHARE = 0.5
_COLLAPSE_CLASS_SHARE = 0.2
_TOP_SHARE = 0.1


class HardSetCollapseWarning(UserWarning):
    """The hard samples concentrate on a few classes; weighted sampling would train mostly on those."""


def hardness(table: pd.DataFrame, by: str, *, hard_when: Literal["lower", "higher"] | None = None) -> Tensor:
    """The hardness ``h`` (larger is harder) of each row from the score column ``by``, as float64 ``(N,)``.

    ``1 - v`` where lower is harder (``margin``: ``(1 - v) / 2``), ``v`` where higher is harder; ``hard_when``
    overrides the direction that :func:`hardmine.core.columns.harder_when` gives the column. Rows stay in table order.

    Raises:
        ValueError: a missing or non-numeric column, or NaN values (naming the rows).

    Example:
        >>> t = pd.DataFrame({"label_prob": [0.9, 0.2], "margin": [0.8, -0.6], "loss": [0.1, 1.6]})
        >>> [hardness(t, c).tolist() for c in ("label_prob", "margin", "loss")]
        [[0.09999999999999998, 0.8], [0.09999999999999998, 0.8], [0.1, 1.6]]
    """
    if by not in table.columns:
        raise ValueError(
            f"Expected argument `by` to name a column of the table, but got {by!r}; columns are {list(table.columns)}."
        )
    column = table[by]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ValueError(f"Expected column {by!r} to hold numbers, but it has dtype {column.dtype}.")
    values = torch.from_numpy(column.to_numpy(dtype=np.float64, copy=True))
    _check_finite(values, f"column {by!r}", table)
    if hard_when is not None and hard_when not in ("lower", "higher"):
        raise ValueError(f"Expected argument `hard_when` to be 'lower', 'higher' or None, but got {hard_when!r}.")
    direction = hard_when or harder_when(by)
    if direction == "higher":
        return values
    if by == "margin":
        return (1.0 - values) / 2.0
    return 1.0 - values


def weights(
    source: pd.DataFrame | Tensor | np.ndarray | Sequence[float],
    *,
    hard: float | Mapping[str, float] | None = None,
    easy: float | Mapping[str, float] = 1.0,
    by: str | None = None,
    mode: WeightMode = "power",
    gamma: float = 1.0,
    temperature: float = 0.2,
    floor: float = 0.05,
    max_ratio: float | None = None,
    previous: Tensor | np.ndarray | Sequence[float] | None = None,
    momentum: float = 0.5,
    labels: Tensor | np.ndarray | Sequence[int] | None = None,
    hard_when: Literal["lower", "higher"] | None = None,
    balance: Balance | Literal["auto"] | None = "auto",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Per-sample sampling weights ``(N,)`` for :class:`hardmine.HardSampler`; formula in the module doc.

    Args:
        source: a split table (``difficulty`` column; ``polarity`` for per-group mappings), a score table with
            ``by=``, or a 1-D tensor, array or sequence of hardness values (larger is harder).
        hard: weight of a hard row of a split table (default 4.0), or a mapping keyed by polarity or group name.
            Only for split tables.
        easy: weight of an easy row of a split table, or a mapping like ``hard``.
        by: score column to weigh by (``"label_prob"``, ``"margin"``, ``"loss"``, ``"entropy"``, ...). With a split
            table, ``by`` switches from per-group weights to per-sample weights from the score.
        mode: ``"power"``, ``"softmax"`` or ``"rank"`` (score weights only).
        gamma: exponent for ``"power"`` and ``"rank"``, > 0.
        temperature: for ``"softmax"``, > 0; in the units of the hardness (``[0, 1]`` for probabilities).
        floor: smallest weight relative to the largest, in ``[0, 1]``; 0 allows zero weights.
        max_ratio: cap on ``max(w) / min(w)``, >= 1 (the same as ``floor = 1 / max_ratio``, the stricter one wins).
        previous: the last weights ``(N,)`` (e.g. from the previous re-scoring) to smooth with.
        momentum: share of ``previous`` in the smoothed weights, in ``[0, 1]``.
        labels: int labels ``(N,)`` for the class-collapse warning and ``balance="label"`` when ``source`` is not a
            table.
        hard_when: override which direction of ``by`` is harder.
        balance: ``"label"`` gives every class (``label`` column, or ``labels=``) the same total weight,
            ``"polarity"`` gives positives and negatives the same total weight (a split table's ``polarity``
            column); hardness then decides within each (step 5 of the module doc). ``None`` leaves the classes'
            shares of the total weight to the hardness. ``"auto"`` (default): ``"label"`` when labels are known (a
            ``label`` column or ``labels=``), else ``None``; the same default as :class:`hardmine.HardMiner`'s,
            because the training benchmark shows balancing decides the result (long-tailed digits: balanced
            accuracy 0.826 with it, 0.597 without; rare positives: F1 0.814 against 0.705). No collapse warning
            with ``"label"``: no class can take over the draws.
        dtype: floating dtype of the result.

    Returns:
        ``dtype`` tensor ``(N,)`` in ``(0, 1]`` (``[0, 1]`` with ``floor=0``), the largest is 1, in dataset-index
        order; on the device of a tensor ``source``, else on the CPU.

    Raises:
        ValueError: NaN scores or weights (naming the rows), negative or all-zero raw weights, a bad option value, a
            table with neither ``difficulty`` nor ``by``, or an ``index`` column that is not a permutation of
            ``0..N-1``.
        TypeError: an unsupported ``source`` type or a non-floating ``dtype``.

    Example:
        >>> table = pd.DataFrame({"index": [0, 1, 2, 3], "label": [0, 1, 0, 1],
        ...                       "label_prob": [0.95, 0.30, 0.60, 0.99],
        ...                       "difficulty": ["easy", "hard", "easy", "easy"]})
        >>> weights(table, hard=4.0, easy=1.0, balance=None)
        tensor([0.2500, 1.0000, 0.2500, 0.2500])
        >>> weights(table, by="label_prob", gamma=2.0, balance=None).round(decimals=4)  # (1 - p) ** 2, floor 0.05
        tensor([0.0500, 1.0000, 0.3265, 0.0500])
        >>> weights(table, by="label_prob", mode="rank", balance=None)
        tensor([0.5000, 1.0000, 0.7500, 0.2500])
        >>> weights(table, hard=4.0, easy=1.0, balance="label")  # each label sums to 1.25
        tensor([0.6250, 1.0000, 0.6250, 0.2500])
    """
    _check_options(mode, gamma, temperature, floor, max_ratio, momentum, dtype)
    if balance != "auto":
        _check_balance(balance)
    table: pd.DataFrame | None = None
    device = torch.device("cpu")
    if isinstance(source, pd.DataFrame):
        table = source
        if len(table) == 0:
            raise ValueError("Expected argument `source` to have at least one row, but the table is empty.")
        if by is None and "difficulty" not in table.columns:
            raise ValueError(
                "Expected a split table (with a `difficulty` column, from hm.split) or a score column `by=`, but the "
                f"table has neither; columns are {list(table.columns)}."
            )
        if by is None:
            raw = _group_weights(table, 4.0 if hard is None else hard, easy)
        else:
            if hard is not None:
                raise ValueError(
                    "Expected argument `hard` only for per-group weights of a split table, but `by` "
                    f"is {by!r}: score weights come from `mode`, `gamma` and `temperature`."
                )
            raw = _score_weights(hardness(table, by, hard_when=hard_when), mode, gamma, temperature, f"column {by!r}")
    else:
        if by is not None or hard is not None:
            raise ValueError(
                "Expected `by` and `hard` only with a pandas DataFrame `source`, but got a "
                f"{type(source).__name__}; pass the hardness values themselves."
            )
        h = _as_1d(source, "source")
        device = h.device
        raw = _score_weights(h, mode, gamma, temperature, "`source`")

    prev: Tensor | None = None
    if previous is not None:
        prev = _as_1d(previous, "previous").to(device)
        if prev.numel() != raw.numel():
            raise ValueError(
                f"Expected argument `previous` to have {raw.numel()} entries like the weights, but got {prev.numel()}."
            )
        _check_raw(prev, "`previous`")
    lo = max(floor, 1.0 / max_ratio if max_ratio is not None else 0.0)
    if table is not None:  # dataset order from here on, like `previous` and `labels`
        raw = _dataset_order(raw, table)
    label_tensor = _labels_of(table, labels, raw.numel())
    if balance == "auto":
        balance = "label" if label_tensor is not None else None
    if balance is None:
        w = _normalise_smooth_floor(raw, prev, momentum, lo)
    else:
        w = _balanced(raw, prev, momentum, lo, _balance_groups(balance, table, label_tensor, raw.numel()).to(device))
    if label_tensor is not None and balance != "label":
        hard_mask = _hard_mask(table, w)
        _warn_collapse(label_tensor, hard_mask)
    return w.to(dtype)


def _normalise_smooth_floor(
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


def _balance_groups(balance: str, table: pd.DataFrame | None, labels: Tensor | None, n: int) -> Tensor:
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
    positive = _equals(table, "polarity", "positive")
    if "index" in table.columns:
        ordered = np.empty_like(positive)
        ordered[table["index"].to_numpy()] = positive
        positive = ordered
    return torch.from_numpy(positive.astype(np.int64))


def _balanced(raw: Tensor, prev: Tensor | None, momentum: float, lo: float, groups: Tensor) -> Tensor:
    """Steps 2-4 within every group, then equal total weight per group, then the largest weight 1."""
    w = _normalise_smooth_floor(raw, prev, momentum, lo, groups)
    totals = torch.zeros(int(groups.max()) + 1, dtype=w.dtype, device=w.device).scatter_add_(0, groups, w)
    w = w / torch.where(totals > 0, totals, 1.0)[groups]
    return w / w.max()


def _check_balance(balance: Any) -> None:
    """Raise ``ValueError`` unless ``balance`` is ``None`` or one of :data:`BALANCE_MODES`."""
    if balance is not None and balance not in BALANCE_MODES:
        raise ValueError(f"Expected argument `balance` to be None or one of {BALANCE_MODES}, but got {balance!r}.")


def _check_options(
    mode: str,
    gamma: float,
    temperature: float,
    floor: float,
    max_ratio: float | None,
    momentum: float,
    dtype: torch.dtype,
) -> None:
    if mode not in WEIGHT_MODES:
        raise ValueError(f"Expected argument `mode` to be one of {WEIGHT_MODES}, but got {mode!r}.")
    if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"Expected argument `gamma` to be a finite number > 0, but got {gamma!r}.")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"Expected argument `temperature` to be a finite number > 0, but got {temperature!r}.")
    if not (isinstance(floor, (int, float)) and 0.0 <= floor <= 1.0):
        raise ValueError(f"Expected argument `floor` to be a number in [0, 1], but got {floor!r}.")
    if max_ratio is not None and not (isinstance(max_ratio, (int, float)) and max_ratio >= 1.0):
        raise ValueError(f"Expected argument `max_ratio` to be None or a number >= 1, but got {max_ratio!r}.")
    if not (isinstance(momentum, (int, float)) and 0.0 <= momentum <= 1.0):
        raise ValueError(f"Expected argument `momentum` to be a number in [0, 1], but got {momentum!r}.")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"Expected argument `dtype` to be a floating torch dtype, but got {dtype!r}.")


def _as_1d(values: Any, name: str) -> Tensor:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64)
    if isinstance(values, Tensor):
        t = values.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"Expected argument `{name}` to be a DataFrame, tensor, array or sequence of numbers, "
                f"but got {type(values).__name__}."
            ) from err
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"Expected argument `{name}` to hold real numbers, but got dtype {t.dtype}.")
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"Expected argument `{name}` to have shape (N,) with N >= 1, but got shape {tuple(t.shape)}.")
    t = t.to(torch.float64)
    _check_finite(t, f"`{name}`", None)
    return t


def _check_finite(values: Tensor, what: str, table: pd.DataFrame | None) -> None:
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        rows = bad.nonzero()[:5, 0].tolist()
        where = f"rows {rows}" if table is None else f"rows {rows} (index {table.index[rows].tolist()})"
        raise ValueError(f"Expected {what} to be finite (no NaN or inf), but {where} hold {values[rows].tolist()}.")


def _check_raw(raw: Tensor, what: str) -> None:
    _check_finite(raw, f"the weights from {what}", None)
    neg = raw < 0
    if bool(neg.any()):
        rows = neg.nonzero()[:5, 0].tolist()
        raise ValueError(f"Expected non-negative weights from {what}, but rows {rows} give {raw[rows].tolist()}.")
    if not bool((raw > 0).any()):
        raise ValueError(f"Expected at least one positive weight from {what}, but all weights are zero.")


def _score_weights(h: Tensor, mode: str, gamma: float, temperature: float, what: str) -> Tensor:
    if mode == "power":
        neg = h < 0
        if bool(neg.any()):
            rows = neg.nonzero()[:5, 0].tolist()
            raise ValueError(
                f"Expected non-negative hardness from {what} for mode='power', but rows {rows} give "
                f"{h[rows].tolist()}. Use mode='rank' or mode='softmax' for scores of any sign."
            )
        raw = h**gamma
    elif mode == "softmax":
        raw = torch.exp((h - h.max()) / temperature)
    else:
        raw = _percentile_rank(h) ** gamma
    _check_raw(raw, what)
    return raw


def _percentile_rank(h: Tensor) -> Tensor:
    """Average rank of each value divided by ``N``, in ``(0, 1]`` (ties share their mean rank)."""
    n = h.numel()
    sorted_h, order = torch.sort(h, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_h, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    mean_rank = ends - (counts.to(torch.float64) - 1.0) / 2.0  # ranks are 1-based
    ranks = torch.empty(n, dtype=torch.float64, device=h.device)
    ranks[order] = mean_rank[inverse]
    return ranks / n


def _lookup(values: float | Mapping[str, float], name: str, table: pd.DataFrame, difficulty: str) -> np.ndarray:
    """The ``name`` weight (``hard`` or ``easy``) of every row, by polarity or group when ``values`` is a mapping."""
    n = len(table)
    if not isinstance(values, Mapping):
        if not (isinstance(values, (int, float)) and math.isfinite(values) and values >= 0):
            raise ValueError(f"Expected argument `{name}` to be a finite number >= 0 or a mapping, but got {values!r}.")
        return np.full(n, float(values))
    if "polarity" not in table.columns:
        raise ValueError(
            f"Expected a `polarity` column (from hm.split) to weigh by the mapping `{name}`, but the "
            f"table has columns {list(table.columns)}."
        )
    out = np.full(n, np.nan)
    for key, value in values.items():
        pol = key.removeprefix(f"{difficulty}_")
        if pol not in POLARITIES or (key != pol and key not in GROUPS):
            raise ValueError(
                f"Expected the keys of `{name}` to be polarities {POLARITIES} or groups "
                f"{tuple(g for g in GROUPS if g.startswith(difficulty))}, but got {key!r}."
            )
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"Expected `{name}[{key!r}]` to be a finite number >= 0, but got {value!r}.")
        out[_equals(table, "polarity", pol)] = float(value)
    return out


def _equals(table: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """Bool array ``(N,)`` in row order: ``table[column] == value``, for categorical or string columns alike."""
    return (table[column] == value).to_numpy(dtype=bool, copy=True)


def _group_weights(table: pd.DataFrame, hard: float | Mapping[str, float], easy: float | Mapping[str, float]) -> Tensor:
    unknown = ~table["difficulty"].isin(("hard", "easy")).to_numpy(dtype=bool)
    if unknown.any():
        rows = np.flatnonzero(unknown)[:5].tolist()
        raise ValueError(
            f"Expected `difficulty` to be 'hard' or 'easy', but rows {rows} hold "
            f"{table['difficulty'].iloc[rows].astype(str).tolist()}."
        )
    is_hard = _equals(table, "difficulty", "hard")
    raw = np.where(is_hard, _lookup(hard, "hard", table, "hard"), _lookup(easy, "easy", table, "easy"))
    missing = np.isnan(raw)
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"Expected the mappings `hard`/`easy` to cover every polarity in the table, but rows {rows} "
            f"(polarity {table['polarity'].astype(str).to_numpy()[rows].tolist()}) have no weight."
        )
    out = torch.from_numpy(raw)
    _check_raw(out, "`hard` and `easy`")
    return out


def _dataset_order(w: Tensor, table: pd.DataFrame) -> Tensor:
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


def _labels_of(table: pd.DataFrame | None, labels: Any, n: int) -> Tensor | None:
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


def _hard_mask(table: pd.DataFrame | None, w: Tensor) -> Tensor:
    if table is not None and "difficulty" in table.columns:
        hard = _equals(table, "difficulty", "hard")
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


def _warn_collapse(labels: Tensor, hard: Tensor) -> None:
    num_hard = int(hard.sum())
    if num_hard < _COLLAPSE_MIN_HARD:
        return
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
        warnings.warn(
            f"The hard set ({num_hard} samples) collapses onto class(es) {top}: they hold {share:.0%} of the hard "
            f"samples but only {data_share:.0%} of the data, so sampling by these weights trains mostly on them. "
            "Consider a per-class threshold (hm.split(..., threshold='per_class')), per-group weights, or a higher "
            "`floor`.",
            HardSetCollapseWarning,
            stacklevel=3,
        )
