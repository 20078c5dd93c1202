"""A readable report of a split table: counts per group, confusion, precision/recall/F1, the hardest samples.

:func:`report_text` gives plain text for a terminal; :func:`report_html` a self-contained HTML page (thumbnails of
the hardest images embedded as base64 PNG, nothing linked) that a person can open in any browser or attach to a
ticket. Both read the table as it is: when a CSV holds only some rows (``--only hard``), the counts and metrics are
of those rows, and the report says so.

Image files that ``hardmine score`` skipped as unreadable are listed in ``<table>.skipped.txt`` beside the CSV
(one ``path<TAB>reason`` line each); the report lists them too.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io as _io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hardmine.analysis.io import read_csv
from hardmine.analysis.metrics import summary
from hardmine.core import validate
from hardmine.core._files import atomic_path, is_stdout
from hardmine.core.columns import harder_when

__all__ = [
    "Report",
    "hardest",
    "load_report",
    "read_skipped",
    "report_html",
    "report_text",
    "skipped_path",
    "write_html",
    "write_skipped",
]

PathLike = str | os.PathLike[str]


def skipped_path(table_path: PathLike) -> Path:
    """The sidecar that lists the skipped image files of a table: ``hard.csv`` -> ``hard.csv.skipped.txt``."""
    p = Path(table_path)
    return p.with_name(p.name + ".skipped.txt")


def write_skipped(
    table_path: PathLike, skipped: Sequence[tuple[str, str]], *, inputs: Sequence[PathLike] = ()
) -> Path | None:
    """Write (atomically) the ``path<TAB>reason`` list of skipped files beside a table; remove a stale one if none.

    Returns:
        The sidecar path, or ``None`` when nothing was skipped.
    """
    dest = skipped_path(table_path)
    if not skipped:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        return None
    text = "".join(f"{path}\t{' '.join(reason.split())}\n" for path, reason in skipped)
    _atomic_write(dest, text.encode("utf-8"), inputs=inputs, what="the skipped-files list")
    return dest


def read_skipped(table_path: PathLike) -> list[tuple[str, str]]:
    """The ``(path, reason)`` pairs of the sidecar of ``table_path``; empty when there is no sidecar."""
    p = skipped_path(table_path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            path, _, reason = line.partition("\t")
            out.append((path, reason))
    return out


@dataclass
class Report:
    """A table to report on, with where it came from and the files its scoring skipped."""

    table: pd.DataFrame
    source: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_report(path: PathLike) -> Report:
    """Read a split table written by ``hardmine score`` / :func:`hardmine.to_csv` and its skipped-files sidecar.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not a split hardmine table (columns ``label``, ``pred``, ``difficulty`` are needed).
    """
    table = read_csv(path)
    missing = [c for c in ("label", "pred", "difficulty") if c not in table.columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} has no {', '.join(missing)} column(s): the report needs a split table "
            "(hardmine score writes one; in Python: hm.to_csv(hm.split(scores, ...), path))."
        )
    return Report(table=table, source=str(path), skipped=read_skipped(path))


def hardest(table: pd.DataFrame, n: int = 20, *, by: str = "label_prob") -> pd.DataFrame:
    """The ``n`` hardest rows by ``by`` (lowest first for probabilities and margin, highest first for loss).

    Ties keep dataset order.

    Example:
        >>> t = pd.DataFrame({"index": [0, 1, 2], "label_prob": [0.9, 0.1, 0.5]})
        >>> hardest(t, 2)["index"].tolist()
        [1, 2]
    """
    if by not in table.columns:
        raise ValueError(
            f"Expected argument `by` to name a score column of the table, but got {by!r} (columns: "
            f"{list(table.columns)})."
        )
    n = validate.integer("n", n, min=0)
    ascending = harder_when(by) == "lower"
    return table.sort_values(by, ascending=ascending, kind="stable").head(n)


def _scope_line(table: pd.DataFrame) -> str:
    n = len(table)
    kinds = sorted(set(table["difficulty"].astype(str))) if "difficulty" in table.columns else []
    if kinds == ["hard"]:
        return (
            f"{n} rows, all hard: this file holds only the hard samples, so the counts and metrics below are of "
            "these rows only"
        )
    if kinds == ["easy"]:
        return f"{n} rows, all easy: the counts and metrics below are of these rows only"
    return f"{n} samples"


def _class_name(table: pd.DataFrame) -> pd.Series | None:
    return table["label_name"].astype(str) if "label_name" in table.columns else None


def per_class(table: pd.DataFrame) -> pd.DataFrame:
    """One row per ground-truth class: ``count``, ``hard``, ``accuracy`` and ``mean_label_prob``."""
    g = table.groupby("label", sort=True)
    out = pd.DataFrame({"count": g.size()})
    names = _class_name(table)
    if names is not None:
        out.insert(0, "name", names.groupby(table["label"]).first())
    if "difficulty" in table.columns:
        out["hard"] = (table["difficulty"].astype(str) == "hard").groupby(table["label"]).sum().astype(np.int64)
    out["accuracy"] = (table["pred"] == table["label"]).groupby(table["label"]).mean()
    if "label_prob" in table.columns:
        out["mean_label_prob"] = g["label_prob"].mean()
    return out


def _rows_for_display(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    cols = ["index", "label", "pred", "label_name", "pred_name", by, "group", "id"]
    seen: list[str] = []
    for c in cols:
        if c in rows.columns and c not in seen:
            seen.append(c)
    return rows[seen]


def report_text(
    table: pd.DataFrame,
    *,
    top: int = 20,
    by: str = "label_prob",
    skipped: Sequence[tuple[str, str]] = (),
    source: str | None = None,
) -> str:
    """The report as plain text: scope, group counts, confusion, precision/recall/F1, per class, hardest ``top``.

    Args:
        table: a split table (``label``, ``pred``, ``group`` columns at least).
        top: how many of the hardest samples to list (with their ids, the file paths for image folders).
        by: the score that ranks the hardest samples.
        skipped: ``(path, reason)`` of files the scoring skipped, listed at the end.
        source: where the table came from, for the title.

    Example:
        >>> from hardmine.analysis.splitting import split
        >>> t = split(pd.DataFrame({"index": [0, 1, 2, 3], "id": ["a.png", "b.png", "c.png", "d.png"],
        ...     "label": [1, 1, 0, 0], "pred": [1, 0, 0, 0], "label_prob": [0.9, 0.4, 0.8, 0.6]}), threshold=0.7)
        >>> text = report_text(t, top=1)
        >>> "recall 0.500" in text, "b.png" in text
        (True, True)
    """
    s = summary(table)
    m = s.metrics
    title = f"hardmine report{f': {source}' if source else ''}"
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    lines = [
        title,
        _scope_line(table),
        f"positive class(es): {s.settings.get('positive')}",
        "",
        "groups",
    ]
    if s.kind != "one_vs_rest":  # no positive class: the summary's own per-class (or per-task) report
        lines += s.body_lines()
    else:
        lines += [
            s.groups.to_string(**fmt),
            "",
            "confusion (rows: ground truth, columns: predicted)",
            s.confusion.to_string(),
            "",
            f"positive class: precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
            f"accuracy {m['accuracy']:.3f}  (support {m['support']})",
            "",
            "per class",
            per_class(table).to_string(**fmt),
        ]
    top = validate.integer("top", top, min=0)
    if top and by in table.columns:
        rows = _rows_for_display(hardest(table, top, by=by), by)
        direction = "lowest" if harder_when(by) == "lower" else "highest"
        lines += ["", f"hardest {len(rows)} ({direction} {by} first)", rows.to_string(index=False, **fmt)]
    if skipped:
        folders = sum(1 for _, reason in skipped if reason.startswith("unreadable folder"))
        what = "unreadable images" + (f" and {folders} unreadable folder(s)" if folders else "")
        lines += ["", f"skipped files ({len(skipped)}, not scored: {what})"]
        lines += [f"  {path}  ({reason})" for path, reason in skipped]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 180px; border: 1px solid #ddd; padding: 6px; background: #fafafa; }
figure img { width: 100%; height: auto; image-rendering: pixelated; display: block; }
figcaption { font-size: 12px; word-break: break-all; }
.missing { height: 120px; display: flex; align-items: center; justify-content: center; color: #999; }
code { font-size: 11px; }
"""


