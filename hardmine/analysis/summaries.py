"""The readable summary of a table: :func:`summary` and the :class:`Summary` it returns, for every task.

What it reports depends on the table (:func:`summary_kind`): the four groups and the positive class's precision,
recall and F1 (from :mod:`hardmine.analysis.counts`), or easy/hard with per-class, per-label, regression or loss
figures (from :mod:`hardmine.analysis.reports`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis import reports
from hardmine.analysis._json import jsonable
from hardmine.analysis.counts import _positives, _require, confusion, precision_recall_f1
from hardmine.analysis.reports import _class_names, _mean_columns
from hardmine.analysis.splitting import positive_classes
from hardmine.core.columns import GROUPS

__all__ = ["SUMMARY_KINDS", "Summary", "summary", "summary_from_reports", "summary_kind"]


#: What :func:`summary` reports, by task: ``"one_vs_rest"`` (a positive class), ``"multiclass"`` (per class, no
#: positive class), ``"multilabel"``, ``"regression"``, ``"unlabeled"`` or ``"loss"`` (any per-sample loss).
SUMMARY_KINDS: tuple[str, ...] = ("one_vs_rest", "multiclass", "multilabel", "regression", "unlabeled", "loss")


def _frame_dict(frame: pd.DataFrame) -> dict[Any, dict[Any, Any]]:
    """``{row label: {column label: value}}``: outer keys are the rows (for a confusion: the ground truth)."""
    rows = zip(frame.index, frame.itertuples(index=False, name=None), strict=True)
    return jsonable({r: dict(zip(frame.columns, row, strict=True)) for r, row in rows})


@dataclass
class Summary:
    """What :func:`summary` returns: printable as text, rendered as small tables in a notebook, ``to_dict`` for JSON.

    Attributes:
        groups: one row per group (``hard_positive`` ...) with a positive class, else one row per difficulty
            (``hard``, ``easy``): ``count``, ``fraction`` and the mean scores.
        confusion: ground truth in rows, prediction in columns: the 2 x 2 matrix of the positive class, the
            ``C x C`` matrix over classes (named when the class names are known) for a multi-class table, or an
            empty frame for tasks without one.
        metrics: the task's metrics: ``precision``, ``recall``, ``f1``, ``accuracy`` of the positive class;
            ``accuracy``, ``balanced_accuracy``, ``macro_*`` and ``weighted_*`` over classes; ``micro_*`` and
            ``macro_*`` over labels; ``mae``, ``rmse``, ``r2``; loss quantiles ``loss_q50`` ...
        settings: how the table was split (``by``, ``threshold``, ``positive`` ...).
        per_class: one row per class (multi-class: ``support``, ``hard``, ``precision``, ``recall``, ``f1`` and mean
            scores) or per label (multi-label), else ``None``.
        kind: one of :data:`SUMMARY_KINDS`.
    """

    groups: pd.DataFrame
    confusion: pd.DataFrame
    metrics: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    per_class: pd.DataFrame | None = None
    kind: str = "one_vs_rest"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python structure for strict JSON: ``confusion[ground truth][predicted]``, NaN as ``None``."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "groups": [jsonable(r) for r in self.groups.reset_index().to_dict(orient="records")],
            "confusion": _frame_dict(self.confusion),
            "metrics": jsonable(dict(self.metrics)),
            "settings": jsonable(dict(self.settings)),
        }
        if self.per_class is not None:
            out["per_class"] = _frame_dict(self.per_class)
        return out

    def _settings_line(self) -> str:
        s = self.settings
        pos = s.get("positive")
        pos_text = f"positive class(es) = {pos}" if pos is not None else "no positive class (easy/hard only)"
        if "by" not in s:  # a table read back from CSV keeps its columns but not how it was split
            return f"split settings not recorded (a CSV keeps no settings); {pos_text}"
        parts = [f"hard = {s.get('by', '?')} {'below' if s.get('hard_when', 'lower') == 'lower' else 'above'} "]
        if s.get("hard_fraction") is not None:
            side = "lowest" if s.get("hard_when") == "lower" else "highest"
            parts[0] = f"hard = the {s['hard_fraction']:.0%} with the {side} {s.get('by')}"
        elif s.get("threshold") == "per_class":
            parts[0] += "its class's mean (per-class thresholds)"
        else:
            parts[0] += f"{s.get('threshold')}"
        parts.append(pos_text)
        return "; ".join(parts)

    def _metrics_lines(self) -> list[str]:
        m = self.metrics
        if self.kind == "one_vs_rest":
            return [
                f"positive class: precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
                f"accuracy {m['accuracy']:.3f}  (support {m['support']})"
            ]
        return ["  ".join(f"{k} {_fmt(v)}" for k, v in m.items())]

    def body_lines(self) -> list[str]:
        """The report without its title line: groups, per class, confusion, metrics (as in ``str(summary)``)."""

        def fmt(v: float) -> str:
            return f"{v:.3f}"

        lines = [self.groups.to_string(float_format=fmt, na_rep="-")]
        if self.per_class is not None:
            lines += ["", "per label" if self.kind == "multilabel" else "per class"]
            lines.append(self.per_class.to_string(float_format=fmt, na_rep="-"))
        if len(self.confusion):
            lines += ["", "confusion (rows: ground truth, columns: predicted)", self.confusion.to_string()]
        return [*lines, "", *self._metrics_lines()]

    def __str__(self) -> str:
        count = int(self.groups["count"].sum())
        return "\n".join([f"hardmine summary: {count} samples; {self._settings_line()}", "", *self.body_lines()])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        m = self.metrics

        def fmt(v: float) -> str:
            return f"{v:.3f}"

        if self.kind == "one_vs_rest":
            head = "positive class"
            metrics = pd.DataFrame([{k: m[k] for k in ("precision", "recall", "f1", "accuracy", "support")}])
        else:
            head = "metrics"
            metrics = pd.DataFrame([m])
        parts = [
            f"<div><b>hardmine summary</b>: {int(self.groups['count'].sum())} samples; "
            f"{html.escape(self._settings_line())}",
            self.groups.to_html(float_format=fmt, na_rep="-"),
        ]
        if self.per_class is not None:
            parts.append(f"<p>{'per label' if self.kind == 'multilabel' else 'per class'}</p>")
            parts.append(self.per_class.to_html(float_format=fmt, na_rep="-"))
        if len(self.confusion):
            parts.append(f"<p>confusion (rows: ground truth, columns: predicted)</p>{self.confusion.to_html()}")
        parts.append(f"<p>{head}</p>{metrics.to_html(index=False, float_format=fmt, na_rep='-')}</div>")
        return "".join(parts)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "-" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def _group_rows(
    table: pd.DataFrame, column: str, names: Sequence[str], means: Sequence[str] | None = None
) -> pd.DataFrame:
    n = len(table)
    counts = table[column].astype(str).value_counts().reindex(list(names), fill_value=0)
    rows: dict[str, Any] = {"count": counts.astype(np.int64), "fraction": counts / n if n else counts * 0.0}
    keys = table[column].astype(str)
    for col in _mean_columns(table) if means is None else [c for c in means if c in table.columns]:
        rows[f"mean_{col}"] = table[col].groupby(keys).mean().reindex(list(names))
    groups = pd.DataFrame(rows)
    groups.index.name = column if column != "difficulty" else "difficulty"
    return groups


def summary_kind(table: pd.DataFrame, positive: int | Iterable[int] | None = None) -> str:
    """Which report :func:`summary` gives ``table``: one of :data:`SUMMARY_KINDS`.

    Example:
        >>> summary_kind(pd.DataFrame({"label": [0, 1], "pred": [0, 1]}))
        'one_vs_rest'
        >>> summary_kind(pd.DataFrame({"label": [0, 1, 2], "pred": [0, 1, 1]}))
        'multiclass'
    """
    task = table.attrs.get("hardmine", {}).get("task")
    if task == "multilabel" or any(isinstance(c, str) and c.startswith("target_") for c in table.columns):
        return "multilabel"
    if task == "regression" or "target" in table.columns or "abs_error" in table.columns:
        return "regression"
    if "label" not in table.columns:
        return "unlabeled" if "confidence" in table.columns else "loss"
    if "pred" not in table.columns:
        return "loss"
    return "one_vs_rest" if positive_classes(table, positive) is not None else "multiclass"


def summary(
    table: pd.DataFrame,
    *,
    positive: int | Iterable[int] | None = None,
    classes: Sequence[Any] | None = None,
) -> Summary:
    """The report of a split table, for its task: counts, per-class (or per-label) metrics, confusion, averages.

    - **a positive class** (binary labels, or ``positive=``): groups ``hard_positive`` ..., the 2 x 2 confusion and
      precision/recall/F1/accuracy of the positive class (one-vs-rest).
    - **multi-class without a positive class**: counts per difficulty; per class ``support``, ``hard``,
      ``precision``, ``recall``, ``f1`` and mean scores; ``accuracy``, ``balanced_accuracy``, macro and weighted
      averages; the ``C x C`` confusion with class names. Equal to scikit-learn's ``classification_report`` and
      ``balanced_accuracy_score``.
    - **multi-label**: per label precision/recall/F1 and support, micro and macro averages, subset accuracy and
      Hamming loss.
    - **regression**: MAE, RMSE, R^2 and loss quantiles; **any loss**: loss quantiles; **unlabeled**: the mean
      confidence, margin and entropy and how many samples each class was predicted for.

    Args:
        table: a split table (from :func:`hardmine.split`; a table without ``difficulty`` is reported as all easy).
        positive: overrides the positive classes the table was split with (for the metrics only).
        classes: class names, ``classes[c]`` for class index ``c``; defaults to the names recorded at scoring (an
            ImageFolder's ``classes``) or the table's ``label_name`` column.

    Returns:
        A :class:`Summary`; ``print(summary(table))`` gives a short readable report.

    Example:
        >>> from hardmine.analysis.splitting import split
        >>> t = split(pd.DataFrame({"index": [0, 1, 2, 3], "label": [1, 1, 0, 0], "pred": [1, 0, 0, 0],
        ...                         "label_prob": [0.9, 0.4, 0.8, 0.6]}), threshold=0.7)
        >>> s = summary(t)
        >>> s.groups["count"].tolist(), s.metrics["recall"]
        ([1, 1, 1, 1], 0.5)
        >>> m = split(pd.DataFrame({"index": [0, 1, 2], "label": [0, 1, 2], "pred": [0, 2, 2],
        ...                         "label_prob": [0.9, 0.2, 0.7]}))
        >>> s = summary(m, classes=["cat", "dog", "fox"])
        >>> s.kind, s.per_class["recall"].tolist(), round(s.metrics["balanced_accuracy"], 4)
        ('multiclass', [1.0, 0.0, 1.0], 0.6667)
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame for hm.summary, but got {type(table).__name__}.")
    if "difficulty" not in table.columns:
        raise ValueError(
            "hm.summary (call hm.split first) needs the column ['difficulty'] (and ['group'] with a positive class), "
            f"which `table` lacks (it has {list(table.columns)})."
        )
    settings = dict(table.attrs.get("hardmine", {}))
    kind = summary_kind(table, positive)
    if classes is None:
        classes = settings.get("classes")
    empty = pd.DataFrame()
    if kind == "one_vs_rest":
        _require(table, ("label", "pred", "group"), "hm.summary (call hm.split first)")
        pos = _positives(table, positive)
        settings["positive"] = pos
        return Summary(
            groups=_group_rows(table, "group", GROUPS, ("label_prob", "confidence", "loss")),  # as in 0.2.0
            confusion=confusion(table, positive=pos),
            metrics=precision_recall_f1(table, positive=pos),
            settings=settings,
            kind=kind,
        )
    settings["positive"] = None
    groups = _group_rows(table, "difficulty", ("hard", "easy"))
    if kind == "unlabeled":
        metrics: dict[str, Any] = {
            f"mean_{c}": float(table[c].mean()) for c in ("confidence", "margin", "entropy") if c in table.columns
        }
        per = None
        if "pred" in table.columns:
            codes, counts = np.unique(table["pred"].to_numpy(), return_counts=True)
            per = pd.DataFrame(
                {"class": codes.astype(np.int64), "predicted": counts.astype(np.int64)},
                index=pd.Index(_class_names(table, classes, codes), name="class_name"),
            )
        return Summary(groups, empty, metrics, settings, per_class=per, kind=kind)
    return summary_from_reports(kind, table, groups, settings, classes, reports)


def summary_from_reports(
    kind: str, data: Any, groups: pd.DataFrame, settings: dict[str, Any], classes: Sequence[Any] | None, source: Any
) -> Summary:
    """The :class:`Summary` of a multi-class, multi-label, regression or loss table, from the reports of ``source``.

    ``source`` is a module with ``classification_report``, ``multilabel_report``, ``regression_metrics`` and
    ``loss_quantiles`` of ``data``: :mod:`hardmine.analysis.reports` for a table in memory, the out-of-core ones for
    a :class:`hardmine.ScoreDataset`; both summaries are assembled here, the same way.
    """
    empty = pd.DataFrame()
    if kind == "multiclass":
        per, conf, averages = source.classification_report(data, classes=classes)
        return Summary(groups, conf, averages, settings, per_class=per, kind=kind)
    if kind == "multilabel":
        per, averages = source.multilabel_report(data, classes=classes)
        metrics = {**averages, **source.loss_quantiles(data)}
        return Summary(groups, empty, metrics, settings, per_class=per, kind=kind)
    if kind == "regression":
        return Summary(groups, empty, source.regression_metrics(data), settings, kind=kind)
    return Summary(groups, empty, source.loss_quantiles(data), settings, kind=kind)
