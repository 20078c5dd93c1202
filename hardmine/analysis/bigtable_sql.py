"""The SQL plumbing of the out-of-core tables: DuckDB connection, identifiers, literals, files and their settings.

Shared by :mod:`hardmine.analysis.bigtable` (the :class:`~hardmine.analysis.bigtable.ScoreDataset` and its split),
:mod:`hardmine.analysis.bigtable_report` (summaries) and :mod:`hardmine.analysis.bigtable_weights` (weights). Nothing
here reads rows: it builds the SQL that DuckDB streams over the Parquet files.

Example:
    >>> quote("label"), literal(0.1)
    ('"label"', 'CAST(0.1 AS DOUBLE)')
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hardmine.analysis.io import parse_only
from hardmine.core import validate

__all__ = [
    "FETCH_ROWS",
    "SETTINGS_KEY",
    "as_double",
    "connect",
    "duckdb_module",
    "file_settings",
    "files_of",
    "literal",
    "quote",
    "string",
    "where_only",
]

PathLike = str | os.PathLike[str]
#: The metadata key (and ``attrs`` key) of hardmine's settings.
SETTINGS_KEY = "hardmine"
#: Rows per Arrow batch when a step streams rows back to Python.
FETCH_ROWS = 1 << 20


def duckdb_module() -> Any:
    """The ``duckdb`` module, or an ``ImportError`` that names the extra to install."""
    try:
        import duckdb
    except ImportError as err:
        raise ImportError("Out-of-core score tables need DuckDB: pip install 'hardmine[big]'") from err
    return duckdb


def quote(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: float) -> str:
    """A float as an exact DOUBLE literal (``repr`` round-trips)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def as_double(column: str) -> str:
    """The column, quoted, cast to DOUBLE (the in-memory functions read every score as float64)."""
    return f"CAST({quote(column)} AS DOUBLE)"


def string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def files_of(path: PathLike | Sequence[PathLike]) -> list[Path]:
    """The Parquet files of ``path``: a file, a folder read recursively (sorted), or a list of either."""
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


def file_settings(file: Path) -> dict[str, Any]:
    """The hardmine settings in a file's metadata: pandas' ``attrs`` or a ``hardmine`` key."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(file).metadata or {}
    if SETTINGS_KEY.encode() in meta:
        return dict(json.loads(meta[SETTINGS_KEY.encode()]))
    if b"PANDAS_ATTRS" in meta:
        return dict(json.loads(meta[b"PANDAS_ATTRS"]).get(SETTINGS_KEY, {}))
    return {}


def connect(memory_limit: str, threads: int | None, temp_directory: PathLike | None) -> Any:
    """An in-memory DuckDB connection with a memory limit, a thread count and a spill folder, keeping row order."""
    duckdb = duckdb_module()
    if not isinstance(memory_limit, str):
        raise TypeError(f"`memory_limit` must be a string such as '1GB', got {type(memory_limit).__name__}")
    threads = validate.optional(validate.integer, "threads", threads, min=1)
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = {string(memory_limit)}")
    if threads is not None:
        con.execute(f"SET threads = {threads}")
    # DuckDB creates the folder only when a step spills, and removes what it wrote when the connection closes.
    default = Path(tempfile.gettempdir()) / f"hardmine-duckdb-{os.getpid()}"
    spill = Path(temp_directory) if temp_directory is not None else default
    con.execute(f"SET temp_directory = {string(str(spill))}")
    con.execute("SET preserve_insertion_order = true")
    return con


def where_only(only: str | Iterable[str] | None, columns: Sequence[str]) -> str | None:
    """The SQL condition that keeps the rows ``only`` names (as :func:`hardmine.select`), or ``None`` for all rows.

    Raises:
        ValueError: an unknown name, or a polarity/group name on a split without a positive class (``columns`` has
            no such column).
    """
    if only is None:
        return None
    column, values = parse_only(only)
    if column not in columns:
        raise ValueError(
            f"only={only!r} needs the `{column}` column, but this split has no positive class (easy/hard only): "
            "use only='hard' or only='easy', or split with `positive=`."
        )
    return f"{quote(column)} IN ({', '.join(string(v) for v in values)})"
