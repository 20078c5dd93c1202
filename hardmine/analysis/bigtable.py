"""Score tables past one machine's memory: split, summary, sweep, export and weights over a Parquet dataset.

:func:`open_scores` opens a Parquet dataset (one file, or a folder of files, with the per-sample columns of any
task's table, as :func:`hardmine.to_parquet` or :func:`hardmine.score_to_parquet` write them) as a
:class:`ScoreDataset`. Its steps run in DuckDB, which streams the files column by column, so memory is bounded by the
columns a step reads and by DuckDB's ``memory_limit`` (it spills sorts to disk past it), not by the number of rows.
The task comes from the files' metadata (``attrs["hardmine"]["task"]``, as :func:`hardmine.score` records it) or, as
in memory, from the columns. The results equal the in-memory functions on the same rows:

- :meth:`ScoreDataset.split` = :func:`hardmine.split` (the task's default column, a fixed threshold,
  ``hard_fraction`` with ties broken by the ``index`` column, ``"per_class"`` thresholds from the class means; a
  positive class when the in-memory rule finds one, else easy/hard only);
- :meth:`ScoreDataset.summary` = :func:`hardmine.summary` for every task (one-vs-rest, per class, multi-label,
  regression, unlabeled, any loss), :meth:`ScoreDataset.classification_report`,
  :meth:`ScoreDataset.multilabel_report`, :meth:`ScoreDataset.regression_metrics`,
  :meth:`ScoreDataset.loss_quantiles`, :meth:`ScoreDataset.precision_recall_f1` = the functions of the same name;
- :meth:`ScoreDataset.threshold_sweep` = :func:`hardmine.threshold_sweep`;
- :meth:`ScoreDataset.export` = :func:`hardmine.to_parquet` / :func:`hardmine.to_csv` with ``only=``;
- :meth:`ScoreDataset.weights` = :func:`hardmine.sample_weights` (per-group and ``"power"``/``"softmax"`` score
  weights with ``floor``/``max_ratio``, balanced per class or polarity), written as a memory-mapped ``.npy`` array in
  dataset-index order or a Parquet column.

A step that has no meaning for the task (a threshold sweep of a regression table, say) raises a ``ValueError``
naming the task. Exactness notes: ``hard_fraction`` orders rows by ``(score, index)``, which is the in-memory order
when the table is in dataset-index order (as :func:`hardmine.score` returns it); means and sums are float64 in
DuckDB's order, so they equal pandas' to about 1e-12 relative, and a score within a few units of the last place of
its class mean could fall on the other side of a ``"per_class"`` threshold than in pandas.

Needs the ``big`` extra: ``pip install 'hardmine[big]'`` (DuckDB).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from hardmine.analysis import bigtable_report, bigtable_weights
from hardmine.analysis.bigtable_sql import (
    SETTINGS_KEY,
    as_double,
    connect,
    files_of,
    literal,
    quote,
    where_only,
)
from hardmine.analysis.bigtable_sql import file_settings as _file_settings  # hm.score_to_parquet imports it here
from hardmine.analysis.metrics import Summary
from hardmine.analysis.splitting import default_by, fixed_threshold, positive_classes
from hardmine.core import validate
from hardmine.core._files import atomic_path
from hardmine.core.columns import DIFFICULTIES, GROUPS, SPLIT_COLUMNS, harder_when
from hardmine.core.frames import restore_dtypes

__all__ = ["ScoreDataset", "open_scores"]

PathLike = str | os.PathLike[str]


def open_scores(
    path: PathLike | Sequence[PathLike],
    *,
    memory_limit: str = "1GB",
    threads: int | None = None,
    temp_directory: PathLike | None = None,
) -> ScoreDataset:
    """Open a Parquet score dataset (a file, a folder of files read recursively, or a list) without loading it.

    Args:
        path: a ``.parquet`` file, a folder of them, or a list of either. Every file has the same columns: those of
            one task's table (an ``index`` column, then ``label``, ``pred`` and the scores; ``target``, ``prediction``
            and ``abs_error``; ``target_<c>`` and ``pred_<c>``; ``loss`` only ...).
        memory_limit: DuckDB's memory limit (``"1GB"``, ``"500MB"``); sorts past it spill to ``temp_directory``.
        threads: DuckDB worker threads (default: DuckDB's, one per core).
        temp_directory: where DuckDB spills; default ``hardmine-duckdb-<pid>`` under the system temp folder.

    Returns:
        A :class:`ScoreDataset`; its settings (``task``, ``num_classes`` ...) come from the first file's metadata.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no Parquet files, or no ``index`` column.
        TypeError: ``threads`` that is not an int.
        ImportError: DuckDB is not installed.

    Example:
        >>> import tempfile, hardmine as hm
        >>> d = tempfile.mkdtemp()
        >>> t = pd.DataFrame({"index": [0, 1, 2, 3], "label": [1, 1, 0, 0], "pred": [1, 0, 0, 1],
        ...                   "label_prob": np.array([0.9, 0.4, 0.8, 0.3], dtype=np.float32)})
        >>> _ = hm.to_parquet(t, f"{d}/part-0.parquet")
        >>> ds = open_scores(d)
        >>> len(ds), ds.split(threshold=0.5).counts()
        (4, {'hard_positive': 1, 'easy_positive': 1, 'hard_negative': 1, 'easy_negative': 1})
    """
    files = files_of(path)
    con = connect(memory_limit, threads, temp_directory)
    return ScoreDataset(con, files, _file_settings(files[0]))


@dataclass
class _Split:
    hard: str  # SQL boolean expression: the row is hard
    positive: list[int] | None  # None: easy/hard only (no polarity, no group)
    settings: dict[str, Any] = field(default_factory=dict)


class ScoreDataset:
    """A score table in Parquet files, queried out of core; from :func:`open_scores`.

    Attributes:
        files: the Parquet files, in the order their rows are read.
        settings: hardmine's settings (``task``, ``num_classes``; after :meth:`split`, ``by``, ``threshold``,
            ``positive``).
        columns: the column names of the files.
    """

    def __init__(
        self,
        con: Any,
        files: list[Path],
        settings: dict[str, Any],
        split: _Split | None = None,
        cache: dict[str, Any] | None = None,
    ) -> None:
        self._con = con
        self.files = files
        self._split = split
        self.settings = dict(settings) if split is None else {**settings, **split.settings}
        self._base_settings = dict(settings)
        self._cache: dict[str, Any] = {} if cache is None else cache  # distinct labels etc., shared with splits
        names = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        self._source = f"read_parquet([{names}])"
        if "columns" not in self._cache:
            self._cache["columns"] = [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {self._source}").fetchall()]
        self.columns: list[str] = list(self._cache["columns"])
        if "index" not in self.columns:
            raise ValueError(f"Expected an `index` column in the Parquet files, but their columns are {self.columns}.")

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        """The number of rows (from the files' footers, no scan)."""
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __repr__(self) -> str:
        split = "" if self._split is None else f", split by {self.settings.get('by')!r}"
        return f"ScoreDataset({len(self)} rows in {len(self.files)} file(s){split})"

    @property
    def task(self) -> str | None:
        """The task recorded by :func:`hardmine.score` (``"classification"``, ``"regression"`` ...), or ``None``."""
        task = self.settings.get("task")
        return None if task is None else str(task)

    def _one(self, sql: str) -> Any:
        return self._con.execute(sql).fetchall()[0]

    def _rows(self, sql: str) -> list[Any]:
        return list(self._con.execute(sql).fetchall())

    def _describe(self) -> str:
        """The table's task, for error messages."""
        return f"task {self.task!r}" if self.task else f"no task recorded; columns {self.columns[:12]}"

    def _require(self, *cols: str, what: str = "This step") -> None:
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise ValueError(
                f"{what} needs the columns {missing}, which the dataset lacks ({self._describe()}; it has "
                f"{self.columns})."
            )

    def _split_or_raise(self, what: str) -> _Split:
        if self._split is None:
            raise ValueError(f"{what} needs a split dataset: call ds = ds.split(...) first.")
        return self._split

    def _distinct(self, column: str) -> list[int]:
        """The distinct values of an integer column, sorted (one grouped pass, cached)."""
        key = f"distinct:{column}"
        if key not in self._cache:
            rows = self._rows(f"SELECT DISTINCT {quote(column)} FROM {self._source} ORDER BY 1")
            self._cache[key] = [int(r[0]) for r in rows if r[0] is not None]
        return list(self._cache[key])

    def _probe(self, values: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
        """A small in-memory stand-in for the table: its columns and settings, with ``values`` as rows.

        The in-memory rules (:func:`hardmine.split`'s default column and positive class, :func:`hardmine.summary`'s
        report kind) read only the columns, the settings and the sets of ``label`` and ``pred`` values; calling them
        on this stand-in applies them exactly, without a copy of their logic. Shorter value lists are padded by
        repeating their last value, which keeps every column's set of values.
        """
        values = dict(values or {})
        length = max((len(v) for v in values.values()), default=0)
        data: dict[str, Any] = {}
        for col in self.columns:
            if col in SPLIT_COLUMNS:
                continue
            v = list(values.get(col, []))
            data[col] = v + v[-1:] * (length - len(v)) if v else [0] * length
        probe = pd.DataFrame(data, columns=[c for c in self.columns if c not in SPLIT_COLUMNS])
        probe.attrs[SETTINGS_KEY] = dict(self.settings)
        return probe

    def _label_probe(self) -> pd.DataFrame:
        """:meth:`_probe` with the distinct ``label`` and ``pred`` values (the positive-class rule reads them)."""
        return self._probe({c: self._distinct(c) for c in ("label", "pred") if c in self.columns})

    def relation(self) -> Any:
        """The rows as a DuckDB relation, for SQL; after a split with ``difficulty`` (and ``polarity``, ``group``)."""
        return self._con.sql(self._select())

    # ------------------------------------------------------------------ split

    def split(
        self,
        threshold: float | Literal["per_class"] | None = None,
        *,
        by: str | None = None,
        hard_fraction: float | None = None,
        positive: int | Iterable[int] | None = None,
        hard_when: Literal["lower", "higher"] | None = None,
    ) -> ScoreDataset:
        """The dataset with ``difficulty`` (and ``polarity``, ``group``) defined as in :func:`hardmine.split`.

        Nothing is written: the returned dataset computes the columns as later steps read them. As in memory, a
        binary table (labels in ``{0, 1}``) or one split with ``positive=`` gets ``polarity`` and ``group``; a
        multi-class table without ``positive`` and a table without ``label`` (regression, multi-label, unlabeled,
        any loss, dense tasks) get ``difficulty`` only. ``hard_fraction`` finds the exact ``round(q * N)``-th row in
        ``(score, index)`` order (one out-of-core sort of two columns); ``"per_class"`` uses each class's mean score
        (one grouped pass).

        Args:
            threshold: a float, ``"per_class"``, or ``None`` for the default of ``by``.
            by: the score column that decides difficulty; default: the task's
                (:data:`hardmine.analysis.splitting.DEFAULT_BY`: ``label_prob`` for classification, ``loss`` for
                regression, ``confidence`` for unlabeled ...).
            hard_fraction: the fraction of rows to call hard, in ``[0, 1]``.
            positive: the class (or classes) of interest; defaults to 1 for binary labels.
            hard_when: ``"lower"`` or ``"higher"``, when the default direction of ``by`` is not right.

        Returns:
            A new :class:`ScoreDataset` over the same files; the settings are in its ``settings``.

        Raises:
            ValueError: as :func:`hardmine.split` (missing column, NaN scores, threshold out of range, both options,
                a ``positive`` class the table does not hold, ``"per_class"`` or ``positive`` without ``label``).
        """
        by = default_by(self._probe()) if by is None else by
        self._require(by, what="split()")
        direction = (
            harder_when(by) if hard_when is None else validate.choice("hard_when", hard_when, ("lower", "higher"))
        )
        col = as_double(by)
        nan, n = self._one(
            f"SELECT count(*) FILTER (WHERE isnan({col}) OR {col} IS NULL), count(*) FROM {self._source}"
        )
        if nan:
            where = f"WHERE isnan({col}) OR {col} IS NULL LIMIT 10"
            rows = [int(r[0]) for r in self._rows(f"SELECT {quote('index')} FROM {self._source} {where}")]
            raise ValueError(
                f"Column `{by}` has {nan} NaN value(s), at index {rows}: score them again or drop them explicitly "
                "before splitting."
            )
        classes = positive_classes(self._label_probe(), positive)
        settings: dict[str, Any] = {"by": by, "hard_when": direction, "positive": classes}
        lt = "<" if direction == "lower" else ">"
        if hard_fraction is not None:
            if threshold is not None:
                raise ValueError(
                    "Expected only one of `threshold` and `hard_fraction`, but got both "
                    f"(threshold={threshold!r}, hard_fraction={hard_fraction!r})."
                )
            hard = self._hardest(col, validate.fraction("hard_fraction", hard_fraction), n, direction)
            settings["hard_fraction"] = float(hard_fraction)
            settings["threshold"] = None
        elif isinstance(threshold, str):
            validate.choice("threshold", threshold, ("per_class",))
            if "label" not in self.columns:
                raise ValueError(
                    "Expected a `label` column for threshold='per_class', but this table has none "
                    f"({self._describe()})."
                )
            means = self._rows(f"SELECT label, avg({col}) FROM {self._source} GROUP BY 1 ORDER BY 1")
            per_class = {int(c): float(m) for c, m in means}
            cases = " ".join(f"WHEN {c} THEN {literal(m)}" for c, m in per_class.items())
            hard = f"({col} {lt} (CASE label {cases} END))" if per_class else "FALSE"
            settings["threshold"] = "per_class"
            settings["per_class_thresholds"] = per_class
        else:
            t = fixed_threshold(threshold, by, self._probe())
            hard = f"({col} {lt} {literal(t)})"
            settings["threshold"] = t
        return ScoreDataset(self._con, self.files, self._base_settings, _Split(hard, classes, settings), self._cache)

    def _hardest(self, col: str, fraction: float, n: int, direction: str) -> str:
        """SQL: the row is among the ``round(fraction * n)`` hardest in ``(score, index)`` order."""
        k = int(round(fraction * n))
        if k == 0:
            return "FALSE"
        if k == n:
            return "TRUE"
        order = "ASC" if direction == "lower" else "DESC"
        lt = "<" if direction == "lower" else ">"
        idx = quote("index")
        v, i = self._one(f"SELECT {col}, {idx} FROM {self._source} ORDER BY 1 {order}, 2 ASC LIMIT 1 OFFSET {k - 1}")
        return f"({col} {lt} {literal(v)} OR ({col} = {literal(v)} AND {idx} <= {int(i)}))"

    def _select(self, only: str | Iterable[str] | None = None, columns: Sequence[str] | None = None) -> str:
        if self._split is None:
            cols = ", ".join(quote(c) for c in (columns or self.columns))
            if only is not None:
                raise ValueError(f"only={only!r} needs a split dataset: call ds = ds.split(...) first.")
            return f"SELECT {cols} FROM {self._source}"
        s = self._split
        base = [c for c in (columns or self.columns) if c not in SPLIT_COLUMNS]  # the split computes them anew
        cols = ", ".join(quote(c) for c in base)
        difficulty = f"CASE WHEN {s.hard} THEN 'hard' ELSE 'easy' END AS difficulty"
        if s.positive is None:  # easy/hard only, as hm.split without a positive class
            extra, out = difficulty, ["difficulty"]
        else:
            pos = f"(label IN ({', '.join(str(c) for c in s.positive)}))"
            group = (
                f"CASE WHEN {pos} THEN (CASE WHEN {s.hard} THEN 'hard_positive' ELSE 'easy_positive' END) "
                f"ELSE (CASE WHEN {s.hard} THEN 'hard_negative' ELSE 'easy_negative' END) END"
            )
            extra = (
                f"CASE WHEN {pos} THEN 'positive' ELSE 'negative' END AS polarity, {difficulty}, "
                f"{group} AS {quote('group')}"
            )
            out = list(SPLIT_COLUMNS)
        inner = f"SELECT {cols}{', ' if cols else ''}{extra} FROM {self._source}"
        where = where_only(only, out)
        return inner if where is None else f"SELECT * FROM ({inner}) WHERE {where}"

    def counts(self) -> dict[str, int]:
        """Rows per group (``hard_positive`` ...) of a split dataset, in hardmine's order; else per difficulty.

        A split without a positive class (easy/hard only) counts ``hard`` and ``easy``.
        """
        s = self._split_or_raise("counts()")
        column, names = ("difficulty", DIFFICULTIES) if s.positive is None else ("group", GROUPS)
        got = dict(self._rows(f"SELECT {quote(column)}, count(*) FROM ({self._select()}) GROUP BY 1"))
        return {g: int(got.get(g, 0)) for g in names}

    def to_pandas(self, only: str | Iterable[str] | None = None) -> pd.DataFrame:
        """The rows (``only``: as :func:`hardmine.select`) as a DataFrame with hardmine's dtypes; for small results."""
        table = restore_dtypes(self._con.execute(self._select(only)).df())
        table.attrs[SETTINGS_KEY] = dict(self.settings)
        return table

    # ------------------------------------------------------------------ reports (hardmine.analysis.bigtable_report)

    def summary(self, *, positive: int | Iterable[int] | None = None, classes: Sequence[Any] | None = None) -> Summary:
        """The report of the split dataset for its task: :func:`hardmine.summary`, in grouped passes.

        Args:
            positive: overrides the positive classes the dataset was split with (for the metrics only).
            classes: class names, ``classes[c]`` for class index ``c``; default: the names recorded at scoring.
        """
        return bigtable_report.summary(self, positive=positive, classes=classes)

    def classification_report(
        self, *, classes: Sequence[Any] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
        """Per-class report, ``C x C`` confusion and averages: :func:`hardmine.classification_report`, one pass."""
        return bigtable_report.classification_report(self, classes=classes)

    def multilabel_report(self, *, classes: Sequence[Any] | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
        """Per-label report and micro/macro averages: :func:`hardmine.multilabel_report`, in one pass."""
        return bigtable_report.multilabel_report(self, classes=classes)

    def regression_metrics(self) -> dict[str, float]:
        """MAE, RMSE, R^2 and loss quantiles: :func:`hardmine.regression_metrics`."""
        return bigtable_report.regression_metrics(self)

    def loss_quantiles(self) -> dict[str, float]:
        """Mean, quantiles and maximum of ``loss``: :func:`hardmine.loss_quantiles`."""
        return bigtable_report.loss_quantiles(self)

    def precision_recall_f1(self, *, positive: int | Iterable[int] | None = None) -> dict[str, float | int]:
        """Precision, recall, F1 and accuracy of the predictions: :func:`hardmine.precision_recall_f1`."""
        return bigtable_report.precision_recall_f1(self, positive=positive)

    def threshold_sweep(
        self,
        *,
        positive: int | Iterable[int] | None = None,
        thresholds: Sequence[float] | np.ndarray | int | None = None,
    ) -> pd.DataFrame:
        """Precision, recall and F1 at each decision threshold: :func:`hardmine.threshold_sweep`, in one pass."""
        return bigtable_report.threshold_sweep(self, positive=positive, thresholds=thresholds)

    # ------------------------------------------------------------------ export and weights

    def export(self, path: PathLike, *, only: str | Iterable[str] | None = "hard") -> Path:
        """Write the rows (default: the hard ones) to one CSV or Parquet file, atomically, streaming.

        The format follows the suffix (``.csv`` or ``.parquet``); rows keep the dataset's order. A Parquet file
        carries the settings under the ``hardmine`` metadata key, and :func:`hardmine.read_parquet` /
        :func:`hardmine.read_csv` read either back with hardmine's dtypes.

        Args:
            path: the destination file; its folder must exist.
            only: which rows, as in :func:`hardmine.select` (``"hard"``, ``"easy"``, group names), or ``None``.

        Returns:
            The path written.
        """
        dest = Path(path)
        suffix = dest.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise ValueError(f"Expected argument `path` to end in .csv or .parquet, but got {str(dest)!r}.")
        if not dest.parent.is_dir():
            raise FileNotFoundError(f"The folder of {str(dest)!r} does not exist.")
        query = self._select(only)
        with atomic_path(dest, suffix=suffix + ".tmp") as tmp:
            target = str(tmp).replace("'", "''")
            if suffix == ".csv":
                self._con.execute(f"COPY ({query}) TO '{target}' (FORMAT csv, HEADER true)")
            else:
                meta = json.dumps(self.settings, default=str).replace("'", "''")
                self._con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, KV_METADATA {{hardmine: '{meta}'}})")
        return dest

    weights = bigtable_weights.write_weights
    """``ds.weights(out, *, hard_weight, easy_weight, by, mode, gamma, temperature, floor, max_ratio, hard_when,
    balance, column)``: per-sample sampling weights as :func:`hardmine.sample_weights` computes them
    (``balance="auto"`` too), written out of core to a ``.npy`` memmap or a Parquet column. The method is
    :func:`hardmine.analysis.bigtable_weights.write_weights`: its arguments, passes and example are there."""
