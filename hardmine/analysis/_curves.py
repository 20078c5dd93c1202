"""Precision-recall and ROC curves in numpy, shared by the plots and the interactive report.

They follow scikit-learn's definitions exactly (``precision_recall_curve``, ``average_precision_score``,
``roc_curve(drop_intermediate=False)``, ``roc_auc_score``) so the numbers in a plot or report match what users
compute themselves, without making scikit-learn a dependency.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "pr_points", "roc_auc", "roc_points"]


def _counts(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when calling positive every sample with ``score >= t``, at each distinct ``t``.

    Returns ``(fps, tps, thresholds)``, thresholds decreasing, as scikit-learn's ``_binary_clf_curve``.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"Expected labels and scores of the same shape, but got {y.shape} and {s.shape}.")
    if not np.isfinite(s).all():
        raise ValueError("Expected finite scores, but some are NaN or infinite.")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last sample of each distinct score
    tps = np.cumsum(y)[last].astype(np.float64)
    fps = (last + 1) - tps
    return fps, tps, s[last]


def pr_points(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The precision-recall curve: ``(precision, recall, thresholds)`` as ``sklearn.metrics.precision_recall_curve``.

    Only thresholds at which at least one sample is called positive appear, so precision is always defined; the
    last point is ``(precision 1, recall 0)`` by convention.

    Args:
        y_true: ``(N,)`` bool or 0/1: is the sample positive.
        score: ``(N,)`` float: the probability of the positive class (higher = more positive).

    Returns:
        ``precision`` and ``recall`` float64 ``(K + 1,)`` with recall decreasing, ``thresholds`` ``(K,)`` increasing.

    Example:
        >>> p, r, t = pr_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> p.round(3).tolist(), r.tolist(), t.tolist()
        ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0], [0.1, 0.35, 0.4, 0.8])
    """
    fps, tps, thresholds = _counts(y_true, score)
    positives = tps[-1] if len(tps) else 0.0
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / positives if positives > 0 else np.ones_like(tps)
    return (
        np.r_[precision[::-1], 1.0],
        np.r_[recall[::-1], 0.0],
        thresholds[::-1],
    )


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Average precision, ``sum_n (R_n - R_{n-1}) P_n``, as ``sklearn.metrics.average_precision_score``.

    Example:
        >>> round(average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])), 4)
        0.8333
    """
    precision, recall, _ = pr_points(y_true, score)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def roc_points(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve ``(fpr, tpr, thresholds)`` as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.

    Raises:
        ValueError: when only one class is present (the curve is undefined).

    Example:
        >>> fpr, tpr, _ = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    fps, tps, thresholds = _counts(y_true, score)
    if len(tps) == 0 or tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("The ROC curve needs both positive and negative samples, but only one class is present.")
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thresholds]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve (trapezoids), as ``sklearn.metrics.roc_auc_score``.

    Example:
        >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.75
    """
    fpr, tpr, _ = roc_points(y_true, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
