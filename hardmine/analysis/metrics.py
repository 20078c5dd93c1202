"""Confusion, precision, recall and F1 of the positive class, the threshold trade-off, and a readable summary.

Positive and negative come from the ground truth (``label``); predicted positive comes from the model (``pred``, or
the probability of the positive class against a decision threshold in :func:`threshold_sweep`).

- precision = TP / (TP + FP): of the samples called positive, how many are.
- recall = TP / (TP + FN): of the real positives, how many were found.
- F1 = 2 P R / (P + R), their harmonic mean.

A ratio whose denominator is zero (no predicted positives, say) is reported as 0.0.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis.splitting import positive_classes
from hardmine.core.columns import GROUPS, prob_columns

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
    elif isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        if thresholds < 2:
            raise ValueError(f"Expected argument `thresholds` to be a count >= 2 or a sequence, but got {thresholds}.")
        ts = np.linspace(0.0, 1.0, int(thresholds))
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


#: What :func:`summary` reports, by task: ``"one_vs_rest"`` (a positive class), ``"multiclass"`` (per class, no
#: positive class), ``"multilabel"``, ``"regression"``, ``"unlabeled"`` or ``"loss"`` (any per-sample loss).
SUMMARY_KINDS: tuple[str, ...] = ("one_vs_rest", "multiclass", "multilabel", "regression", "unlabeled", "loss")


def _jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` and numpy scalars as Python ones: strict JSON parses it."""
    if isinstance(value, dict):
        return {_jsonable_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _jsonable_key(key: Any) -> Any:
    return key.item() if isinstance(key, np.generic) else key


def _frame_dict(frame: pd.DataFrame) -> dict[Any, dict[Any, Any]]:
    """``{row label: {column label: value}}``: outer keys are the rows (for a confusion: the ground truth)."""
    return {
        _jsonable_key(r): {_jsonable_key(c): _jsonable(v) for c, v in zip(frame.columns, row, strict=True)}
        for r, row in zip(frame.index, frame.itertuples(index=False, name=None), strict=True)
    }


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
            "groups": [_jsonable(r) for r in self.groups.reset_index().to_dict(orient="records")],
            "confusion": _frame_dict(self.confusion),
            "metrics": _jsonable(dict(self.metrics)),
            "settings": _jsonable(dict(self.settings)),
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


def _mean_columns(table: pd.DataFrame) -> list[str]:
    cols = ("label_prob", "confidence", "margin", "entropy", "loss", "abs_error", "wrong")
    return [c for c in cols if c in table.columns]


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
    tp = np.diag(mat).astype(np.float64)
    support = mat.sum(axis=1)
    called = mat.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(called > 0, tp / np.maximum(called, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1.0), 0.0)
    per = pd.DataFrame(
        {"class": codes, "support": support.astype(np.int64)},
        index=pd.Index(names, name="class_name"),
    )
    if "difficulty" in table.columns:
        hard = (table["difficulty"].astype(str) == "hard").to_numpy()
        per["hard"] = np.bincount(np.searchsorted(codes, labels), weights=hard, minlength=k).astype(np.int64)
    per["precision"] = precision
    per["recall"] = recall
    per["f1"] = f1
    label_pos = np.searchsorted(codes, labels)
    for col in _mean_columns(table):
        values = table[col].to_numpy(dtype=np.float64)
        sums = np.bincount(label_pos, weights=values, minlength=k)
        with np.errstate(divide="ignore", invalid="ignore"):
            per[f"mean_{col}"] = np.where(support > 0, sums / np.maximum(support, 1), np.nan)
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
    tp = (y & p).sum(axis=0).astype(np.float64)
    fp = ((1 - y) & p).sum(axis=0).astype(np.float64)
    fn = (y & (1 - p)).sum(axis=0).astype(np.float64)
    support = y.sum(axis=0)

    def prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
            d = precision + recall
            f1 = np.where(d > 0, 2 * precision * recall / np.where(d > 0, d, 1.0), 0.0)
        return precision, recall, f1

    precision, recall, f1 = prf(tp, fp, fn)
    per = pd.DataFrame(
        {"label": codes, "support": support.astype(np.int64), "precision": precision, "recall": recall, "f1": f1},
        index=pd.Index(names, name="label_name"),
    )
    if "difficulty" in table.columns:
        hard = (table["difficulty"].astype(str) == "hard").to_numpy()
        per["hard"] = (y[hard] == 1).sum(axis=0).astype(np.int64)
    mp, mr, mf = prf(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))
    averages = {
        "micro_precision": float(mp[0]),
        "micro_recall": float(mr[0]),
        "micro_f1": float(mf[0]),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "subset_accuracy": float((y == p).all(axis=1).mean()) if len(y) else 0.0,
        "hamming_loss": float((y != p).mean()) if y.size else 0.0,
    }
    return per, averages


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
    if kind == "multiclass":
        per, conf, averages = classification_report(table, classes=classes)
        return Summary(groups, conf, averages, settings, per_class=per, kind=kind)
    if kind == "multilabel":
        per, averages = multilabel_report(table, classes=classes)
        return Summary(groups, empty, {**averages, **loss_quantiles(table)}, settings, per_class=per, kind=kind)
    if kind == "regression":
        return Summary(groups, empty, regression_metrics(table), settings, kind=kind)
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
    return Summary(groups, empty, loss_quantiles(table), settings, kind=kind)
