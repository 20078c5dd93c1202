"""Confusion, precision, recall and F1 of the positive class, the threshold trade-off, and a readable summary.

Positive and negative come from the ground truth (``label``); predicted positive comes from the model (``pred``, or
the probability of the positive class against a decision threshold in :func:`threshold_sweep`).

- precision = TP / (TP + FP): of the samples called positive, how many are.
- recall = TP / (TP + FN): of the real positives, how many were found.
- F1 = 2 P R / (P + R), their harmonic mean.

A ratio whose denominator is zero (no predicted positives, say) is reported as 0.0.

This module is the one place to import them from; they live in :mod:`hardmine.analysis.counts` (confusion,
precision/recall/F1, threshold sweeps), :mod:`hardmine.analysis.reports` (per class, per label, regression) and
:mod:`hardmine.analysis.summaries` (:func:`summary` and :class:`Summary`).
"""

from __future__ import annotations

from hardmine.analysis.counts import (
    _positives,
    _prf,
    _ratio,
    _require,
    confusion,
    positive_prob,
    precision_recall_f1,
    sweep_from_counts,
    threshold_sweep,
)
from hardmine.analysis.reports import classification_report, loss_quantiles, multilabel_report, regression_metrics
from hardmine.analysis.summaries import SUMMARY_KINDS, Summary, summary, summary_kind

__all__ = [
    "SUMMARY_KINDS",
    "Summary",
    "classification_report",
    "confusion",
    "loss_quantiles",
    "multilabel_report",
    "positive_prob",
    "precision_recall_f1",
    "regression_metrics",
    "summary",
    "summary_kind",
    "threshold_sweep",
]

# Helpers that other modules (the out-of-core tables) import from here, as before the split.
_SHARED = (_positives, _prf, _ratio, _require, sweep_from_counts)
