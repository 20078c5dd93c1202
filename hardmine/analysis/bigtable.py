"""Score tables past one machine's memory: split, summary, sweep, export and weights over a Parquet dataset.

:func:`open_scores` opens a Parquet dataset (one file, or a folder of files, with hardmine's per-sample columns
``index, id, label, pred, confidence, label_prob, margin, entropy, loss``, as :func:`hardmine.to_parquet` writes
them) as a :class:`ScoreDataset`. Its steps run in DuckDB, which streams the files column by column, so memory is
bounded by the columns a step reads and by DuckDB's ``memory_limit`` (it spills sorts to disk past it), not by the
number of rows. The results equal the in-memory functions on the same rows:

- :meth:`ScoreDataset.split` = :func:`hardmine.split` (fixed threshold, ``hard_fraction`` with ties broken by the
  ``index`` column, ``"per_class"`` thresholds from the class means);
- :meth:`ScoreDataset.summary` = :func:`hardmine.summary`;
- :meth:`ScoreDataset.threshold_sweep` = :func:`hardmine.threshold_sweep`;
- :meth:`ScoreDataset.export` = :func:`hardmine.to_parquet` / :func:`hardmine.to_csv` with ``only=``;
- :meth:`ScoreDataset.weights` = :func:`hardmine.weights` (per-group and ``"power"``/``"softmax"`` score weights with
  ``floor``/``max_ratio``), written as a memory-mapped ``.npy`` array in dataset-index order or a Parquet column.

Exactness notes: ``hard_fraction`` orders rows by ``(score, index)``, which is the in-memory order when the table is
in dataset-index order (as :func:`hardmine.score` returns it); ``"per_class"`` means are float64 sums in DuckDB's
order, so a score within a few units of the last place of its class mean could fall on the other side than in
pandas.

Needs the ``big`` extra: ``pip install 'hardmine[big]'`` (DuckDB).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from hardmine.analysis.io import parse_only
from hardmine.analysis.metrics import Summary, _prf, sweep_from_counts
from hardmine.analysis.splitting import fixed_threshold
from hardmine.core._files import atomic_path
from hardmine.core.columns import GROUPS, POLARITIES, harder_when

__all__ = ["ScoreDataset", "open_scores"]

PathLike = str | os.PathLike[str]
_SETTINGS_KEY = "hardmine"
_FETCH_ROWS = 1 << 20


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as err:
        raise ImportError("Out-of-core score tables need DuckDB: pip install 'hardmine[big]'") from err
    return duckdb


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: float) -> str:
    """A float as an exact DOUBLE literal (``repr`` round-trips)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _files_of(path: PathLike | Sequence[PathLike]) -> list[Path]:
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.parquet") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"No such file or folder: {str(p)!r}.")
    if not files:
        raise ValueError(f"Expected argument `path` to hold Parquet files (*.parquet), but found none in {path!r}.")
    return files


def _file_settings(file: Path) -> dict[str, Any]:
    """The hardmine settings in a file's metadata: pandas' ``attrs`` or a ``hardmine`` key."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(file).metadata or {}
    if _SETTINGS_KEY.encode() in meta:
        return dict(json.loads(meta[_SETTINGS_KEY.encode()]))
    if b"PANDAS_ATTRS" in meta:
        return dict(json.loads(meta[b"PANDAS_ATTRS"]).get(_SETTINGS_KEY, {}))
    return {}


def open_scores(
    path: PathLike | Sequence[PathLike],
    *,
    memory_limit: str = "1GB",
    threads: int | None = None,
    temp_directory: PathLike | None = None,
) -> ScoreDataset:
    """Open a Parquet score dataset (a file, a folder of files read recursively, or a list) without loading it.

    Args:
        path: a ``.parquet`` file, a folder of them, or a list of either. Every file has the same columns.
        memory_limit: DuckDB's memory limit (``"1GB"``, ``"500MB"``); sorts past it spill to ``temp_directory``.
        threads: DuckDB worker threads (default: DuckDB's, one per core).
        temp_directory: where DuckDB spills; default ``hardmine-duckdb-<pid>`` under the system temp folder.

    Returns:
        A :class:`ScoreDataset`; its settings (``num_classes`` ...) come from the first file's metadata.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no Parquet files, or no ``index``/``label`` column.
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
    duckdb = _duckdb()
    files = _files_of(path)
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"Expected argument `threads` to be an int >= 1, but got {threads!r}.")
        con.execute(f"SET threads = {threads}")
    # DuckDB creates the folder only when a step spills, and removes what it wrote when the connection closes.
    default = Path(tempfile.gettempdir()) / f"hardmine-duckdb-{os.getpid()}"
    spill = Path(temp_directory) if temp_directory is not None else default
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET preserve_insertion_order = true")
    return ScoreDataset(con, files, _file_settings(files[0]))