def _under(path: Path, root: str) -> bool:
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _thumbnail(path: str, size: int, base: Path | None, image_root: str | None = None) -> str | None:
    """A ``data:image/png;base64,...`` URI of a downscaled copy of the image, or ``None`` when it cannot be read.

    With ``image_root``, only a file whose real path (links followed) lies under it is read.
    """
    from PIL import Image

    candidates = [Path(path)]
    if base is not None and not Path(path).is_absolute():
        candidates.append(base / path)
    for candidate in candidates:
        if not candidate.is_file():
            continue
        if image_root is not None and not _under(candidate, image_root):
            continue
        try:
            with Image.open(candidate) as im:
                img = im.convert("RGB")
            img.thumbnail((size, size))
            buf = _io.BytesIO()
            img.save(buf, format="PNG")
        except Exception:  # noqa: BLE001 - any unreadable file becomes a placeholder in the gallery
            return None
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return None


def report_html(
    table: pd.DataFrame,
    *,
    top: int = 20,
    by: str = "label_prob",
    skipped: Sequence[tuple[str, str]] = (),
    source: str | None = None,
    thumbnail_size: int = 160,
    image_root: PathLike | None = None,
) -> str:
    """The report as one self-contained HTML page with a thumbnail gallery of the ``top`` hardest samples.

    Thumbnails are downscaled to ``thumbnail_size`` pixels and embedded as base64 PNG, so the page needs no other
    file; a sample whose ``id`` is not a readable image file (moved, or not an image dataset) gets a placeholder.
    Relative paths are tried from the working directory, then from the folder of ``source``. All text is escaped.

    ``image_root`` limits which files are embedded: only images whose real path (symlinks followed) lies under it,
    so that a table from someone else cannot make the page carry ``../../secret.png`` or ``/home/you/id.png``.
    ``None`` embeds any image the ids name: use it only for tables you made. ``hardmine report`` passes the folder
    that ``hardmine score`` scored (recorded in the table's settings as ``image_root``).

    Example:
        >>> from hardmine.analysis.splitting import split
        >>> t = split(pd.DataFrame({"index": [0, 1], "id": ["<a>.png", "b.png"], "label": [1, 0], "pred": [0, 0],
        ...     "label_prob": [0.2, 0.9]}), threshold=0.5)
        >>> page = report_html(t, top=1)
        >>> page.startswith("<!DOCTYPE html>"), "&lt;a&gt;.png" in page, "<a>.png" in page
        (True, True, False)
    """
    s = summary(table)
    m = s.metrics
    base = Path(source).parent if source else None
    root = None if image_root is None else os.fspath(image_root)
    esc = html.escape
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    title = f"hardmine report{f': {source}' if source else ''}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{esc(title)}</title><style>{_CSS}</style></head>',
        "<body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(_scope_line(table))}; positive class(es): {esc(str(s.settings.get('positive')))}.</p>",
    ]
    if s.kind != "one_vs_rest":  # no positive class: the summary's own per-class (or per-task) report
        parts.append(s._repr_html_())
    else:
        metrics = pd.DataFrame([{k: m[k] for k in ("precision", "recall", "f1", "accuracy", "support")}])
        parts += [
            "<h2>Groups</h2>",
            s.groups.to_html(**fmt),
            "<h2>Confusion</h2><p>rows: ground truth, columns: predicted</p>",
            s.confusion.to_html(),
            "<h2>Positive class</h2>",
            metrics.to_html(index=False, **fmt),
            "<h2>Per class</h2>",
            per_class(table).to_html(**fmt),
        ]
    top = validate.integer("top", top, min=0)
    thumbnail_size = validate.integer("thumbnail_size", thumbnail_size, min=1)
    if top and by in table.columns:
        rows = hardest(table, top, by=by)
        direction = "lowest" if harder_when(by) == "lower" else "highest"
        parts.append(f"<h2>Hardest {len(rows)} ({esc(direction)} {esc(by)} first)</h2>")
        parts.append('<div class="gallery">')
        has_names = "label_name" in rows.columns and "pred_name" in rows.columns
        for rank, row in enumerate(rows.itertuples(index=False), start=1):
            r = row._asdict()
            sample_id = str(r.get("id", r["index"]))
            uri = _thumbnail(sample_id, thumbnail_size, base, root) if "id" in r else None
            label = f"{r['label_name']} ({r['label']})" if has_names else str(r["label"])
            pred = f"{r['pred_name']} ({r['pred']})" if has_names else str(r["pred"])
            image = (
                f'<img src="{uri}" alt="{esc(sample_id)}">'
                if uri is not None
                else '<div class="missing">image not available</div>'
            )
            parts.append(
                f'<figure class="sample">{image}<figcaption>#{rank} &middot; {esc(by)} {float(r[by]):.3f}<br>'
                f"label {esc(label)} &rarr; predicted {esc(pred)}<br>{esc(str(r.get('group', '')))}<br>"
                f"<code>{esc(sample_id)}</code></figcaption></figure>"
            )
        parts.append("</div>")
    if skipped:
        parts.append(f"<h2>Skipped files ({len(skipped)})</h2><p>Unreadable images and folders, not scored.</p><ul>")
        parts += [f"<li><code>{esc(path)}</code>: {esc(reason)}</li>" for path, reason in skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(
    report: Report,
    path: PathLike,
    *,
    top: int = 20,
    by: str = "label_prob",
    image_root: PathLike | None = None,
    inputs: Sequence[PathLike] = (),
) -> Path:
    """Write :func:`report_html` of ``report`` to ``path`` through hardmine's write path (``"-"``: stdout).

    ``image_root``: see :func:`report_html`. ``report.source`` and ``inputs`` may not be ``path``.

    Raises:
        ValueError: when ``path`` is the report's table or another input, a folder or a socket.
        FileNotFoundError: when the destination folder does not exist.
        PermissionError: when it is not writable.
    """
    page = report_html(
        report.table, top=top, by=by, skipped=report.skipped, source=report.source, image_root=image_root
    )
    if is_stdout(path):
        sys.stdout.write(page)
        sys.stdout.flush()
        return Path("-")
    dest = Path(path)
    sources = [*inputs, *([report.source] if report.source else [])]
    _atomic_write(dest, page.encode("utf-8"), inputs=sources, what="the HTML report")
    return dest


def _atomic_write(dest: Path, data: bytes, *, inputs: Sequence[PathLike] = (), what: str = "output") -> None:
    with atomic_path(dest, inputs=inputs, what=what) as tmp:
        tmp.write_bytes(data)
