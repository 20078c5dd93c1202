"""The thumbnails of :func:`hardmine.report`: images by dataset index, or files under a trusted root, made with PIL.

Each thumbnail is a data URI (PNG when small or grey, else JPEG). Image files are opened only inside ``image_root``
(after resolving symlinks and ``..``) unless any path is allowed, because ids may be hostile (``../../secret.png``).
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis.plot import _to_image


def _encode(image: np.ndarray, size: int) -> str:
    """A float image in [0, 1] as a data URI, reduced to fit ``size`` x ``size`` (PNG when small or grey, else JPEG)."""
    from PIL import Image

    pixels = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    img = Image.fromarray(pixels)
    return _encode_pil(img, size)


def _encode_pil(img: Any, size: int) -> str:
    from PIL import Image

    small = max(img.size) <= 2 * size
    img.thumbnail((size, size), Image.Resampling.BILINEAR if not small else Image.Resampling.NEAREST)
    buf = io.BytesIO()
    if img.mode == "L" or small:
        img.save(buf, format="PNG", optimize=False)
        mime = "png"
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=82)
        mime = "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _PathGuard:
    """Opens image files only under ``root`` (after resolving symlinks and ``..``), unless any path is allowed."""

    def __init__(self, root: str | os.PathLike[str] | None, allow_any_path: bool) -> None:
        self.root = None if root is None else Path(root).resolve()
        self.allow_any = allow_any_path
        self.outside = 0
        self.missing = 0
        if self.root is not None and not self.root.is_dir():
            raise ValueError(f"Expected argument `image_root` to be an existing folder, but got {str(root)!r}.")

    def resolve(self, name: str) -> Path | None:
        """The file to open for an id, or ``None`` (counted in ``outside`` or ``missing``).

        A relative id is looked up under ``root`` first, then as given (ids recorded as ``root/class/x.png``).
        """
        raw = Path(name)
        candidates = [raw] if raw.is_absolute() else ([self.root / raw] if self.root is not None else []) + [raw]
        allowed = False
        for cand in candidates:
            try:
                path = cand.resolve()
            except (OSError, RuntimeError):
                continue
            if not self.allow_any and (self.root is None or not path.is_relative_to(self.root)):
                continue
            allowed = True
            if path.is_file():
                return path
        if allowed:
            self.missing += 1
        else:
            self.outside += 1
        return None


def _thumbnails(
    table: pd.DataFrame,
    dataset: Any,
    guard: _PathGuard | None,
    size: int,
    rows: np.ndarray,
    notes: list[str],
) -> list[str | None]:
    """One data URI (or ``None``) per table row; images made for the row positions in ``rows`` only."""
    from PIL import Image

    thumbs: list[str | None] = [None] * len(table)
    errors = 0
    first_error = ""
    index = table["index"].to_numpy() if "index" in table.columns else np.arange(len(table))
    ids = table["id"].astype(str).to_numpy() if "id" in table.columns else None
    for pos in rows.tolist():
        try:
            item = dataset[int(index[pos])] if dataset is not None else ids[pos]  # type: ignore[index]
            if isinstance(item, (tuple, list)) and item:
                item = item[0]
            if isinstance(item, (str, bytes, os.PathLike)):
                path = guard.resolve(os.fsdecode(item)) if guard is not None else None
                if path is None:
                    continue
                with Image.open(path) as img:
                    img.draft("RGB", (size * 2, size * 2))
                    thumbs[pos] = _encode_pil(img.convert("RGB") if img.mode not in ("L", "RGB") else img, size)
            else:
                thumbs[pos] = _encode(_to_image(item), size)
        except Exception as err:  # one unreadable sample must not lose the report: counted and named in the notes
            errors += 1
            if not first_error:
                first_error = f"{type(err).__name__}: {err}"
    if errors:
        notes.append(f"{errors} image(s) could not be read and have no thumbnail (first: {first_error}).")
    if guard is not None and guard.missing:
        notes.append(f"{guard.missing} image file(s) named by the ids do not exist.")
    if guard is not None and guard.outside:
        notes.append(
            f"{guard.outside} image path(s) lie outside `image_root` and were not embedded "
            "(pass allow_any_path=True to embed files anywhere)."
        )
    return thumbs
