"""Per-sample sampling weights from a split table or from a score: the bridge from ``hm.split`` to ``HardSampler``.

Every weight goes through the same four steps (all in float64, returned in ``dtype``):

1. **raw weight** ``r_i``, from one of two sources:

   - a split table (``difficulty`` column, from :func:`hardmine.split`): ``r_i = hard_weight`` for hard rows and
     ``r_i = easy_weight`` for easy rows; either may be a mapping keyed by polarity (``"positive"``,
     ``"negative"``) or group name (``"hard_positive"``, ...) to weigh each group on its own. Both must be finite
     and ``>= 0`` (the same rule as :class:`hardmine.HardMiner`'s ``hard_weight``/``easy_weight``): a zero switches
     a group off before the floor of step 4, which still keeps every sample drawable unless ``floor=0``; rows that
     all weigh zero are refused;
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
   ``floor=0`` without ``max_ratio`` lets a weight be zero; a floor below the smallest number of ``dtype`` gives
   that smallest positive number, not 0.
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

Class collapse: when the labels are known (a ``label`` column, or ``labels=``), :func:`sample_weights` warns with
:class:`HardSetCollapseWarning` when the hard set (the ``difficulty == "hard"`` rows, or without that column the
heaviest 10% of samples) holds at least 10 samples and collapses onto a few classes: the fewest classes that hold 80%
of the hard set are at most a fifth of the classes (at least one) and make up less than half of the data. Sampling
such weights trains mostly on those classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hardmine.core import validate
from hardmine.core._tensors import real_tensor
from hardmine.core.columns import GROUPS, POLARITIES, harder_when
from hardmine.feedback._weight_steps import (
    balance_groups,
    balanced,
    collapse_message,
    dataset_order,
    equals,
    hard_mask,
    labels_of,
    normalise_smooth_floor,
)

__all__ = [
    "BALANCE_MODES",
    "WEIGHT_MODES",
    "Balance",
    "HardSetCollapseWarning",
    "WeightMode",
    "hardness",
    "sample_weights",
    "weights",
]

WeightMode = Literal["power", "softmax", "rank"]
WEIGHT_MODES: tuple[str, ...] = get_args(WeightMode)
Balance = Literal["label", "polarity"]
#: What ``balance=`` may give equal total weight to: every class, or positives and negatives.
BALANCE_MODES: tuple[str, ...] = get_args(Balance)

_HIGHER_IS_HARDER_OK = ("loss", "entropy", "variability", "forgetting")
#: The keywords of :func:`sample_weights` renamed in 0.4.0, and their new names.
_RENAMED_KEYWORDS: dict[str, str] = {"hard": "hard_weight", "easy": "easy_weight"}


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
    validate.choice("hard_when", hard_when, ("lower", "higher", None))
    direction = hard_when or harder_when(by)
    if direction == "higher":
        return values
    if by == "margin":
        return (1.0 - values) / 2.0
    return 1.0 - values


def sample_weights(
    source: pd.DataFrame | Tensor | np.ndarray | Sequence[float],
    *,
    hard_weight: float | Mapping[str, float] | None = None,
    easy_weight: float | Mapping[str, float] = 1.0,
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
    **renamed: Any,
) -> Tensor:
    """Per-sample sampling weights ``(N,)`` for :class:`hardmine.HardSampler`; formula in the module doc.

    Args:
        source: a split table (``difficulty`` column; ``polarity`` for per-group mappings), a score table with
            ``by=``, or a 1-D tensor, array or sequence of hardness values (larger is harder).
        hard_weight: weight of a hard row of a split table (default 4.0), or a mapping keyed by polarity or group
            name; finite and >= 0. Only for split tables.
        easy_weight: weight of an easy row of a split table, or a mapping like ``hard_weight``; finite and >= 0.
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
        **renamed: ``hard=`` and ``easy=``, the names of ``hard_weight`` and ``easy_weight`` before 0.4.0: still
            accepted for one release, with a DeprecationWarning.

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
        >>> sample_weights(table, hard_weight=4.0, easy_weight=1.0, balance=None)
        tensor([0.2500, 1.0000, 0.2500, 0.2500])
        >>> # (1 - p) ** 2, floored at 0.05
        >>> sample_weights(table, by="label_prob", gamma=2.0, balance=None).round(decimals=4)
        tensor([0.0500, 1.0000, 0.3265, 0.0500])
        >>> sample_weights(table, by="label_prob", mode="rank", balance=None)
        tensor([0.5000, 1.0000, 0.7500, 0.2500])
        >>> sample_weights(table, hard_weight=4.0, easy_weight=1.0, balance="label")  # each label sums to 1.25
        tensor([0.6250, 1.0000, 0.6250, 0.2500])
    """
    hard_weight, easy_weight = _renamed_keywords(renamed, hard_weight, easy_weight)
    _check_options(mode, gamma, temperature, floor, max_ratio, momentum, dtype)
    validate.choice("balance", balance, (*BALANCE_MODES, "auto", None))
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
            raw = _group_weights(table, 4.0 if hard_weight is None else hard_weight, easy_weight)
        else:
            if hard_weight is not None:
                raise ValueError(
                    "Expected argument `hard_weight` only for per-group weights of a split table, but `by` "
                    f"is {by!r}: score weights come from `mode`, `gamma` and `temperature`."
                )
            raw = _score_weights(hardness(table, by, hard_when=hard_when), mode, gamma, temperature, f"column {by!r}")
    else:
        if by is not None or hard_weight is not None:
            raise ValueError(
                "Expected `by` and `hard_weight` only with a pandas DataFrame `source`, but got a "
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
        raw = dataset_order(raw, table)
    label_tensor = labels_of(table, labels, raw.numel())
    if balance == "auto":
        balance = "label" if label_tensor is not None else None
    if balance is None:
        w = normalise_smooth_floor(raw, prev, momentum, lo)
    else:
        w = balanced(raw, prev, momentum, lo, balance_groups(balance, table, label_tensor, raw.numel()).to(device))
    if label_tensor is not None and balance != "label":
        message = collapse_message(label_tensor, hard_mask(table, w))
        if message is not None:
            warnings.warn(message, HardSetCollapseWarning, stacklevel=2)
    out = w.to(dtype)
    if dtype.is_floating_point:  # a positive weight below the dtype's range stays positive, the smallest it can be
        out = torch.where((w > 0) & (out == 0), torch.finfo(dtype).tiny, out)
    return out


def _check_balance(balance: Any) -> None:
    """Raise ``ValueError`` unless ``balance`` is ``None`` or one of :data:`BALANCE_MODES` (the miner's check)."""
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
    validate.choice("mode", mode, WEIGHT_MODES)
    validate.number("gamma", gamma, min=0, min_open=True)
    validate.number("temperature", temperature, min=0, min_open=True)
    validate.fraction("floor", floor)
    validate.optional(validate.number, "max_ratio", max_ratio, min=1, finite=False)
    validate.fraction("momentum", momentum)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"`dtype` must be a floating torch dtype, got {dtype!r}")


