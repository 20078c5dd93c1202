"""The thumbnails of :func:`hardmine.report`: images by dataset index, or files under a trusted root, made with PIL.

Each thumbnail is a data URI (PNG when small or grey, else JPEG). Image files are opened only inside ``image_root``
(after resolving symlinks and ``..``) unless any path is allowed, because ids may be hostile (``../../secret.png``).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hardmine.analysis._draw import draw_boxes, mask_rgb, sample_boxes
from hardmine.analysis.plot import _to_image


def _pil(image: np.ndarray) -> Any:
    """A float image in [0, 1] (``(H, W)`` or ``(H, W, 3|4)``) as a PIL image (grey or RGB)."""
    from PIL import Image

    pixels = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    return Image.fromarray(pixels)


def _encode(image: np.ndarray, size: int) -> str:
    """A float image in [0, 1] as a data URI, reduced to fit ``size`` x ``size`` (PNG when small or grey, else JPEG)."""
    return _encode_pil(_pil(image), size)


def _reduce(img: Any, size: int) -> bool:
    """Reduce a PIL image in place to fit ``size`` x ``size``; True when it was small (kept sharp, stored as PNG)."""
    from PIL import Image

    small = max(img.size) <= 2 * size
    img.thumbnail((size, size), Image.Resampling.BILINEAR if not small else Image.Resampling.NEAREST)
    return small


def _data_uri(img: Any, png: bool) -> str:
    buf = io.BytesIO()
    if png:
        img.save(buf, format="PNG", optimize=False)
        mime = "png"
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=82)
        mime = "jpeg"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _encode_pil(img: Any, size: int) -> str:
    small = _reduce(img, size)
    return _data_uri(img, img.mode == "L" or small)


@dataclass(frozen=True)
class Overlay:
    """What a dense table adds to its thumbnails (see :func:`hardmine.report`'s ``masks`` and ``boxes``).

    Attributes:
        masks: segmentation: ``masks(index)`` or ``masks[index]`` gives ``(target, prediction)``, class-index masks
            ``(H, W)`` (either may be ``None``); the thumbnail becomes the strip image | target | prediction.
        boxes: detection: ``index -> [(kind, (x1, y1, x2, y2)), ...]`` (``kind`` "missed" or "false_pos"), drawn
            on the image with the sample's ground-truth boxes.
        num_classes: mask values at or above it are drawn black (as are 255 and negative values).
    """

    masks: Any = None
    boxes: Mapping[int, Sequence[tuple[str, Sequence[float]]]] | None = None
    num_classes: int | None = None

    def apply(self, img: Any, sample: Any, index: int, size: int) -> str:
        """The row's thumbnail as a data URI: the image reduced to ``size``, with masks beside it or boxes on it."""
        if self.masks is None and self.boxes is None:
            return _encode_pil(img, size)
        width = img.size[0]
        img = img.convert("RGB")
        _reduce(img, size)
        if self.boxes is not None:
            gt = sample_boxes(sample)
            shown: list[tuple[str, Sequence[float]]] = [("gt", b) for b in (gt.tolist() if gt is not None else [])]
            shown += list(self.boxes.get(index, ()))
            return _data_uri(draw_boxes(img, shown, scale=img.size[0] / width), True)
        pair = self.masks(index) if callable(self.masks) else self.masks[index]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"Expected `masks` to give a (target, prediction) pair for index {index}, but got "
                f"{type(pair).__name__}."
            )
        return _data_uri(_strip(img, [m for m in pair if m is not None], self.num_classes), True)


def _strip(img: Any, masks: Sequence[Any], num_classes: int | None, gap: int = 2) -> Any:
    """The reduced image and each mask (coloured, resized to the image with nearest-neighbour) side by side."""
    from PIL import Image

    w, h = img.size
    panels = [img] + [Image.fromarray(mask_rgb(m, num_classes)).resize((w, h), Image.Resampling.NEAREST) for m in masks]
    out = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * gap, h), (255, 255, 255))
    for k, panel in enumerate(panels):
        out.paste(panel, (k * (w + gap), 0))
    return out


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


def _apply(overlay: Overlay | None, img: Any, sample: Any, index: int, size: int) -> str:
    return _encode_pil(img, size) if overlay is None else overlay.apply(img, sample, index, size)


def _thumbnails(
    table: pd.DataFrame,
    dataset: Any,
    guard: _PathGuard | None,
    size: int,
    rows: np.ndarray,
    notes: list[str],
    overlay: Overlay | None = None,
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
            sample = dataset[int(index[pos])] if dataset is not None else None
            item = sample if dataset is not None else ids[pos]  # type: ignore[index]
            if isinstance(item, (tuple, list)) and item:
                item = item[0]
            if isinstance(item, (str, bytes, os.PathLike)):
                path = guard.resolve(os.fsdecode(item)) if guard is not None else None
                if path is None:
                    continue
                with Image.open(path) as img:
                    if overlay is None:
                        img.draft("RGB", (size * 2, size * 2))
                    thumbs[pos] = _apply(
                        overlay,
                        img.convert("RGB") if img.mode not in ("L", "RGB") else img,
                        sample,
                        int(index[pos]),
                        size,
                    )
            else:
                thumbs[pos] = _apply(overlay, _pil(_to_image(item)), sample, int(index[pos]), size)
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
