"""Sampling weights of an out-of-core score table: :func:`hardmine.weights` in grouped DuckDB passes, written streaming.

:func:`write_weights` runs steps 1, 2, 4 and 5 of the in-memory weights (see :mod:`hardmine.feedback.weighting`):

1. the raw weight ``r`` of each row, a SQL expression (per group of a split, or ``h ** gamma`` /
   ``exp((h - max h) / temperature)`` of the hardness of a score column);
2. and 4. divided by the largest raw weight and floored at ``lo = max(floor, 1 / max_ratio)``, within each class (or
   polarity) when balanced;
5. balanced: each class divided by its total weight, then everything by the largest weight, so every class carries
   the same total.

Passes: one ``GROUP BY`` class for the raw weights' range per class, one more for the classes' totals when balanced,
then one streamed write. Memory holds one number per class, never one per row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hardmine.analysis.bigtable_sql import FETCH_ROWS, as_double, literal, quote, string
from hardmine.core import validate
from hardmine.core._files import atomic_path
from hardmine.core.columns import GROUPS, POLARITIES, harder_when

if TYPE_CHECKING:
    from hardmine.analysis.bigtable import ScoreDataset

__all__ = ["write_weights"]

PathLike = str | os.PathLike[str]
_MODES = ("power", "softmax")
_BALANCE = ("label", "polarity", "auto", None)
_DENSE_LOOKUP = 1 << 20  # integer keys spanning at most this many values are looked up in a list, not a CASE


def write_weights(
    ds: ScoreDataset,
    out: PathLike,
    *,
    hard: float | Mapping[str, float] | None = None,
    easy: float | Mapping[str, float] = 1.0,
    by: str | None = None,
    mode: Literal["power", "softmax"] = "power",
    gamma: float = 1.0,
    temperature: float = 0.2,
    floor: float = 0.05,
    max_ratio: float | None = None,
    hard_when: Literal["lower", "higher"] | None = None,
    balance: Literal["label", "polarity", "auto"] | None = "auto",
    column: str = "weight",
) -> Path:
    """Per-sample sampling weights as :func:`hardmine.weights` computes them, written out of core.

    Steps 1, 2, 4 and 5 of the in-memory weights (raw weight, divide by the largest, floor, balance), with the
    same default ``balance="auto"``: every class gets the same total weight when the table has a ``label``
    column. ``previous`` and ``mode="rank"`` are in-memory only, and so is the class-collapse warning. Two or
    three grouped passes and one streamed write: see the module doc.

    Args:
        ds: the dataset; ``ds.weights(out, ...)`` calls this function.
        out: ``*.npy``: a float32 array ``(N,)`` in dataset-index order (``index`` must be ``0 .. N-1``, each
            once), for ``np.load(out, mmap_mode="r")`` and :class:`hardmine.ShardedSampler`;
            ``*.parquet``: columns ``index`` and ``column``, in the dataset's row order.
        hard: weight of a hard row of a split dataset (default 4.0), or a mapping keyed by polarity or group.
        easy: weight of an easy row, or a mapping like ``hard``.
        by: score column to weigh by instead of the split (``"label_prob"``, ``"loss"`` ...).
        mode: ``"power"`` (``h ** gamma``) or ``"softmax"`` (``exp((h - max h) / temperature)``).
        gamma: exponent for ``"power"``, > 0.
        temperature: for ``"softmax"``, > 0.
        floor: smallest weight relative to the largest (within a class when balanced), in ``[0, 1]``.
        max_ratio: cap on ``max(w) / min(w)`` (within a class when balanced), >= 1.
        hard_when: override which direction of ``by`` is harder.
        balance: ``"label"``, ``"polarity"`` (a split with a positive class), ``None``, or ``"auto"``:
            ``"label"`` when the table has a ``label`` column, else ``None``.
        column: the weight column's name in a Parquet output.

    Returns:
        The path written.

    Raises:
        ValueError: bad options, a missing ``by`` column, negative or all-zero raw weights, a ``balance`` the
            table cannot give (no ``label``, no ``polarity``), or (``.npy``) an ``index`` column that is not a
            permutation of ``0 .. N-1``.

    Example:
        >>> import tempfile, pandas as pd, hardmine as hm
        >>> d = tempfile.mkdtemp()
        >>> t = pd.DataFrame({"index": [0, 1, 2, 3], "label": [0, 0, 0, 1],
        ...                   "label_prob": np.array([0.9, 0.2, 0.8, 0.7], dtype=np.float32)})
        >>> _ = hm.to_parquet(t, f"{d}/s.parquet")
        >>> ds = hm.open_scores(d).split(threshold=0.5)
        >>> np.load(ds.weights(f"{d}/w.npy", hard=4.0, balance=None)).tolist()
        [0.25, 1.0, 0.25, 0.25]
        >>> np.load(ds.weights(f"{d}/w.npy", hard=4.0)).astype(float).round(4).tolist()  # per class: sum 1
        [0.1667, 0.6667, 0.1667, 1.0]
    """
    dest = Path(out)
    if dest.suffix.lower() not in (".npy", ".parquet"):
        raise ValueError(f"Expected argument `out` to end in .npy or .parquet, but got {str(dest)!r}.")
    if mode == "rank":
        raise ValueError(
            "Expected argument `mode` to be 'power' or 'softmax' out of core, but got 'rank' ('rank' needs the whole "
            "table in memory: use hm.weights)."
        )
    validate.choice("mode", mode, _MODES)
    gamma = validate.number("gamma", gamma, min=0, min_open=True)
    temperature = validate.number("temperature", temperature, min=0, min_open=True)
    floor = validate.fraction("floor", floor)
    max_ratio = validate.optional(validate.number, "max_ratio", max_ratio, min=1)
    validate.choice("balance", balance, _BALANCE)
    lo = max(floor, 1.0 / max_ratio if max_ratio is not None else 0.0)
    raw = _raw_weight(ds, hard, easy, by, mode, gamma, temperature, hard_when)
    key = _balance_key(ds, balance)
    rows = f"SELECT {quote('index')}, {raw} AS r, {key or '0'} AS g FROM ({ds._select()})"
    stats = ds._rows(f"SELECT g, min(r), max(r), count(*) FILTER (WHERE r IS NULL) FROM ({rows}) GROUP BY 1")
    if not stats:
        raise ValueError("Expected at least one row, but the dataset is empty.")
    gaps = sum(s[3] for s in stats)
    if gaps:
        raise ValueError(
            f"Expected the mappings `hard`/`easy` to cover every polarity or group, but {gaps} rows have no weight."
        )
    low, top = min(s[1] for s in stats), max(s[2] for s in stats)
    if low < 0 or not math.isfinite(low) or not math.isfinite(top):
        raise ValueError(f"Expected non-negative finite raw weights, but they range over [{low}, {top}].")
    if top <= 0:
        raise ValueError("Expected at least one positive raw weight, but all are zero.")
    if key is None:
        w = f"greatest(r / {literal(top)}, {literal(lo)})"
    else:
        w = _balanced(ds, rows, {s[0]: float(s[2]) for s in stats}, lo)
    query = f"SELECT {quote('index')}, CAST({w} AS FLOAT) AS {quote(column)} FROM ({rows})"
    if dest.suffix.lower() == ".parquet":
        with atomic_path(dest, suffix=".parquet.tmp") as tmp:
            target = str(tmp).replace("'", "''")
            ds._con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
        return dest
    return _write_npy(ds, query, dest)


def _balanced(ds: ScoreDataset, rows: str, tops: dict[Any, float], lo: float) -> str:
    """SQL of the balanced weight of ``rows`` (columns ``r``, ``g``), given each group's largest raw weight.

    As :func:`hardmine.feedback.weighting._balanced`: ``w = max(r / top_g, lo)`` (a group whose raw weights are all
    zero is uniform, 1, when ``lo > 0``), then ``w / total_g``, then divided by the largest of those, which is the
    largest ``max_g(w) / total_g``.
    """
    scale = {g: (t if t > 0 else 1.0) for g, t in tops.items()}
    w = f"greatest(r / {_lookup('g', scale)}, {literal(lo)})"
    zero = {g: (1.0 if t <= 0 else 0.0) for g, t in tops.items()}
    if lo > 0 and any(zero.values()):
        w = f"(CASE WHEN {_lookup('g', zero)} > 0 THEN 1.0::DOUBLE ELSE {w} END)"
    per = ds._rows(f"SELECT g, sum(w), max(w) FROM (SELECT g, {w} AS w FROM ({rows})) GROUP BY 1")
    totals = {g: (float(t) if t > 0 else 1.0) for g, t, _ in per}
    largest = max(float(m) / totals[g] for g, _, m in per)
    return f"(({w}) / {_lookup('g', totals)}) / {literal(largest)}"


def _lookup(key: str, values: dict[Any, float]) -> str:
    """SQL: ``values[key]``; a list index for integer keys in a short range (O(1) a row), else a ``CASE``."""
    keys = list(values)
    if keys and all(isinstance(k, (int, np.integer)) for k in keys):
        first, last = int(min(keys)), int(max(keys))
        if last - first < _DENSE_LOOKUP:
            items = ", ".join(literal(values.get(k, 1.0)) for k in range(first, last + 1))
            return f"([{items}][{key} - {first} + 1])"
    cases = " ".join(
        f"WHEN {k if isinstance(k, (int, np.integer)) else string(str(k))} THEN {literal(v)}" for k, v in values.items()
    )
    return f"(CASE {key} {cases} END)"


def _balance_key(ds: ScoreDataset, balance: str | None) -> str | None:
    """The SQL column that weights are balanced over: ``label``, ``polarity``, or ``None`` for no balancing."""
    if balance == "auto":
        balance = "label" if "label" in ds.columns else None
    if balance is None:
        return None
    if balance == "label":
        if "label" not in ds.columns:
            raise ValueError(
                f"Expected a `label` column with balance='label', but the dataset has none ({ds._describe()}): "
                "use balance=None."
            )
        return "label"
    if ds._split is None or ds._split.positive is None:
        raise ValueError(
            "Expected a split dataset with a positive class (a `polarity` column, from ds.split(...)) with "
            f"balance='polarity', but got {'an unsplit dataset' if ds._split is None else 'an easy/hard-only split'}."
        )
    return "polarity"


def _write_npy(ds: ScoreDataset, query: str, dest: Path) -> Path:
    """Stream ``(index, weight)`` rows into a float32 ``.npy`` memmap in dataset-index order, atomically."""
    n = len(ds)
    lo_i, hi_i = ds._one(f"SELECT min({quote('index')}), max({quote('index')}) FROM {ds._source}")
    if n and (lo_i != 0 or hi_i != n - 1):
        raise ValueError(
            f"Expected the `index` column to be 0 .. {n - 1} for a .npy array in dataset-index order, but it "
            f"ranges over [{lo_i}, {hi_i}]; write a .parquet instead."
        )
    with atomic_path(dest, suffix=".npy.tmp") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n,))
        arr[:] = np.nan
        for batch in ds._con.sql(query).to_arrow_reader(FETCH_ROWS):
            arr[batch.column(0).to_numpy()] = batch.column(1).to_numpy()
        for start in range(0, n, FETCH_ROWS):  # N rows, every slot written: index is a permutation
            gap = np.isnan(arr[start : start + FETCH_ROWS])
            if gap.any():
                raise ValueError(
                    f"Expected the `index` column to hold every value 0 .. {n - 1} once, but "
                    f"{start + int(np.flatnonzero(gap)[0])} is missing."
                )
        arr.flush()
        del arr
    return dest


def _raw_weight(
    ds: ScoreDataset,
    hard: float | Mapping[str, float] | None,
    easy: float | Mapping[str, float],
    by: str | None,
    mode: str,
    gamma: float,
    temperature: float,
    hard_when: Literal["lower", "higher"] | None,
) -> str:
    """SQL of step 1, the raw weight: per group of a split, or from the hardness of the score column ``by``."""
    if by is None:
        split = ds._split_or_raise("weights() without `by`")
        grouped = split.positive is not None
        hard_sql = _group_case(4.0 if hard is None else hard, "hard", grouped)
        return f"(CASE WHEN difficulty = 'hard' THEN {hard_sql} ELSE {_group_case(easy, 'easy', grouped)} END)"
    if hard is not None:
        raise ValueError(f"Expected argument `hard` only for per-group weights of a split dataset, but `by` is {by!r}.")
    ds._require(by, what="weights()")
    direction = harder_when(by) if hard_when is None else validate.choice("hard_when", hard_when, ("lower", "higher"))
    v = as_double(by)
    if direction == "higher":
        h = v
    else:
        h = f"((1.0::DOUBLE - {v}) / 2.0::DOUBLE)" if by == "margin" else f"(1.0::DOUBLE - {v})"
    if mode == "power":
        low = ds._one(f"SELECT min({h}) FROM {ds._source}")[0]
        if low is not None and low < 0:
            raise ValueError(f"Expected non-negative hardness for mode='power', but the smallest is {low}.")
        return f"pow({h}, {literal(gamma)})"
    top = ds._one(f"SELECT max({h}) FROM {ds._source}")[0]
    return f"exp(({h} - {literal(top)}) / {literal(temperature)})"


def _group_case(value: float | Mapping[str, float], what: str, has_groups: bool) -> str:
    """A SQL weight for one difficulty: a number, or a mapping keyed by polarity or group name."""
    if isinstance(value, Mapping):
        keys = list(value)
        if not has_groups:
            raise ValueError(
                f"Expected argument `{what}` to be a number for a split without a positive class (easy/hard only), "
                f"but got a mapping keyed by {keys}."
            )
        cases = " ".join(f"WHEN {string(k)} THEN {literal(v)}" for k, v in value.items())
        if keys and all(k in POLARITIES for k in keys):
            return f"(CASE polarity {cases} END)"
        if keys and all(k in GROUPS for k in keys):
            return f"(CASE {quote('group')} {cases} END)"
        raise ValueError(
            f"Expected argument `{what}` as a mapping to be keyed by {list(POLARITIES)} or by group names, but got "
            f"{keys}."
        )
    return literal(validate.number(what, value, min=0))