def _renamed_keywords(renamed: dict[str, Any], hard_weight: Any, easy_weight: Any) -> tuple[Any, Any]:
    """``hard_weight``, ``easy_weight`` with the old keywords ``hard=``/``easy=`` of 0.3.0 mapped on (and a warning)."""
    values = validate.renamed_keywords(
        "hardmine.sample_weights",
        renamed,
        {"hard_weight": hard_weight, "easy_weight": easy_weight},
        {"hard_weight": None, "easy_weight": 1.0},
        _RENAMED_KEYWORDS,
        stacklevel=4,
    )
    return values["hard_weight"], values["easy_weight"]


def _as_1d(values: Any, name: str) -> Tensor:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=np.float64)
    t = real_tensor(name, values, "a DataFrame, tensor, array or sequence of numbers").detach()
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
        return np.full(n, validate.number(name, values, min=0))
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
        out[equals(table, "polarity", pol)] = validate.number(f"{name}[{key!r}]", value, min=0)
    return out


def _group_weights(table: pd.DataFrame, hard: float | Mapping[str, float], easy: float | Mapping[str, float]) -> Tensor:
    unknown = ~table["difficulty"].isin(("hard", "easy")).to_numpy(dtype=bool)
    if unknown.any():
        rows = np.flatnonzero(unknown)[:5].tolist()
        raise ValueError(
            f"Expected `difficulty` to be 'hard' or 'easy', but rows {rows} hold "
            f"{table['difficulty'].iloc[rows].astype(str).tolist()}."
        )
    is_hard = equals(table, "difficulty", "hard")
    raw = np.where(is_hard, _lookup(hard, "hard_weight", table, "hard"), _lookup(easy, "easy_weight", table, "easy"))
    missing = np.isnan(raw)
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"Expected the mappings `hard_weight`/`easy_weight` to cover every polarity in the table, but rows {rows} "
            f"(polarity {table['polarity'].astype(str).to_numpy()[rows].tolist()}) have no weight."
        )
    out = torch.from_numpy(raw)
    _check_raw(out, "`hard_weight` and `easy_weight`")
    return out


#: The name of :func:`sample_weights` before 0.4.0, for its old import path (``hm.weights`` warns, this does not).
weights = sample_weights
