"""Reports over classes, labels and targets: per-class and multi-label precision/recall/F1, regression errors.

The numbers equal scikit-learn's (``classification_report``, ``balanced_accuracy_score``, ``mean_absolute_error``
...), with a ratio whose denominator is zero reported as 0.0. :func:`hardmine.summary` puts them into its report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis.counts import _ratio, _require

__all__ = [
    "classification_report",
    "loss_quantiles",
    "multilabel_report",
    "multilabel_from_counts",
    "prf_arrays",
    "regression_metrics",
    "report_from_counts",
]


def _mean_columns(table: pd.DataFrame) -> list[str]:
    cols = ("label_prob", "confidence", "margin", "entropy", "loss", "abs_error", "wrong")
    return [c for c in cols if c in table.columns]


def _class_names(table: pd.DataFrame, classes: Sequence[Any] | None, codes: np.ndarray) -> list[Any]:
    """A display name for each class code: ``classes[c]``, else the table's ``label_name``, else the code."""
    if classes is None:
        classes = table.attrs.get("hardmine", {}).get("classes")
    if classes is not None:
        classes = list(classes)
        outside = [int(c) for c in codes if not 0 <= int(c) < len(classes)]
        if outside:
            raise ValueError(
                f"Expected argument `classes` to name every class index of the table, but it has {len(classes)} "
                f"names and the table holds classes {outside}."
            )
        return [str(classes[int(c)]) for c in codes]
    if "label_name" in table.columns:
        names = dict(zip(table["label"].to_numpy().tolist(), table["label_name"].astype(str), strict=True))
        if "pred_name" in table.columns:
            for k, v in zip(table["pred"].to_numpy().tolist(), table["pred_name"].astype(str), strict=True):
                names.setdefault(k, v)
        if all(int(c) in names for c in codes):
            return [names[int(c)] for c in codes]
    return [int(c) for c in codes]


