"""Every metric of hardmine's tables, importable from one module (``hm.summary`` and friends come from here).

- :mod:`hardmine.analysis.counts`: the confusion of the positive class, its precision, recall and F1, the
  probability of the positive class and the threshold sweep.
- :mod:`hardmine.analysis.reports`: per-class and per-label reports and regression errors, as scikit-learn has them.
- :mod:`hardmine.analysis.summaries`: :func:`summary` and the :class:`Summary` it returns, for every task.
"""

from __future__ import annotations

from hardmine.analysis.counts import _positives as _positives  # re-exported: the out-of-core tables use these
from hardmine.analysis.counts import _prf as _prf
from hardmine.analysis.counts import _ratio as _ratio
from hardmine.analysis.counts import _require as _require
from hardmine.analysis.counts import (
    confusion,
    positive_prob,
    precision_recall_f1,
    threshold_sweep,
)
from hardmine.analysis.counts import sweep_from_counts as sweep_from_counts
from hardmine.analysis.reports import _class_names as _class_names
from hardmine.analysis.reports import _mean_columns as _mean_columns
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