@dataclass
class _Split:
    hard: str  # SQL boolean expression: the row is hard
    positive: list[int]
    settings: dict[str, Any] = field(default_factory=dict)


class ScoreDataset:
    """A score table in Parquet files, queried out of core; from :func:`open_scores`.

    Attributes:
        files: the Parquet files, in the order their rows are read.
        settings: hardmine's settings (``num_classes``; after :meth:`split`, ``by``, ``threshold``, ``positive``).
        columns: the column names of the files.
    """

    def __init__(self, con: Any, files: list[Path], settings: dict[str, Any], split: _Split | None = None) -> None:
        self._con = con
        self.files = files
        self._split = split
        self.settings = dict(settings) if split is None else {**settings, **split.settings}
        self._base_settings = dict(settings)
        names = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        self._source = f"read_parquet([{names}])"
        self.columns: list[str] = [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {self._source}").fetchall()]
        for col in ("index", "label"):
            if col not in self.columns:
                raise ValueError(
                    f"Expected a `{col}` column in the Parquet files, but their columns are {self.columns}."
                )

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        """The number of rows (from the files' footers, no scan)."""
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __repr__(self) -> str:
        split = "" if self._split is None else f", split by {self.settings.get('by')!r}"
        return f"ScoreDataset({len(self)} rows in {len(self.files)} file(s){split})"

    def _one(self, sql: str) -> Any:
        return self._con.execute(sql).fetchall()[0]

    def _require(self, *cols: str) -> None:
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise ValueError(f"This step needs the columns {missing}, which the dataset lacks (it has {self.columns}).")

    def _split_or_raise(self, what: str) -> _Split:
        if self._split is None:
            raise ValueError(f"{what} needs a split dataset: call ds = ds.split(...) first.")
        return self._split

    def relation(self) -> Any:
        """The rows as a DuckDB relation (with ``polarity``, ``difficulty``, ``group`` after a split), for SQL."""
        return self._con.sql(self._select())

    # ------------------------------------------------------------------ split

    def _positive(self, positive: int | Iterable[int] | None) -> list[int]:
        if positive is not None:
            items = [positive] if isinstance(positive, (int, np.integer)) else list(positive)
            if not items:
                raise ValueError("Expected argument `positive` to name at least one class, but got an empty list.")
            for c in items:
                if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
                    raise TypeError(
                        f"Expected argument `positive` to be a class index or a list of them, but got {c!r}."
                    )
            return sorted({int(c) for c in items})
        if self._split is not None:
            return list(self._split.positive)
        if self.settings.get("positive") is not None:
            return [int(c) for c in self.settings["positive"]]
        found = [
            int(r[0]) for r in self._con.execute(f"SELECT DISTINCT label FROM {self._source} ORDER BY 1").fetchall()
        ]
        num_classes = self.settings.get("num_classes")
        if (num_classes is None or num_classes <= 2) and set(found) <= {0, 1}:
            return [1]
        raise ValueError(
            f"This is a multi-class table (labels {found[:10]}{' ...' if len(found) > 10 else ''}): name the class "
            "or classes of interest with `positive=` (one-vs-rest), e.g. positive=3 or positive=[3, 5]."
        )

    def split(
        self,
        threshold: float | Literal["per_class"] | None = None,
        *,
        by: str = "label_prob",
        hard_fraction: float | None = None,
        positive: int | Iterable[int] | None = None,
        hard_when: Literal["lower", "higher"] | None = None,
    ) -> ScoreDataset:
        """The dataset with ``polarity``, ``difficulty`` and ``group`` defined as in :func:`hardmine.split`.

        Nothing is written: the returned dataset computes the columns as later steps read them. ``hard_fraction``
        finds the exact ``round(q * N)``-th row in ``(score, index)`` order (one out-of-core sort of two columns);
        ``"per_class"`` uses each class's mean score (one grouped pass).

        Args:
            threshold: a float, ``"per_class"``, or ``None`` for the default of ``by``.
            by: the score column that decides difficulty.
            hard_fraction: the fraction of rows to call hard, in ``[0, 1]``.
            positive: the class (or classes) of interest; defaults to 1 for binary labels.
            hard_when: ``"lower"`` or ``"higher"``, when the default direction of ``by`` is not right.

        Returns:
            A new :class:`ScoreDataset` over the same files; the settings are in its ``settings``.

        Raises:
            ValueError: as :func:`hardmine.split` (missing column, NaN scores, threshold out of range, both options).
        """
        self._require("label", by)
        if hard_when is None:
            direction = harder_when(by)
        elif hard_when in ("lower", "higher"):
            direction = hard_when
        else:
            raise ValueError(f"Expected argument `hard_when` to be 'lower' or 'higher', but got {hard_when!r}.")
        col = f"CAST({_q(by)} AS DOUBLE)"
        nan, n = self._one(
            f"SELECT count(*) FILTER (WHERE isnan({col}) OR {col} IS NULL), count(*) FROM {self._source}"
        )
        if nan:
            rows = [
                int(r[0])
                for r in self._con.execute(
                    f"SELECT {_q('index')} FROM {self._source} WHERE isnan({col}) OR {col} IS NULL LIMIT 10"
                ).fetchall()
            ]
            raise ValueError(
                f"Column `{by}` has {nan} NaN value(s), at index {rows}: score them again or drop them explicitly "
                "before splitting."
            )
        classes = self._positive(positive)
        settings: dict[str, Any] = {"by": by, "hard_when": direction, "positive": classes}
        lt = "<" if direction == "lower" else ">"
        if hard_fraction is not None:
            if threshold is not None:
                raise ValueError(
                    "Expected only one of `threshold` and `hard_fraction`, but got both "
                    f"(threshold={threshold!r}, hard_fraction={hard_fraction!r})."
                )
            if (
                isinstance(hard_fraction, bool)
                or not isinstance(hard_fraction, (int, float, np.floating))
                or not 0 <= hard_fraction <= 1
            ):
                raise ValueError(
                    f"Expected argument `hard_fraction` to be a float in the [0, 1] range, but got {hard_fraction!r}."
                )
            k = int(round(hard_fraction * n))
            if k == 0:
                hard = "FALSE"
            elif k == n:
                hard = "TRUE"
            else:
                order = "ASC" if direction == "lower" else "DESC"
                v, i = self._one(
                    f"SELECT {col}, {_q('index')} FROM {self._source} ORDER BY 1 {order}, 2 ASC LIMIT 1 OFFSET {k - 1}"
                )
                hard = f"({col} {lt} {_lit(v)} OR ({col} = {_lit(v)} AND {_q('index')} <= {int(i)}))"
            settings["hard_fraction"] = float(hard_fraction)
            settings["threshold"] = None
        elif isinstance(threshold, str):
            if threshold != "per_class":
                raise ValueError(f"Expected argument `threshold` to be a float or 'per_class', but got {threshold!r}.")
            means = self._con.execute(f"SELECT label, avg({col}) FROM {self._source} GROUP BY 1 ORDER BY 1").fetchall()
            per_class = {int(c): float(m) for c, m in means}
            cases = " ".join(f"WHEN {c} THEN {_lit(m)}" for c, m in per_class.items())
            hard = f"({col} {lt} (CASE label {cases} END))" if per_class else "FALSE"
            settings["threshold"] = "per_class"
            settings["per_class_thresholds"] = per_class
        else:
            probe = pd.DataFrame()
            probe.attrs["hardmine"] = self._base_settings
            t = fixed_threshold(threshold, by, probe)
            hard = f"({col} {lt} {_lit(t)})"
            settings["threshold"] = t
        return ScoreDataset(self._con, self.files, self._base_settings, _Split(hard, classes, settings))

    def _select(self, only: str | Iterable[str] | None = None, columns: Sequence[str] | None = None) -> str:
        cols = ", ".join(_q(c) for c in (columns or self.columns))
        if self._split is None:
            if only is not None:
                raise ValueError(f"only={only!r} needs a split dataset: call ds = ds.split(...) first.")
            return f"SELECT {cols} FROM {self._source}"
        s = self._split
        pos = f"(label IN ({', '.join(str(c) for c in s.positive)}))"
        group = (
            f"CASE WHEN {pos} THEN (CASE WHEN {s.hard} THEN 'hard_positive' ELSE 'easy_positive' END) "
            f"ELSE (CASE WHEN {s.hard} THEN 'hard_negative' ELSE 'easy_negative' END) END"
        )
        extra = (
            f"CASE WHEN {pos} THEN 'positive' ELSE 'negative' END AS polarity, "
            f"CASE WHEN {s.hard} THEN 'hard' ELSE 'easy' END AS difficulty, {group} AS {_q('group')}"
        )
        inner = f"SELECT {cols}, {extra} FROM {self._source}"
        where = _where(only)
        return inner if where is None else f"SELECT * FROM ({inner}) WHERE {where}"

    def counts(self) -> dict[str, int]:
        """Rows per group (``hard_positive`` ...) of a split dataset, in hardmine's group order."""
        self._split_or_raise("counts()")
        got = dict(self._con.execute(f"SELECT {_q('group')}, count(*) FROM ({self._select()}) GROUP BY 1").fetchall())
        return {g: int(got.get(g, 0)) for g in GROUPS}

    def to_pandas(self, only: str | Iterable[str] | None = None) -> pd.DataFrame:
        """The rows (``only``: as :func:`hardmine.select`) as a DataFrame with hardmine's dtypes; for small results."""
        from hardmine.core.columns import restore_dtypes

        table = self._con.execute(self._select(only)).df()
        table = restore_dtypes(table)
        table.attrs[_SETTINGS_KEY] = dict(self.settings)
        return table

    # ------------------------------------------------------------------ summary and sweep

    def summary(self, *, positive: int | Iterable[int] | None = None) -> Summary:
        """Counts and mean scores per group, the confusion matrix and precision/recall/F1: :func:`hardmine.summary`.

        Two grouped passes over ``label``, ``pred``, the split's score column and the mean columns.

        Args:
            positive: overrides the positive classes the dataset was split with (for the metrics only).
        """
        s = self._split_or_raise("summary()")
        self._require("label", "pred")
        means = [c for c in ("label_prob", "confidence", "loss") if c in self.columns]
        aggs = "".join(f", avg(CAST({_q(c)} AS DOUBLE))" for c in means)
        got = {
            r[0]: r[1:]
            for r in self._con.execute(
                f"SELECT {_q('group')}, count(*){aggs} FROM ({self._select()}) GROUP BY 1"
            ).fetchall()
        }
        counts = np.array([int(got[g][0]) if g in got else 0 for g in GROUPS], dtype=np.int64)
        n = int(counts.sum())
        rows: dict[str, Any] = {
            "count": pd.Series(counts, index=list(GROUPS)),
            "fraction": pd.Series(counts / n if n else counts * 0.0, index=list(GROUPS)),
        }
        for j, c in enumerate(means):
            vals = [got[g][1 + j] if g in got else np.nan for g in GROUPS]
            rows[f"mean_{c}"] = pd.Series(np.array(vals, dtype=np.float64), index=list(GROUPS))
        groups = pd.DataFrame(rows)
        groups.index.name = "group"
        classes = self._positive(positive) if positive is not None else list(s.positive)
        settings = dict(self.settings)
        settings["positive"] = classes
        metrics = self._prf(classes)
        mat = np.array([[metrics["tp"], metrics["fn"]], [metrics["fp"], metrics["tn"]]], dtype=np.int64)
        confusion = pd.DataFrame(
            mat,
            index=pd.Index(["positive", "negative"], name="ground truth"),
            columns=pd.Index(["positive", "negative"], name="predicted"),
        )
        return Summary(groups=groups, confusion=confusion, metrics=metrics, settings=settings)

    def _prf(self, classes: list[int]) -> dict[str, float | int]:
        inside = ", ".join(str(c) for c in classes)
        tp, fp, fn, tn = self._one(
            f"SELECT count(*) FILTER (WHERE label IN ({inside}) AND pred IN ({inside})), "
            f"count(*) FILTER (WHERE label NOT IN ({inside}) AND pred IN ({inside})), "
            f"count(*) FILTER (WHERE label IN ({inside}) AND pred NOT IN ({inside})), "
            f"count(*) FILTER (WHERE label NOT IN ({inside}) AND pred NOT IN ({inside})) FROM {self._source}"
        )
        return _prf(int(tp), int(fp), int(fn), int(tn))

    def precision_recall_f1(self, *, positive: int | Iterable[int] | None = None) -> dict[str, float | int]:
        """Precision, recall, F1 and accuracy of the predictions: :func:`hardmine.precision_recall_f1`."""
        self._require("label", "pred")
        return self._prf(self._positive(positive))

    def threshold_sweep(
        self,
        *,
        positive: int | Iterable[int] | None = None,
        thresholds: Sequence[float] | np.ndarray | int | None = None,
    ) -> pd.DataFrame:
        """Precision, recall and F1 at each decision threshold: :func:`hardmine.threshold_sweep`, in one pass.

        The probability of the positive class is the sum of its ``prob_<c>`` columns, or for a binary task with
        positive class 1 ``label_prob`` (``1 - label_prob`` on negatives); one pass counts every threshold.
        """
        classes = self._positive(positive)
        pcols = sorted((c for c in self.columns if c.startswith("prob_") and c[5:].isdigit()), key=lambda c: int(c[5:]))
        if pcols:
            missing = [c for c in classes if f"prob_{c}" not in pcols]
            if missing:
                raise ValueError(
                    f"The positive classes {missing} have no prob_<class> column (the dataset has {pcols})."
                )
            p = " + ".join(f"CAST({_q(f'prob_{c}')} AS DOUBLE)" for c in classes)
        else:
            binary = self._one(f"SELECT bool_and(label IN (0, 1)) FROM {self._source}")[0]
            if classes == [1] and binary and "label_prob" in self.columns:
                lp = f"CAST({_q('label_prob')} AS DOUBLE)"
                p = f"CASE WHEN label = 1 THEN {lp} ELSE 1.0::DOUBLE - {lp} END"
            else:
                raise ValueError(
                    "The probability of the positive class is not in this dataset: score with keep_probs=True for "
                    "multi-class tasks (binary tasks with positive=1 need only `label_prob`)."
                )
        if thresholds is None:
            ts = np.round(np.linspace(0.0, 1.0, 101), 2)
        elif isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
            if thresholds < 2:
                raise ValueError(
                    f"Expected argument `thresholds` to be a count >= 2 or a sequence, but got {thresholds}."
                )
            ts = np.linspace(0.0, 1.0, int(thresholds))
        else:
            ts = np.sort(np.asarray(thresholds, dtype=np.float64))
            if ts.ndim != 1 or len(ts) == 0 or not np.isfinite(ts).all():
                raise ValueError("Expected argument `thresholds` to be a non-empty 1-D sequence of finite numbers.")
        # One streamed pass: each row's bucket is the number of thresholds <= p (ts is sorted), so p >= ts[j]
        # exactly when bucket > j; counts per bucket, summed from the top, give every threshold's counts.
        inside = ", ".join(str(c) for c in classes)
        all_rows = np.zeros(len(ts) + 1, dtype=np.int64)
        pos_rows = np.zeros(len(ts) + 1, dtype=np.int64)
        query = f"SELECT ({p}) AS p, (label IN ({inside})) AS a FROM {self._source}"
        for batch in self._con.sql(query).to_arrow_reader(_FETCH_ROWS):
            bucket = np.searchsorted(ts, batch.column(0).to_numpy(), side="right")
            actual = batch.column(1).to_numpy(zero_copy_only=False)
            all_rows += np.bincount(bucket, minlength=len(ts) + 1)
            pos_rows += np.bincount(bucket[actual], minlength=len(ts) + 1)
        n, n_pos = int(all_rows.sum()), int(pos_rows.sum())
        called = np.cumsum(all_rows[::-1])[::-1][1:]
        tp = np.cumsum(pos_rows[::-1])[::-1][1:]
        return sweep_from_counts(ts, called, tp, n_pos, n, classes)

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

    def weights(
        self,
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
        column: str = "weight",
    ) -> Path:
        """Per-sample sampling weights as :func:`hardmine.weights` computes them, written out of core.

        Steps 1, 2 and 4 of the in-memory weights (raw weight, divide by the largest, floor): the weights of
        ``hm.weights(..., balance=None)``. ``previous``, class balancing (``hm.weights``' default ``balance="auto"``)
        and ``mode="rank"`` are in-memory only. Two grouped passes and one streamed write.

        Args:
            out: ``*.npy``: a float32 array ``(N,)`` in dataset-index order (``index`` must be ``0 .. N-1``, each
                once), for ``np.load(out, mmap_mode="r")`` and :class:`hardmine.ShardedSampler`;
                ``*.parquet``: columns ``index`` and ``column``, in the dataset's row order.
            hard: weight of a hard row of a split dataset (default 4.0), or a mapping keyed by polarity or group.
            easy: weight of an easy row, or a mapping like ``hard``.
            by: score column to weigh by instead of the split (``"label_prob"``, ``"loss"`` ...).
            mode: ``"power"`` (``h ** gamma``) or ``"softmax"`` (``exp((h - max h) / temperature)``).
            gamma: exponent for ``"power"``, > 0.
            temperature: for ``"softmax"``, > 0.
            floor: smallest weight relative to the largest, in ``[0, 1]``.
            max_ratio: cap on ``max(w) / min(w)``, >= 1.
            hard_when: override which direction of ``by`` is harder.
            column: the weight column's name in a Parquet output.

        Returns:
            The path written.

        Raises:
            ValueError: bad options, a missing ``by`` column, negative or all-zero raw weights, or (``.npy``) an
                ``index`` column that is not a permutation of ``0 .. N-1``.
        """
        dest = Path(out)
        if dest.suffix.lower() not in (".npy", ".parquet"):
            raise ValueError(f"Expected argument `out` to end in .npy or .parquet, but got {str(dest)!r}.")
        if mode not in ("power", "softmax"):
            raise ValueError(
                f"Expected argument `mode` to be 'power' or 'softmax' out of core, but got {mode!r} ('rank' needs "
                "the whole table in memory: use hm.weights)."
            )
        for name, value, ok in (
            ("gamma", gamma, gamma > 0),
            ("temperature", temperature, temperature > 0),
            ("floor", floor, 0 <= floor <= 1),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
                raise ValueError(f"Expected argument `{name}` to be a valid number, but got {value!r}.")
        if max_ratio is not None and not max_ratio >= 1:
            raise ValueError(f"Expected argument `max_ratio` to be >= 1, but got {max_ratio!r}.")
        lo = max(floor, 1.0 / max_ratio if max_ratio is not None else 0.0)
        raw = self._raw_weight(hard, easy, by, mode, gamma, temperature, hard_when)
        low, top, gaps = self._one(
            f"SELECT min(r), max(r), count(*) FILTER (WHERE r IS NULL) FROM (SELECT {raw} AS r FROM ({self._select()}))"
        )
        if gaps:
            raise ValueError(
                f"Expected the mappings `hard`/`easy` to cover every polarity or group, but {gaps} rows have no weight."
            )
        if low is None:
            raise ValueError("Expected at least one row, but the dataset is empty.")
        if low < 0 or not math.isfinite(low) or not math.isfinite(top):
            raise ValueError(f"Expected non-negative finite raw weights, but they range over [{low}, {top}].")
        if top <= 0:
            raise ValueError("Expected at least one positive raw weight, but all are zero.")
        w = f"CAST(greatest(({raw}) / {_lit(top)}, {_lit(lo)}) AS FLOAT)"
        query = f"SELECT {_q('index')}, {w} AS {_q(column)} FROM ({self._select()})"
        if dest.suffix.lower() == ".parquet":
            with atomic_path(dest, suffix=".parquet.tmp") as tmp:
                target = str(tmp).replace("'", "''")
                self._con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
            return dest
        n = len(self)
        lo_i, hi_i = self._one(f"SELECT min({_q('index')}), max({_q('index')}) FROM {self._source}")
        if n and (lo_i != 0 or hi_i != n - 1):
            raise ValueError(
                f"Expected the `index` column to be 0 .. {n - 1} for a .npy array in dataset-index order, but it "
                f"ranges over [{lo_i}, {hi_i}]; write a .parquet instead."
            )
        with atomic_path(dest, suffix=".npy.tmp") as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n,))
            arr[:] = np.nan
            reader = self._con.sql(query).to_arrow_reader(_FETCH_ROWS)
            for batch in reader:
                idx = batch.column(0).to_numpy()
                arr[idx] = batch.column(1).to_numpy()
            for start in range(0, n, _FETCH_ROWS):  # N rows, every slot written: index is a permutation
                gap = np.isnan(arr[start : start + _FETCH_ROWS])
                if gap.any():
                    raise ValueError(
                        f"Expected the `index` column to hold every value 0 .. {n - 1} once, but "
                        f"{start + int(np.flatnonzero(gap)[0])} is missing."
                    )
            arr.flush()
            del arr
        return dest

    def _raw_weight(
        self,
        hard: float | Mapping[str, float] | None,
        easy: float | Mapping[str, float],
        by: str | None,
        mode: str,
        gamma: float,
        temperature: float,
        hard_when: Literal["lower", "higher"] | None,
    ) -> str:
        if by is None:
            self._split_or_raise("weights() without `by`")
            hard_sql = _group_case(4.0 if hard is None else hard, "hard")
            return f"(CASE WHEN difficulty = 'hard' THEN {hard_sql} ELSE {_group_case(easy, 'easy')} END)"
        if hard is not None:
            raise ValueError(
                f"Expected argument `hard` only for per-group weights of a split dataset, but `by` is {by!r}."
            )
        self._require(by)
        if hard_when is not None and hard_when not in ("lower", "higher"):
            raise ValueError(f"Expected argument `hard_when` to be 'lower', 'higher' or None, but got {hard_when!r}.")
        v = f"CAST({_q(by)} AS DOUBLE)"
        direction = hard_when or harder_when(by)
        h = (
            v
            if direction == "higher"
            else (f"((1.0::DOUBLE - {v}) / 2.0::DOUBLE)" if by == "margin" else f"(1.0::DOUBLE - {v})")
        )
        if mode == "power":
            low = self._one(f"SELECT min({h}) FROM {self._source}")[0]
            if low is not None and low < 0:
                raise ValueError(f"Expected non-negative hardness for mode='power', but the smallest is {low}.")
            return f"pow({h}, {_lit(gamma)})"
        top = self._one(f"SELECT max({h}) FROM {self._source}")[0]
        return f"exp(({h} - {_lit(top)}) / {_lit(temperature)})"


def _group_case(value: float | Mapping[str, float], what: str) -> str:
    """A SQL weight for one difficulty: a number, or a mapping keyed by polarity or group name."""
    if isinstance(value, Mapping):
        keys = list(value)
        cases = " ".join(f"WHEN '{k}' THEN {_lit(v)}" for k, v in value.items())
        if keys and all(k in POLARITIES for k in keys):
            return f"(CASE polarity {cases} END)"
        if keys and all(k in GROUPS for k in keys):
            return f"(CASE {_q('group')} {cases} END)"
        raise ValueError(
            f"Expected argument `{what}` as a mapping to be keyed by {list(POLARITIES)} or by group names, but got "
            f"{keys}."
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"Expected argument `{what}` to be a non-negative number, but got {value!r}.")
    return _lit(value)


def _where(only: str | Iterable[str] | None) -> str | None:
    if only is None:
        return None
    column, values = parse_only(only)
    return f"{_q(column)} IN ({', '.join(repr(v) for v in values)})"
