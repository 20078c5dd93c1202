"""Confusion, precision, recall and F1 of the positive class, and the threshold trade-off.

Positive and negative come from the ground truth (``label``); predicted positive comes from the model (``pred``, or
the probability of the positive class against a decision threshold in :func:`threshold_sweep`).

- precision = TP / (TP + FP): of the samples called positive, how many are.
- recall = TP / (TP + FN): of the real positives, how many were found.
- F1 = 2 P R / (P + R), their harmonic mean.

A ratio whose denominator is zero (no predicted positives, say) is reported as 0.0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis.splitting import positive_classes
from hardmine.core import validate
from hardmine.core.columns import prob_columns

__all__ = ["confusion", "positive_prob", "precision_recall_f1", "sweep_from_counts", "threshold_sweep"]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _prf(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | int]:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "support": int(tp + fn),
    }


def _positives(table: pd.DataFrame, positive: int | Iterable[int] | None) -> list[int]:
    """The positive classes, or a ValueError asking for them (a multi-class table without ``positive``)."""
    classes = positive_classes(table, positive, required=True)
    if classes is None:  # required=True raises first; this keeps the type exact
        raise ValueError("Expected argument `positive` to name the class or classes of interest.")
    return classes


def _require(table: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame for {what}, but got {type(table).__name__}.")
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {missing}, which `table` lacks (it has {list(table.columns)}).")


def precision_recall_f1(table: pd.DataFrame, *, positive: int | Iterable[int] | None = None) -> dict[str, float | int]:
    """Precision, recall, F1 and accuracy of the model's predictions for the positive class (one-vs-rest).

    Args:
        table: a score table (``label`` and ``pred`` columns).
        positive: the positive class or classes; defaults to the table's split settings, or 1 for binary tasks.

    Returns:
        A dict with ``tp``, ``fp``, ``fn``, ``tn``, ``precision``, ``recall``, ``f1``, ``accuracy`` and
        ``support`` (the number of real positives).

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 0, 0], "pred": [1, 0, 1, 0]})
        >>> m = precision_recall_f1(t)
        >>> m["precision"], m["recall"], m["f1"]
        (0.5, 0.5, 0.5)
    """
    _require(table, ("label", "pred"), "precision_recall_f1")
    classes = _positives(table, positive)
    actual = np.isin(table["label"].to_numpy(), classes)
    called = np.isin(table["pred"].to_numpy(), classes)
    return _prf(
        int(np.sum(actual & called)),
        int(np.sum(~actual & called)),
        int(np.sum(actual & ~called)),
        int(np.sum(~actual & ~called)),
    )


def confusion(
    table: pd.DataFrame, *, positive: int | Iterable[int] | None = None, by_class: bool = False
) -> pd.DataFrame:
    """The confusion matrix: ground truth in rows, prediction in columns, counts in cells.

    Args:
        table: a score table (``label`` and ``pred`` columns).
        positive: the positive class or classes for the 2 x 2 positive/negative matrix; defaults to the table's
            split settings, or 1 for binary tasks.
        by_class: return the ``C x C`` matrix over classes instead (``positive`` is then not needed).

    Returns:
        A DataFrame of int64 counts; the 2 x 2 form has rows ``positive``/``negative`` (ground truth, index name
        ``"ground truth"``) and the same columns (prediction, columns name ``"predicted"``).

    Example:
        >>> t = pd.DataFrame({"label": [1, 1, 1, 0], "pred": [1, 1, 0, 1]})
        >>> confusion(t).values.tolist()
        [[2, 1], [1, 0]]
    """
    _require(table, ("label", "pred"), "confusion")
    labels = table["label"].to_numpy()
    preds = table["pred"].to_numpy()
    if by_class:
        classes = np.union1d(labels, preds)
        codes = {int(c): i for i, c in enumerate(classes)}
        mat = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(mat, (np.searchsorted(classes, labels), np.searchsorted(classes, preds)), 1)
        out = pd.DataFrame(
            mat, index=pd.Index(list(codes), name="ground truth"), columns=pd.Index(list(codes), name="predicted")
        )
        return out
    m = precision_recall_f1(table, positive=positive)
    mat = np.array([[m["tp"], m["fn"]], [m["fp"], m["tn"]]], dtype=np.int64)
    return pd.DataFrame(
        mat,
        index=pd.Index(["positive", "negative"], name="ground truth"),
        columns=pd.Index(["positive", "negative"], name="predicted"),
    )


def positive_prob(table: pd.DataFrame, *, positive: int | Iterable[int] | None = None) -> np.ndarray:
    """Each sample's probability of the positive class (summed over the positive classes), float64 ``(N,)``.

    Uses the ``prob_<c>`` columns when the table has them (``hm.score(..., keep_probs=True)``); for a binary task
    (positive class 1, labels in ``{0, 1}``) it is recovered from ``label_prob`` alone.

    Example:
        >>> positive_prob(pd.DataFrame({"label": [1, 0], "label_prob": [0.9, 0.8]})).round(3).tolist()
        [0.9, 0.2]
    """
    classes = _positives(table, positive)
    pcols = prob_columns(table)
    if pcols:
        have = {int(c[5:]) for c in pcols}
        missing = [c for c in classes if c not in have]
        if missing:
            raise ValueError(f"The positive classes {missing} have no prob_<class> column (the table has {pcols}).")
        return table[[f"prob_{c}" for c in classes]].to_numpy(dtype=np.float64).sum(axis=1)
    labels = table["label"].to_numpy()
    if classes == [1] and np.isin(labels, (0, 1)).all() and "label_prob" in table.columns:
        lp = table["label_prob"].to_numpy(dtype=np.float64)
        return np.where(labels == 1, lp, 1.0 - lp)
    raise ValueError(
        "The probability of the positive class is not in this table: score with `hm.score(..., keep_probs=True)` "
        "for multi-class tasks (binary tasks with positive=1 need only `label_prob`)."
    )


def threshold_sweep(
    scores: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    thresholds: Sequence[float] | np.ndarray | int | None = None,
) -> pd.DataFrame:
    """Precision, recall and F1 of the positive class at each decision threshold: the threshold trade-off.

    A sample is *called positive* at threshold ``t`` when its probability of the positive class is ``>= t``.
    Raising ``t`` trades recall for precision; F1 picks a balance. The row of best F1 is marked ``best`` (the lowest
    such threshold on ties), and its threshold and F1 are also in ``sweep.attrs["best_threshold"]`` and
    ``sweep.attrs["best_f1"]``.

    Args:
        scores: a score table; see :func:`positive_prob` for which columns it needs.
        positive: the positive class or classes.
        thresholds: the thresholds to try: a sequence, an int ``k`` for ``k`` evenly spaced values in ``[0, 1]``,
            or ``None`` for 101 values ``0.00, 0.01, ..., 1.00``.

    Returns:
        A DataFrame with columns ``threshold``, ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``, ``tn``,
        ``best``, one row per threshold in increasing order.

    Example:
        >>> s = pd.DataFrame({"label": [1, 1, 0, 0], "label_prob": [0.9, 0.6, 0.7, 0.9]})
        >>> sweep = threshold_sweep(s, thresholds=[0.2, 0.5, 0.8])
        >>> sweep[["threshold", "precision", "recall"]].round(3).values.tolist()
        [[0.2, 0.667, 1.0], [0.5, 1.0, 1.0], [0.8, 1.0, 0.5]]
        >>> sweep.attrs["best_threshold"]
        0.5
    """
    _require(scores, ("label",), "threshold_sweep")
    classes = _positives(scores, positive)
    p = positive_prob(scores, positive=classes)
    actual = np.isin(scores["label"].to_numpy(), classes)
    if thresholds is None:
        ts = np.round(np.linspace(0.0, 1.0, 101), 2)
    elif isinstance(thresholds, (int, np.integer, bool)):
        ts = np.linspace(0.0, 1.0, validate.integer("thresholds", thresholds, min=2))
    else:
        ts = np.sort(np.asarray(thresholds, dtype=np.float64))
        if ts.ndim != 1 or len(ts) == 0 or not np.isfinite(ts).all():
            raise ValueError("Expected argument `thresholds` to be a non-empty 1-D sequence of finite numbers.")
    # Called positive at t: p >= t. Count with one sort instead of a pass per threshold.
    order = np.sort(p)
    called = len(p) - np.searchsorted(order, ts, side="left")
    pos_sorted = np.sort(p[actual])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, ts, side="left")
    return sweep_from_counts(ts, called, tp, int(actual.sum()), len(p), classes)


def sweep_from_counts(
    ts: np.ndarray, called: np.ndarray, tp: np.ndarray, num_positive: int, num_samples: int, classes: Any
) -> pd.DataFrame:
    """The threshold-sweep table from the counts at each threshold: called positive and true positives.

    Shared by :func:`threshold_sweep` and the out-of-core sweep of :class:`hardmine.ScoreDataset`. A ratio
    whose denominator is zero is 0.0; the row of the best F1 is marked (``best``) and named in ``attrs``.

    Example:
        >>> sweep = sweep_from_counts(np.array([0.2, 0.8]), np.array([3, 1]), np.array([2, 1]), 2, 4, [1])
        >>> sweep[["precision", "recall", "f1"]].round(3).to_numpy().tolist()
        [[0.667, 1.0, 0.8], [1.0, 0.5, 0.667]]
    """
    fp = called - tp
    fn = num_positive - tp
    tn = num_samples - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(called > 0, tp / np.maximum(called, 1), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f1 = np.where(
            precision + recall > 0,
            2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1),
            0.0,
        )
    sweep = pd.DataFrame(
        {
            "threshold": ts,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "tp": tp.astype(np.int64),
            "fp": fp.astype(np.int64),
            "fn": fn.astype(np.int64),
            "tn": tn.astype(np.int64),
        }
    )
    best = int(np.argmax(f1))
    sweep["best"] = np.arange(len(ts)) == best
    sweep.attrs["best_threshold"] = float(ts[best])
    sweep.attrs["best_f1"] = float(f1[best])
    sweep.attrs["positive"] = classes
    return sweep
