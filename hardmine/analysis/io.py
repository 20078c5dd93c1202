"""CSV and Parquet export and import of hardmine tables: written through hardmine's one write path, read back checked.

The checks of a table read back are :func:`hardmine.analysis.tablecheck.check_table` (importable from here too).

A write goes to a temporary file in the destination folder, is flushed to disk, and then replaces the destination in
one ``os.replace``: a reader sees either the old file or the complete new one, never half a table (see
:mod:`hardmine.core._files` for modes, symlinks, standard output and compression). Under torch.distributed only rank 0
writes. A CSV gets a small sidecar (``<file>.hardmine.json``) with its row count, size and split settings, so that a
read detects a truncated file and restores ``table.attrs``; Parquet keeps the settings in its own metadata.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis._json import jsonable
from hardmine.analysis.splitting import OnlyArg, parse_only, select
from hardmine.analysis.tablecheck import TEXT_COLUMNS, check_table
from hardmine.core import validate
from hardmine.core._files import atomic_path, compression_of, is_stdout, resolve_output
from hardmine.core.distributed import is_main_process

# `select` and `parse_only` live in hardmine.analysis.splitting (they are not I/O); importable from here as before.
__all__ = [
    "OnlyArg",
    "check_table",
    "parse_only",
    "read_csv",
    "read_parquet",
    "select",
    "sidecar_path",
    "to_csv",
    "to_parquet",
]

PathLike = str | os.PathLike[str]
_SIDECAR_SUFFIX = ".hardmine.json"
_TABLE_FORMAT = "hardmine-table"
_TABLE_VERSION = 1
#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection), and the escape itself.
_FORMULA_START = frozenset("=+-@\t\r'")
#: A formula start right after a cell separator of the ``"\\0".join`` of a column (the first cell is checked apart).
_NEEDS_ESCAPE = re.compile("\0[=+\\-@\t\r']")


def sidecar_path(path: PathLike) -> Path:
    """The sidecar that describes a CSV table hardmine wrote: ``hard.csv`` -> ``hard.csv.hardmine.json``.

    It records the row count, the byte size, the columns whose text cells were escaped against formula injection,
    and the split settings (``table.attrs["hardmine"]``). A spreadsheet or another tool never needs it; without it
    the CSV reads as a plain table.

    Example:
        >>> sidecar_path("out/hard.csv").name
        'hard.csv.hardmine.json'
    """
    p = Path(path)
    return p.with_name(p.name + _SIDECAR_SUFFIX)


def _settings_from_json(settings: Any) -> dict[str, Any]:
    """Settings as :func:`hardmine.split` made them: JSON turned the class keys of per-class thresholds into text."""
    out = dict(settings) if isinstance(settings, Mapping) else {}
    per_class = out.get("per_class_thresholds")
    if isinstance(per_class, Mapping):
        out["per_class_thresholds"] = {int(k) if str(k).lstrip("-").isdigit() else k: v for k, v in per_class.items()}
    return out


def _text_columns(table: pd.DataFrame) -> list[str]:
    return [
        c
        for c in table.columns
        if pd.api.types.is_object_dtype(table[c]) or pd.api.types.is_string_dtype(table[c].dtype)
    ]


def _escape_formulas(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str], bool]:
    """Text cells a spreadsheet would run as a formula get a leading ``'`` (OWASP), as do cells starting with ``'``.

    Returns the table to write (the original when nothing needed escaping), the text columns (all of which
    :func:`read_csv` un-escapes when the sidecar lists them), and whether some text holds a carriage return (the
    CSV then quotes every text cell: pandas leaves a lone carriage return unquoted, and readers take it for a line end).
    """
    columns = _text_columns(table)
    changed: dict[str, Any] = {}
    has_cr = False
    for col in columns:
        values = table[col].to_numpy(dtype=object)
        try:  # one C-level pass over all cells: most tables need no escape at all
            joined = "\0".join(values)
        except TypeError:  # not all str
            joined = None
        if joined is not None:
            has_cr = has_cr or "\r" in joined
            if joined[:1] not in _FORMULA_START and not _NEEDS_ESCAPE.search(joined):
                continue
        else:
            has_cr = has_cr or any(isinstance(v, str) and "\r" in v for v in values)
        mask = np.fromiter((type(v) is str and v[:1] in _FORMULA_START for v in values), bool, len(values))
        if mask.any():
            out = values.copy()
            out[mask] = ["'" + v for v in values[mask]]
            changed[col] = pd.Series(out, index=table.index, dtype=object)
    return (table.assign(**changed) if changed else table), columns, has_cr


def _unescape_formulas(table: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in table.columns:
            continue
        values = table[col].to_numpy(dtype=object)
        mask = np.fromiter((isinstance(v, str) and v[:1] == "'" for v in values), bool, len(values))
        if mask.any():
            out = values.copy()
            out[mask] = [v[1:] for v in values[mask]]
            table[col] = pd.Series(out, index=table.index, dtype=object)


def _check_frame(table: object) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected argument `table` to be a pandas DataFrame, but got {type(table).__name__}.")


def to_csv(
    table: pd.DataFrame,
    path: PathLike,
    *,
    only: OnlyArg = None,
    chunksize: int | None = 100_000,
    inputs: Iterable[PathLike] = (),
) -> Path:
    """Write a hardmine table to CSV atomically, optionally only some rows (the hard samples, say).

    Floats are written with enough digits to come back bit-identical; the file is plain CSV with a header row, for
    people, spreadsheets and other tools. Rows are written ``chunksize`` at a time, so tens of millions of rows
    stream without a second copy of the table in memory. The write follows hardmine's write path (atomic, the
    umask or the replaced file's mode, symlinks written through, ``"-"`` for standard output, compression from the
    suffix: ``.gz``, ``.bz2``, ``.xz``, ``.zst``). Text cells that start with ``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return (or ``'``) get a leading ``'``, so that no spreadsheet runs them as formulas; :func:`read_csv`
    removes it again. A sidecar ``<path>.hardmine.json`` records the row count, the file size and the split settings
    so that :func:`read_csv` detects a truncated or altered file and restores ``table.attrs["hardmine"]``.

    Args:
        table: any hardmine table (scores, a split table, dynamics, label issues).
        path: the destination file (its folder must exist), or ``"-"`` for standard output.
        only: which rows, as in :func:`select`: ``"hard"``, ``"easy"``, a group name or a list of them.
        chunksize: rows per write (a positive int, or ``None`` for all at once).
        inputs: files the caller read to make the table; ``path`` may not be one of them.

    Returns:
        The path written (``Path("-")`` for standard output).

    Raises:
        ValueError: for a bad ``chunksize``, or a destination that is one of ``inputs``, a folder or a socket.
        FileNotFoundError: when the destination folder does not exist.
        PermissionError: when the destination or its folder is not writable.

    Example:
        >>> import tempfile, os
        >>> t = pd.DataFrame({"index": [0, 1], "label": [1, 0], "difficulty": ["hard", "easy"]})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = to_csv(t, os.path.join(d, "hard.csv"), only="hard")
        ...     print(open(os.path.join(d, "hard.csv")).read().strip())
        index,label,difficulty
        0,1,hard
    """
    _check_frame(table)
    chunksize = validate.optional(validate.integer, "chunksize", chunksize, min=1)
    rows = select(table, only)
    safe, text_columns, has_cr = _escape_formulas(rows)
    quoting = csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL
    if is_stdout(path):
        if is_main_process():
            safe.to_csv(sys.stdout, index=False, chunksize=chunksize, quoting=quoting)
        return Path("-")
    dest = Path(path)
    if not is_main_process():
        return dest
    compression = compression_of(dest)
    stream = resolve_output(dest, inputs=inputs, what="the table").kind == "stream"
    with atomic_path(dest, inputs=inputs, what="the table") as tmp:
        safe.to_csv(tmp, index=False, chunksize=chunksize, compression=compression, quoting=quoting)
        size = None if stream else tmp.stat().st_size
    side = sidecar_path(dest)
    if size is None:  # a device, a pipe, /dev/stdout: nothing to describe
        return dest
    if len(side.name.encode("utf-8", "surrogateescape")) > 255:
        warnings.warn(
            f"The name of {str(dest)!r} is too long for its sidecar {side.name[:40]!r}...: the table is written "
            "without it, so hm.read_csv reads it as a plain CSV (checked, but without the settings and the "
            "truncation check).",
            stacklevel=2,
        )
        return dest
    meta = {
        "format": _TABLE_FORMAT,
        "version": _TABLE_VERSION,
        "rows": len(rows),
        "bytes": size,
        "columns": [str(c) for c in rows.columns],
        "escaped": [str(c) for c in text_columns],
        "settings": jsonable(table.attrs.get("hardmine", {})),
    }
    with atomic_path(side, inputs=inputs, what="the table's sidecar") as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return dest


def _read_sidecar(p: Path) -> dict[str, Any] | None:
    side = sidecar_path(p)
    try:
        if not side.is_file():
            return None
    except OSError:  # a name too long for a sidecar: to_csv wrote none
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{str(side)!r} (the sidecar of {str(p)!r}) is unreadable: {err}.") from err
    if not isinstance(meta, dict) or meta.get("format") != _TABLE_FORMAT:
        raise ValueError(f"{str(side)!r} (beside {str(p)!r}) is not a hardmine table sidecar.")
    if meta.get("version") != _TABLE_VERSION:
        raise ValueError(f"{str(side)!r} was written by another hardmine version (format {meta.get('version')!r}).")
    size = p.stat().st_size
    if size != meta.get("bytes"):
        raise ValueError(
            f"{str(p)!r} is damaged: it has {size} bytes, but hardmine wrote {meta.get('bytes')} (recorded in "
            f"{str(side)!r}); the file is truncated or was changed afterwards. Write it again, or, if you edited it "
            f"on purpose, delete {str(side)!r} to read it as a plain CSV."
        )
    return meta


_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_csv(path: PathLike) -> pd.DataFrame:
    """Read a table written by :func:`to_csv`, with its contents checked and hardmine's dtypes and settings restored.

    ``index``, ``label`` and ``pred`` come back as int64, ``id`` as str, the measures and ``prob_<c>`` columns as
    float32, ``polarity``/``difficulty``/``group`` as categoricals with hardmine's category order; other columns as
    pandas reads them. Compressed files (``.gz``, ``.bz2``, ``.xz``, ``.zst``) are read by their suffix.

    When the sidecar ``<path>.hardmine.json`` is there (hardmine wrote the file), the file must have the recorded
    size and row count (a truncated file fails), the formula escapes are removed and the split settings come back in
    ``table.attrs["hardmine"]``. Every table, with or without a sidecar, is checked: no empty cell in hardmine's
    columns (a short row), whole numbers in ``index``/``label``/``pred``, numbers in the score columns, probabilities
    in [0, 1] (margin in [-1, 1], loss and entropy >= 0), a unique ``index``, known group names, ``group`` equal to
    ``<difficulty>_<polarity>``, and, when the settings are known, ``polarity`` and ``difficulty`` as the settings
    give them.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file is not a hardmine table or is damaged, naming the row (and file line) and column.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such file: {str(p)!r}.")
    meta = _read_sidecar(p)
    try:
        header = pd.read_csv(p, nrows=0).columns
        # Empty cells are missing values, except in text columns, where an empty string is a valid id.
        text_cols = set(TEXT_COLUMNS) | set(meta.get("escaped", []) if meta else [])
        na_values = {c: [""] for c in header if c not in text_cols}
        text = {c: str for c in text_cols if c in header}
        table = pd.read_csv(p, dtype=text, keep_default_na=False, na_values=na_values)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{str(p)!r} is empty, not a hardmine table.") from err
    except pd.errors.ParserError as err:
        found = _PARSER_LINE.search(str(err))
        if found:
            expected, line, saw = found.groups()
            raise ValueError(
                f"{str(p)!r}: line {line} (row {int(line) - 2}) has {saw} fields, but the header has {expected} "
                "columns: an extra field (an unquoted comma?)."
            ) from err
        raise ValueError(f"{str(p)!r} is not a hardmine CSV table: {str(err).strip()}") from err
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise ValueError(f"{str(p)!r} is not a readable CSV table ({type(err).__name__}: {err}).") from err
    if meta is not None:
        if len(table) != meta.get("rows"):
            raise ValueError(
                f"{str(p)!r} is damaged: it holds {len(table)} rows, but hardmine wrote {meta.get('rows')} "
                f"(recorded in {str(sidecar_path(p))!r})."
            )
        if [str(c) for c in table.columns] != meta.get("columns"):
            raise ValueError(
                f"{str(p)!r} is damaged: its columns {list(table.columns)[:20]} are not the {meta.get('columns')} "
                "hardmine wrote."
            )
        _unescape_formulas(table, meta.get("escaped", []))
        table.attrs["hardmine"] = _settings_from_json(meta.get("settings", {}))
    return check_table(table, str(p), lines=True)


def _pyarrow() -> Any:
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise ImportError("Parquet export needs pyarrow: pip install 'hardmine[parquet]'") from err


def to_parquet(table: pd.DataFrame, path: PathLike, *, only: OnlyArg = None, inputs: Iterable[PathLike] = ()) -> Path:
    """Write a hardmine table to Parquet atomically (needs pyarrow: ``pip install 'hardmine[parquet]'``).

    Parquet keeps every dtype, categoricals included, and the split settings (``table.attrs``), and is several
    times smaller and faster than CSV for millions of rows. The write follows hardmine's write path (see
    :func:`to_csv`); standard output is refused (Parquet is binary).

    Raises:
        ValueError: when ``path`` is ``"-"``, one of ``inputs``, a folder or a socket.
        FileNotFoundError: when the destination folder does not exist.
        PermissionError: when the destination or its folder is not writable.
    """
    _pyarrow()
    _check_frame(table)
    if is_stdout(path):
        raise ValueError("Expected argument `path` to name a file: Parquet is binary and is not written to stdout.")
    rows = select(table, only)
    dest = Path(path)
    if not is_main_process():
        return dest
    rows = rows.copy(deep=False)
    rows.attrs = {"hardmine": jsonable(table.attrs.get("hardmine", {}))}
    with atomic_path(dest, inputs=inputs, what="the table") as tmp:
        rows.to_parquet(tmp, index=False)
    return dest


def read_parquet(path: PathLike) -> pd.DataFrame:
    """Read a table written by :func:`to_parquet`, with the same checks as :func:`read_csv` and its settings.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not a readable Parquet file (a truncated one, say) or not a sound hardmine table,
            naming the row and column.
    """
    _pyarrow()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such file: {str(p)!r}.")
    try:
        table = pd.read_parquet(p)
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError ... for a damaged file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{str(p)!r} is not a readable Parquet file (truncated or damaged?): {reason}") from err
    table.attrs["hardmine"] = _settings_from_json(table.attrs.get("hardmine", {}))
    return check_table(table, str(p), lines=False)
