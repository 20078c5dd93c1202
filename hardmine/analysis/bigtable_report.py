"""Reports of an out-of-core score table, per task: :func:`hardmine.summary` and its parts, in grouped DuckDB passes.

Each function takes a :class:`hardmine.ScoreDataset` and equals the in-memory function of the same name on the same
rows: counts come from ``GROUP BY`` passes (a ``C x C`` confusion is one ``GROUP BY label, pred``), means and sums are
float64 in DuckDB's order (equal to pandas' to about 1e-12 relative), and the report kind, the positive class and the
mean columns come from the in-memory rules themselves, called on a small stand-in of the table
(:meth:`hardmine.ScoreDataset._probe`). Memory is bounded by the aggregates: one row per class (or class pair), never
per sample; :func:`loss_quantiles` holds the ``loss`` column (8 bytes a row) for DuckDB's exact quantiles.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hardmine.analysis.bigtable_sql import FETCH_ROWS, as_double, literal, quote
from hardmine.analysis.metrics import (
    Summary,
    _class_names,
    _mean_columns,
    _prf,
    summary_kind,
    sweep_from_counts,
)
from hardmine.analysis.reports import multilabel_from_counts, report_from_counts
from hardmine.analysis.splitting import positive_classes
from hardmine.analysis.summaries import summary_from_reports
from hardmine.core.columns import DIFFICULTIES, GROUPS, prob_columns

if TYPE_CHECKING:
    from hardmine.analysis.bigtable import ScoreDataset

__all__ = [
    "classification_report",
    "loss_quantiles",
    "multilabel_report",
    "precision_recall_f1",
    "regression_metrics",
    "summary",
    "threshold_sweep",
]

_HARD = "(difficulty = 'hard')"


def _positives(ds: ScoreDataset, positive: int | Iterable[int] | None) -> list[int]:
    """The positive classes by the in-memory rule, or its ``ValueError`` asking for them."""
    return positive_classes(ds._label_probe(), positive, required=True)


def _group_rows(ds: ScoreDataset, column: str, names: Sequence[str], means: Sequence[str]) -> pd.DataFrame:
    """Count, fraction and mean scores per group or difficulty: the ``groups`` table of :func:`hardmine.summary`."""
    aggs = "".join(f", avg({as_double(c)})" for c in means)
    got = {r[0]: r[1:] for r in ds._rows(f"SELECT {quote(column)}, count(*){aggs} FROM ({ds._select()}) GROUP BY 1")}
    counts = np.array([int(got[g][0]) if g in got else 0 for g in names], dtype=np.int64)
    n = int(counts.sum())
    rows: dict[str, Any] = {
        "count": pd.Series(counts, index=list(names)),
        "fraction": pd.Series(counts / n if n else counts * 0.0, index=list(names)),
    }
    for j, c in enumerate(means):
        vals = [got[g][1 + j] if g in got else np.nan for g in names]
        rows[f"mean_{c}"] = pd.Series(np.array(vals, dtype=np.float64), index=list(names))
    groups = pd.DataFrame(rows)
    groups.index.name = column
    return groups


def summary(
    ds: ScoreDataset, *, positive: int | Iterable[int] | None = None, classes: Sequence[Any] | None = None
) -> Summary:
    """:func:`hardmine.summary` of a split :class:`hardmine.ScoreDataset`, for its task (see :data:`SUMMARY_KINDS`).

    Raises:
        ValueError: an unsplit dataset, or ``positive`` for a split without a positive class (no ``group``).
    """
    split = ds._split_or_raise("summary()")
    probe = ds._label_probe()
    kind = summary_kind(probe, positive)
    settings = dict(ds.settings)
    if classes is None:
        classes = settings.get("classes")
    empty = pd.DataFrame()
    if kind == "one_vs_rest":
        ds._require("label", "pred", what="summary()")
        if split.positive is None:
            raise ValueError(
                "summary() with a positive class needs a split with one (the `group` column): split with "
                f"`positive=` ({ds._describe()})."
            )
        pos = _positives(ds, positive)
        settings["positive"] = pos
        prf = precision_recall_f1(ds, positive=pos)
        mat = np.array([[prf["tp"], prf["fn"]], [prf["fp"], prf["tn"]]], dtype=np.int64)
        confusion = pd.DataFrame(
            mat,
            index=pd.Index(["positive", "negative"], name="ground truth"),
            columns=pd.Index(["positive", "negative"], name="predicted"),
        )
        means = [c for c in ("label_prob", "confidence", "loss") if c in ds.columns]  # as hm.summary (0.2.0)
        return Summary(_group_rows(ds, "group", GROUPS, means), confusion, prf, settings, kind=kind)
    settings["positive"] = None
    groups = _group_rows(ds, "difficulty", DIFFICULTIES, _mean_columns(probe))
    if kind == "unlabeled":
        cols = [c for c in ("confidence", "margin", "entropy") if c in ds.columns]
        got = ds._one(f"SELECT 0{''.join(f', avg({as_double(c)})' for c in cols)} FROM {ds._source}")[1:]
        metrics: dict[str, Any] = {
            f"mean_{c}": float("nan") if v is None else float(v) for c, v in zip(cols, got, strict=True)
        }
        per = None
        if "pred" in ds.columns:
            rows = ds._rows(f"SELECT pred, count(*) FROM {ds._source} GROUP BY 1 ORDER BY 1")
            codes = np.array([int(r[0]) for r in rows], dtype=np.int64)
            per = pd.DataFrame(
                {"class": codes, "predicted": np.array([int(r[1]) for r in rows], dtype=np.int64)},
                index=pd.Index(_names(ds, classes, codes), name="class_name"),
            )
        return Summary(groups, empty, metrics, settings, per_class=per, kind=kind)
    return summary_from_reports(kind, ds, groups, settings, classes, sys.modules[__name__])


def _names(ds: ScoreDataset, classes: Sequence[Any] | None, codes: np.ndarray) -> list[Any]:
    """The display name of each class code, as in memory (``_class_names`` of the metrics, on a stand-in).

    The stand-in holds one ``label_name`` (``pred_name``) per class when the table has those columns.
    """
    values: dict[str, list[Any]] = {}
    for code, name in (("label", "label_name"), ("pred", "pred_name")):
        if code in ds.columns and name in ds.columns:
            rows = ds._rows(f"SELECT {code}, any_value({quote(name)}) FROM {ds._source} GROUP BY 1 ORDER BY 1")
            values[code] = [int(r[0]) for r in rows]
            values[name] = [str(r[1]) for r in rows]
    return _class_names(ds._probe(values), classes, codes)


def classification_report(
    ds: ScoreDataset, *, classes: Sequence[Any] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """:func:`hardmine.classification_report` out of core: one ``GROUP BY label, pred`` pass.

    The pass counts every (label, pred) pair, the hard rows of each pair (after a split) and the score sums of each
    pair; per-class counts and means are sums over the pairs.
    """
    ds._require("label", "pred", what="classification_report()")
    means = _mean_columns(ds._probe())
    hard = f", count(*) FILTER (WHERE {_HARD})" if ds._split is not None else ""
    sums = "".join(f", sum({as_double(c)})" for c in means)
    rows = ds._rows(f"SELECT label, pred, count(*){hard}{sums} FROM ({ds._select()}) GROUP BY 1, 2")
    labels = np.array([int(r[0]) for r in rows], dtype=np.int64)
    preds = np.array([int(r[1]) for r in rows], dtype=np.int64)
    codes = np.union1d(labels, preds).astype(np.int64)
    names = _names(ds, classes, codes)
    k = len(codes)
    li, pi = np.searchsorted(codes, labels), np.searchsorted(codes, preds)
    mat = np.zeros((k, k), dtype=np.int64)
    np.add.at(mat, (li, pi), np.array([int(r[2]) for r in rows], dtype=np.int64))
    first = 4 if hard else 3  # the sums follow label, pred, count(*) and the hard count
    counts = np.bincount(li, weights=[int(r[3]) for r in rows], minlength=k).astype(np.int64) if hard else None
    totals = {c: np.bincount(li, weights=[float(r[first + j]) for r in rows], minlength=k) for j, c in enumerate(means)}
    return report_from_counts(mat, codes, names, hard=counts, sums=totals)


def _block(ds: ScoreDataset, prefix: str) -> list[str]:
    cols = [c for c in ds.columns if c.startswith(prefix) and c[len(prefix) :].isdigit()]
    return sorted(cols, key=lambda c: int(c[len(prefix) :]))


def multilabel_report(
    ds: ScoreDataset, *, classes: Sequence[Any] | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """:func:`hardmine.multilabel_report` out of core: per-label counts, exact matches and mismatches in one pass."""
    ys, ps = _block(ds, "target_"), _block(ds, "pred_")
    if not ys or len(ys) != len(ps):
        raise ValueError(
            "Expected a multi-label table with matching `target_<c>` and `pred_<c>` columns (hm.score with "
            f"task='multilabel'), but got {len(ys)} target and {len(ps)} pred columns ({ds._describe()})."
        )
    y = [f"CAST({quote(c)} AS BIGINT)" for c in ys]
    p = [f"CAST({quote(c)} AS BIGINT)" for c in ps]
    aggs = ["count(*)"]
    for a, b in zip(y, p, strict=True):
        aggs += [f"sum({a} * {b})", f"sum((1 - {a}) * {b})", f"sum({a} * (1 - {b}))", f"sum({a})"]
        if ds._split is not None:
            aggs.append(f"sum({a}) FILTER (WHERE {_HARD})")
    same = " AND ".join(f"{a} = {b}" for a, b in zip(y, p, strict=True))
    aggs += [
        f"count(*) FILTER (WHERE {same})",
        "sum(" + " + ".join(f"CAST({a} <> {b} AS BIGINT)" for a, b in zip(y, p, strict=True)) + ")",
    ]
    got = [0 if v is None else int(v) for v in ds._one(f"SELECT {', '.join(aggs)} FROM ({ds._select()})")]
    n, stats, exact, wrong = got[0], got[1:-2], got[-2], got[-1]
    step = 5 if ds._split is not None else 4
    table = np.array(stats, dtype=np.int64).reshape(len(ys), step)
    tp, fp, fn = (table[:, j] for j in range(3))
    codes = np.arange(len(ys))
    names = [str(classes[int(c)]) for c in codes] if classes is not None else [int(c) for c in codes]
    hard = table[:, 4] if ds._split is not None else None
    return multilabel_from_counts(
        tp,
        fp,
        fn,
        names,
        hard=hard,
        subset_accuracy=exact / n if n else 0.0,
        hamming_loss=wrong / (n * len(ys)) if n else 0.0,
    )


def regression_metrics(ds: ScoreDataset) -> dict[str, float]:
    """:func:`hardmine.regression_metrics` out of core: MAE, RMSE, R^2 and the loss quantiles.

    Two passes: the sums of the errors and the mean target, then the squares about that mean (as numpy computes R^2).
    """
    out: dict[str, float] = {}
    if "target" in ds.columns and "prediction" in ds.columns:
        y, p = as_double("target"), as_double("prediction")
        n, abs_sum, sq_sum, mean = ds._one(
            f"SELECT count(*), sum(abs({p} - {y})), sum(({p} - {y}) * ({p} - {y})), avg({y}) FROM {ds._source}"
        )
        out["mae"] = abs_sum / n if n else float("nan")
        out["rmse"] = float(np.sqrt(sq_sum / n)) if n else float("nan")
        centred = f"({y} - {literal(mean)})" if n else "0"
        ss_tot = float(ds._one(f"SELECT sum({centred} * {centred}) FROM {ds._source}")[0]) if n else 0.0
        out["r2"] = 1.0 - float(sq_sum) / ss_tot if ss_tot > 0 else float("nan")
    elif "abs_error" in ds.columns:
        mae = ds._one(f"SELECT avg({as_double('abs_error')}) FROM {ds._source}")[0]
        out["mae"] = float("nan") if mae is None else float(mae)
    out.update(loss_quantiles(ds))
    return out


def loss_quantiles(ds: ScoreDataset) -> dict[str, float]:
    """:func:`hardmine.loss_quantiles` out of core: mean, 0.5/0.9/0.99 quantiles and maximum of ``loss``.

    One aggregate pass and one out-of-core sort of ``loss`` (DuckDB spills it past ``memory_limit``; its own
    ``quantile_cont`` would hold the whole column in memory instead). Each quantile is ``np.quantile`` of its two
    neighbouring order statistics at the fraction numpy's linear interpolation gives it, so it equals ``np.quantile``
    of the whole column. Empty without a ``loss`` column or rows.
    """
    if "loss" not in ds.columns:
        return {}
    loss = as_double("loss")
    n, mean, top = ds._one(f"SELECT count(*), avg({loss}), max({loss}) FROM {ds._source}")
    if not n:
        return {}
    out = {"loss_mean": float(mean)}
    spots = {q: (n - 1) * q for q in (0.5, 0.9, 0.99)}  # numpy's virtual index, method="linear"
    values = _order_statistics(ds, loss, {p for v in spots.values() for p in (int(v), min(int(v) + 1, n - 1))})
    for q, v in spots.items():
        low = int(v)
        pair = np.array([values[low], values[min(low + 1, n - 1)]])
        out[f"loss_q{round(q * 100)}"] = float(np.quantile(pair, v - low))
    out["loss_max"] = float(top)
    return out


def _order_statistics(ds: ScoreDataset, column: str, positions: set[int]) -> dict[int, float]:
    """The values at 0-based ``positions`` of ``column`` (a SQL expression) in ascending order, in one sorted pass."""
    wanted, found, seen = sorted(positions), {}, 0
    for batch in ds._con.sql(f"SELECT {column} FROM {ds._source} ORDER BY 1").to_arrow_reader(FETCH_ROWS):
        values = batch.column(0).to_numpy()
        found.update({p: float(values[p - seen]) for p in wanted if seen <= p < seen + len(values)})
        seen += len(values)
        if len(found) == len(wanted):
            break
    return found


def precision_recall_f1(ds: ScoreDataset, *, positive: int | Iterable[int] | None = None) -> dict[str, float | int]:
    """:func:`hardmine.precision_recall_f1` out of core: the four counts of the positive class in one pass."""
    ds._require("label", "pred", what="precision_recall_f1()")
    inside = ", ".join(str(c) for c in _positives(ds, positive))
    tp, fp, fn, tn = ds._one(
        f"SELECT count(*) FILTER (WHERE label IN ({inside}) AND pred IN ({inside})), "
        f"count(*) FILTER (WHERE label NOT IN ({inside}) AND pred IN ({inside})), "
        f"count(*) FILTER (WHERE label IN ({inside}) AND pred NOT IN ({inside})), "
        f"count(*) FILTER (WHERE label NOT IN ({inside}) AND pred NOT IN ({inside})) FROM {ds._source}"
    )
    return _prf(int(tp), int(fp), int(fn), int(tn))


def _thresholds(thresholds: Sequence[float] | np.ndarray | int | None) -> np.ndarray:
    if thresholds is None:
        return np.round(np.linspace(0.0, 1.0, 101), 2)
    if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
        if thresholds < 2:
            raise ValueError(f"Expected argument `thresholds` to be a count >= 2 or a sequence, but got {thresholds}.")
        return np.linspace(0.0, 1.0, int(thresholds))
    ts = np.sort(np.asarray(thresholds, dtype=np.float64))
    if ts.ndim != 1 or len(ts) == 0 or not np.isfinite(ts).all():
        raise ValueError("Expected argument `thresholds` to be a non-empty 1-D sequence of finite numbers.")
    return ts


def threshold_sweep(
    ds: ScoreDataset,
    *,
    positive: int | Iterable[int] | None = None,
    thresholds: Sequence[float] | np.ndarray | int | None = None,
) -> pd.DataFrame:
    """:func:`hardmine.threshold_sweep` out of core, in one streamed pass for every threshold.

    The probability of the positive class is the sum of its ``prob_<c>`` columns, or for a binary task with positive
    class 1 ``label_prob`` (``1 - label_prob`` on negatives). Each row's bucket is the number of thresholds ``<= p``,
    so ``p >= ts[j]`` exactly when the bucket is above ``j``: counts per bucket, summed from the top, give every
    threshold's counts.
    """
    ds._require("label", what="threshold_sweep() (a classification table)")
    classes = _positives(ds, positive)
    pcols = prob_columns(ds._probe())
    if pcols:
        missing = [c for c in classes if f"prob_{c}" not in pcols]
        if missing:
            raise ValueError(f"The positive classes {missing} have no prob_<class> column (the dataset has {pcols}).")
        p = " + ".join(as_double(f"prob_{c}") for c in classes)
    elif classes == [1] and set(ds._distinct("label")) <= {0, 1} and "label_prob" in ds.columns:
        lp = as_double("label_prob")
        p = f"CASE WHEN label = 1 THEN {lp} ELSE 1.0::DOUBLE - {lp} END"
    else:
        raise ValueError(
            "The probability of the positive class is not in this dataset: score with keep_probs=True for "
            "multi-class tasks (binary tasks with positive=1 need only `label_prob`)."
        )
    ts = _thresholds(thresholds)
    inside = ", ".join(str(c) for c in classes)
    all_rows = np.zeros(len(ts) + 1, dtype=np.int64)
    pos_rows = np.zeros(len(ts) + 1, dtype=np.int64)
    query = f"SELECT ({p}) AS p, (label IN ({inside})) AS a FROM {ds._source}"
    for batch in ds._con.sql(query).to_arrow_reader(FETCH_ROWS):
        bucket = np.searchsorted(ts, batch.column(0).to_numpy(), side="right")
        actual = batch.column(1).to_numpy(zero_copy_only=False)
        all_rows += np.bincount(bucket, minlength=len(ts) + 1)
        pos_rows += np.bincount(bucket[actual], minlength=len(ts) + 1)
    n, n_pos = int(all_rows.sum()), int(pos_rows.sum())
    called = np.cumsum(all_rows[::-1])[::-1][1:]
    tp = np.cumsum(pos_rows[::-1])[::-1][1:]
    return sweep_from_counts(ts, called, tp, n_pos, n, classes)