def classification_report(
    table: pd.DataFrame, *, classes: Sequence[Any] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Per-class precision, recall, F1 and support, the ``C x C`` confusion and the averages, as scikit-learn has them.

    The classes are those present in ``label`` or ``pred`` (scikit-learn's ``unique_labels``); a ratio whose
    denominator is zero is 0.0 (``zero_division=0``). ``balanced_accuracy`` is the mean recall over the classes that
    occur in ``label`` (``sklearn.metrics.balanced_accuracy_score``).

    Args:
        table: a score table (``label``, ``pred``; ``difficulty`` adds a ``hard`` count per class).
        classes: names of the class indices (``classes[c]`` names class ``c``); defaults to the names recorded at
            scoring (an ImageFolder's ``classes``), else the table's ``label_name``, else the indices.

    Returns:
        ``(per_class, confusion, averages)``: per_class has one row per class (index: the class name) with ``class``
        (the index), ``support``, ``hard``, ``precision``, ``recall``, ``f1`` and the mean scores; confusion is int64
        with the ground truth in rows; averages holds ``accuracy``, ``balanced_accuracy``, ``macro_precision``,
        ``macro_recall``, ``macro_f1``, ``weighted_precision``, ``weighted_recall``, ``weighted_f1``.

    Example:
        >>> t = pd.DataFrame({"label": [0, 0, 1, 2], "pred": [0, 1, 1, 2]})
        >>> per_class, conf, avg = classification_report(t, classes=["cat", "dog", "fox"])
        >>> per_class["recall"].tolist(), round(avg["macro_f1"], 4)
        ([0.5, 1.0, 1.0], 0.7778)
        >>> conf.loc["cat"].tolist()  # the row of ground truth "cat": predicted cat, dog, fox
        [1, 1, 0]
    """
    _require(table, ("label", "pred"), "classification_report")
    labels = table["label"].to_numpy()
    preds = table["pred"].to_numpy()
    codes = np.union1d(labels, preds).astype(np.int64)
    names = _class_names(table, classes, codes)
    k = len(codes)
    mat = np.zeros((k, k), dtype=np.int64)
    np.add.at(mat, (np.searchsorted(codes, labels), np.searchsorted(codes, preds)), 1)
    label_pos = np.searchsorted(codes, labels)
    hard = None
    if "difficulty" in table.columns:
        is_hard = (table["difficulty"].astype(str) == "hard").to_numpy()
        hard = np.bincount(label_pos, weights=is_hard, minlength=k).astype(np.int64)
    sums = {
        c: np.bincount(label_pos, weights=table[c].to_numpy(dtype=np.float64), minlength=k)
        for c in _mean_columns(table)
    }
    return report_from_counts(mat, codes, names, hard=hard, sums=sums)


def report_from_counts(
    mat: np.ndarray,
    codes: np.ndarray,
    names: Sequence[Any],
    *,
    hard: np.ndarray | None = None,
    sums: Mapping[str, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """:func:`classification_report`'s three results from per-class counts (in memory or out of core).

    Args:
        mat: the ``C x C`` confusion counts, ground truth in rows, classes in the order of ``codes``.
        codes: the class indices, sorted.
        names: the display name of each of ``codes``.
        hard: the hard samples of each class (by label), or ``None`` for a table that was not split.
        sums: per score column, the sum of its values over each class's samples (for the ``mean_<col>`` columns).

    Example:
        >>> per, conf, avg = report_from_counts(np.array([[1, 1], [0, 2]]), np.array([0, 1]), ["a", "b"])
        >>> per["precision"].tolist(), avg["accuracy"]
        ([1.0, 0.6666666666666666], 0.75)
    """
    k = len(codes)
    tp = np.diag(mat).astype(np.float64)
    support = mat.sum(axis=1)
    precision, recall, f1 = prf_arrays(tp, mat.sum(axis=0), support)
    per = pd.DataFrame(
        {"class": codes, "support": support.astype(np.int64)},
        index=pd.Index(list(names), name="class_name"),
    )
    if hard is not None:
        per["hard"] = np.asarray(hard, dtype=np.int64)
    per["precision"] = precision
    per["recall"] = recall
    per["f1"] = f1
    for col, total in (sums or {}).items():
        with np.errstate(divide="ignore", invalid="ignore"):
            per[f"mean_{col}"] = np.where(support > 0, total / np.maximum(support, 1), np.nan)
    conf = pd.DataFrame(
        mat, index=pd.Index(names, name="ground truth"), columns=pd.Index(names, name="predicted"), copy=False
    )
    n = int(support.sum())
    present = support > 0
    averages = {
        "accuracy": _ratio(tp.sum(), n),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_precision": float(precision.mean()) if k else 0.0,
        "macro_recall": float(recall.mean()) if k else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "weighted_precision": _ratio(float((precision * support).sum()), n),
        "weighted_recall": _ratio(float((recall * support).sum()), n),
        "weighted_f1": _ratio(float((f1 * support).sum()), n),
    }
    return per, conf, averages


def _label_matrix(table: pd.DataFrame, prefix: str) -> np.ndarray:
    cols = sorted(
        (c for c in table.columns if isinstance(c, str) and c.startswith(prefix) and c[len(prefix) :].isdigit()),
        key=lambda c: int(c[len(prefix) :]),
    )
    return table[cols].to_numpy(dtype=np.int64)


def multilabel_report(
    table: pd.DataFrame, *, classes: Sequence[Any] | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-label precision, recall, F1 and support, and their micro and macro averages, from a multi-label table.

    Reads the ``target_<c>`` (ground truth, 0/1) and ``pred_<c>`` (prediction at probability 0.5) columns that
    :func:`hardmine.score` writes for ``task="multilabel"``. Ratios with a zero denominator are 0.0, as
    scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)``.

    Example:
        >>> t = pd.DataFrame({"target_0": [1, 0, 1], "target_1": [0, 1, 1], "pred_0": [1, 1, 1], "pred_1": [0, 1, 0]})
        >>> per_label, avg = multilabel_report(t)
        >>> per_label["precision"].round(4).tolist(), avg["micro_recall"]
        ([0.6667, 1.0], 0.75)
    """
    y = _label_matrix(table, "target_")
    p = _label_matrix(table, "pred_")
    if y.shape[1] == 0 or y.shape != p.shape:
        raise ValueError(
            "Expected a multi-label table with matching `target_<c>` and `pred_<c>` columns (hm.score with "
            f"task='multilabel'), but got {y.shape[1]} target and {p.shape[1]} pred columns."
        )
    codes = np.arange(y.shape[1])
    names = [str(classes[int(c)]) for c in codes] if classes is not None else [int(c) for c in codes]
    tp = (y & p).sum(axis=0)
    fp = ((1 - y) & p).sum(axis=0)
    fn = (y & (1 - p)).sum(axis=0)
    hard = None
    if "difficulty" in table.columns:
        hard = (y[(table["difficulty"].astype(str) == "hard").to_numpy()] == 1).sum(axis=0)
    subset = float((y == p).all(axis=1).mean()) if len(y) else 0.0
    hamming = float((y != p).mean()) if y.size else 0.0
    return multilabel_from_counts(tp, fp, fn, names, hard=hard, subset_accuracy=subset, hamming_loss=hamming)


def multilabel_from_counts(
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    names: Sequence[Any],
    *,
    hard: np.ndarray | None = None,
    subset_accuracy: float,
    hamming_loss: float,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`multilabel_report`'s results from per-label counts (in memory or out of core).

    Args:
        tp: true positives of each label.
        fp: false positives of each label.
        fn: false negatives of each label.
        names: the display name of each label.
        hard: the hard samples that carry each label, or ``None`` for a table that was not split.
        subset_accuracy: the share of samples with every label right.
        hamming_loss: the share of (sample, label) pairs predicted wrong.

    Example:
        >>> per, avg = multilabel_from_counts(np.array([2, 1]), np.array([1, 0]), np.array([0, 1]), ["a", "b"],
        ...                                   subset_accuracy=0.5, hamming_loss=0.25)
        >>> per["f1"].round(3).tolist(), avg["micro_f1"]
        ([0.8, 0.667], 0.75)
    """
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    precision, recall, f1 = prf_arrays(tp, tp + fp, tp + fn)
    per = pd.DataFrame(
        {
            "label": np.arange(len(tp)),
            "support": (tp + fn).astype(np.int64),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        },
        index=pd.Index(list(names), name="label_name"),
    )
    if hard is not None:
        per["hard"] = np.asarray(hard, dtype=np.int64)
    mp, mr, mf = prf_arrays(tp.sum(keepdims=True), (tp + fp).sum(keepdims=True), (tp + fn).sum(keepdims=True))
    averages = {
        "micro_precision": float(mp[0]),
        "micro_recall": float(mr[0]),
        "micro_f1": float(mf[0]),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "subset_accuracy": subset_accuracy,
        "hamming_loss": hamming_loss,
    }
    return per, averages


def prf_arrays(tp: np.ndarray, called: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of each class from its counts (true positives, predicted, actual); 0.0 for 0/0.

    Example:
        >>> [v.tolist() for v in prf_arrays(np.array([1, 0]), np.array([2, 0]), np.array([1, 3]))]
        [[0.5, 0.0], [1.0, 0.0], [0.6666666666666666, 0.0]]
    """
    tp = np.asarray(tp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(called > 0, tp / np.maximum(called, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    return precision, recall, f1


def regression_metrics(table: pd.DataFrame) -> dict[str, float]:
    """MAE, RMSE and R^2 of ``prediction`` against ``target`` (or MAE from ``abs_error`` alone), and loss quantiles.

    Example:
        >>> m = regression_metrics(pd.DataFrame({"target": [1.0, 2.0, 3.0], "prediction": [1.0, 2.0, 5.0],
        ...                                      "loss": [0.0, 0.0, 4.0]}))
        >>> round(m["mae"], 4), round(m["rmse"], 4), round(m["r2"], 4)
        (0.6667, 1.1547, -1.0)
    """
    out: dict[str, float] = {}
    if "target" in table.columns and "prediction" in table.columns:
        y = table["target"].to_numpy(dtype=np.float64)
        p = table["prediction"].to_numpy(dtype=np.float64)
        err = p - y
        out["mae"] = float(np.abs(err).mean()) if len(y) else float("nan")
        out["rmse"] = float(np.sqrt((err**2).mean())) if len(y) else float("nan")
        ss_tot = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
        out["r2"] = 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    elif "abs_error" in table.columns:
        out["mae"] = float(table["abs_error"].to_numpy(dtype=np.float64).mean())
    out.update(loss_quantiles(table))
    return out


def loss_quantiles(table: pd.DataFrame) -> dict[str, float]:
    """Mean and the 0.5, 0.9 and 0.99 quantiles and the maximum of the ``loss`` column (empty without one).

    Example:
        >>> loss_quantiles(pd.DataFrame({"loss": [0.0, 1.0, 2.0]}))["loss_q50"]
        1.0
    """
    if "loss" not in table.columns or not len(table):
        return {}
    loss = table["loss"].to_numpy(dtype=np.float64)
    q50, q90, q99 = np.quantile(loss, [0.5, 0.9, 0.99])
    return {
        "loss_mean": float(loss.mean()),
        "loss_q50": float(q50),
        "loss_q90": float(q90),
        "loss_q99": float(q99),
        "loss_max": float(loss.max()),
    }
