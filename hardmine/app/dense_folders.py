"""Segmentation and detection folders for the command line (``hardmine score --task segmentation|detection``).

The layouts:

- **segmentation**: ``root/images/<name>.<ext>`` and ``root/masks/<name>.png``: one mask per image, with the image's
  file name stem (``images/a/001.jpg`` -> ``masks/a/001.png``; sub-folders are allowed and mirrored). A mask is a
  single-channel image (PIL mode ``L``, ``P`` or ``I``/``I;16``) holding the class index of each pixel, 255 for
  pixels to ignore (``--ignore-index``), the size of its image. The image and its mask are resized (short side to
  ``--resize-size``; bilinear for the image, nearest for the mask) and center-cropped to ``--image-size`` together.
- **detection**: ``root/images/<name>.<ext>`` and ``root/boxes.csv`` with the header ``file,x1,y1,x2,y2,label``: one
  row per ground-truth box, ``file`` the image's path under ``images/`` (``/``-separated), the box in the image's
  pixels (``x2 >= x1``, ``y2 >= y1``) and ``label`` a class index (torchvision detectors keep 0 for the background)
  or a class name (names are numbered 1, 2, ... in sorted order, 0 being the background). An image without a row
  has no object. Images are fed at their own size, as tensors in ``[0, 1]``: torchvision's detectors resize and
  normalise inside the model.

Images are taken in sorted path order (the table's ``index``); every image (and mask) is decoded once up front, and
unreadable ones are skipped and listed (``--strict`` refuses them), as for class folders.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hardmine.app.images import IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD, _check_image, load_weights

__all__ = [
    "BOX_FILE",
    "DENSE_CLI_TASKS",
    "DenseScan",
    "DetectionFolder",
    "SegmentationFolder",
    "build_dense_model",
    "dense_architectures",
    "scan_dense_folder",
]

#: The tasks ``hardmine score --task`` adds to classification.
DENSE_CLI_TASKS: tuple[str, ...] = ("segmentation", "detection")
#: The ground-truth boxes of a detection folder, beside ``images/``.
BOX_FILE = "boxes.csv"
_BOX_HEADER = ("file", "x1", "y1", "x2", "y2", "label")


@dataclass
class DenseScan:
    """What :func:`scan_dense_folder` found.

    Attributes:
        root: the folder scanned (holding ``images/``).
        task: ``"segmentation"`` or ``"detection"``.
        samples: ``(image path, mask path)`` (segmentation) or ``(image path, boxes (N, 4), labels (N,))``
            (detection) of every readable image, in sorted path order.
        skipped: ``(path, reason)`` of every image (or mask) that could not be used.
        ignored: files under ``images/`` without an image extension, and hidden files.
        classes: detection class names, index ``c`` naming class ``c`` (``None`` for numeric labels).
        max_label: the largest class index in the masks (255 and ``ignore_index`` aside) or the box labels (-1 when
            there is none).
        found: image files found.
    """

    root: Path
    task: str
    samples: list[tuple[Any, ...]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    classes: list[str] | None = None
    max_label: int = -1
    found: int = 0


def _image_files(images: Path) -> tuple[list[Path], list[str]]:
    """Image files under ``images`` in sorted path order, and the files ignored (no image extension, hidden)."""
    files: list[Path] = []
    ignored: list[str] = []
    for dirpath, dirnames, fnames in os.walk(images):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(fnames):
            path = Path(dirpath) / name
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                ignored.append(str(path))
            else:
                files.append(path)
    return sorted(files), ignored


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "1"):
            raise ValueError(
                f"expected a single-channel mask of class indices (mode L, P or I), but it is mode {im.mode}"
            )
        return np.asarray(im).astype(np.int64)


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def scan_dense_folder(
    root: str | os.PathLike[str], task: str, *, strict: bool = False, ignore_index: int = 255
) -> DenseScan:
    """List and check the images of a segmentation or detection folder (see the module doc for the layouts).

    Raises:
        FileNotFoundError: when ``root`` or ``root/images`` does not exist, or a detection folder has no
            ``boxes.csv``.
        ValueError: for a folder without images, a ``boxes.csv`` with another header, a bad row (naming its line),
            a box row naming no image of the folder, or (``strict``) the first unreadable image or mask.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as d:
        ...     os.makedirs(f"{d}/images"); os.makedirs(f"{d}/masks")
        ...     Image.new("RGB", (4, 4)).save(f"{d}/images/a.png")
        ...     Image.new("L", (4, 4), 2).save(f"{d}/masks/a.png")
        ...     scan = scan_dense_folder(d, "segmentation")
        ...     len(scan.samples), scan.max_label
        (1, 2)
    """
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"The {task} folder {str(folder)!r} does not exist or is not a folder.")
    images = folder / "images"
    if not images.is_dir():
        other = "masks/<name>.png" if task == "segmentation" else BOX_FILE
        raise FileNotFoundError(
            f"Expected {str(folder)!r} to hold an `images` folder (the {task} layout: images/<name>.png and "
            f"{other}), but it has none."
        )
    files, ignored = _image_files(images)
    if not files:
        raise ValueError(f"{str(images)!r} holds no image files (ending in {', '.join(IMAGE_EXTENSIONS)}).")
    scan = DenseScan(root=folder, task=task, samples=[], ignored=ignored, found=len(files))
    if task == "segmentation":
        _check_segmentation(scan, files, ignore_index)
    else:
        _check_detection(scan, files)
    if scan.skipped and strict:
        path, reason = scan.skipped[0]
        raise ValueError(f"Cannot use {path!r}: {reason} (without --strict it is skipped and listed).")
    if not scan.samples:
        path, reason = scan.skipped[0]
        raise ValueError(
            f"None of the {len(files)} images of {str(folder)!r} can be used; the first, {path!r}: {reason}."
        )
    return scan


def _check_segmentation(scan: DenseScan, files: list[Path], ignore_index: int) -> None:
    images, masks = scan.root / "images", scan.root / "masks"
    for path in files:
        reason = _check_image(str(path))
        mask_path = (masks / path.relative_to(images)).with_suffix(".png")
        if reason is None and not mask_path.is_file():
            reason = f"no mask {str(mask_path)!r}"
        if reason is None:
            try:
                mask = _read_mask(mask_path)
            except Exception as err:  # noqa: BLE001 - any decoding failure: the image cannot be scored; say why
                reason = f"unreadable mask {str(mask_path)!r}: {err}".splitlines()[0]
            else:
                size = _image_size(path)
                if (mask.shape[1], mask.shape[0]) != size:
                    reason = f"its mask is {mask.shape[1]}x{mask.shape[0]} pixels, the image {size[0]}x{size[1]}"
                else:
                    valid = mask[(mask != ignore_index) & (mask != 255) & (mask >= 0)]
                    if valid.size:
                        scan.max_label = max(scan.max_label, int(valid.max()))
        if reason is None:
            scan.samples.append((str(path), str(mask_path)))
        else:
            scan.skipped.append((str(path), reason))


def _check_detection(scan: DenseScan, files: list[Path]) -> None:
    images = scan.root / "images"
    box_file = scan.root / BOX_FILE
    if not box_file.is_file():
        raise FileNotFoundError(
            f"Expected the ground-truth boxes in {str(box_file)!r} (header: {','.join(_BOX_HEADER)}), but there is "
            "no such file."
        )
    known = {path.relative_to(images).as_posix(): path for path in files}
    rows: dict[str, list[tuple[list[float], str]]] = {}
    with open(box_file, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = tuple(h.strip() for h in next(reader, []))
        if header != _BOX_HEADER:
            raise ValueError(f"Expected the header {','.join(_BOX_HEADER)} in {str(box_file)!r}, but got {header}.")
        for line, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            where = f"{str(box_file)!r} line {line}"
            if len(row) != len(_BOX_HEADER):
                raise ValueError(f"Expected {len(_BOX_HEADER)} fields in {where}, but got {len(row)}.")
            name = row[0].strip().replace(os.sep, "/")
            if name not in known:
                raise ValueError(f"{where} names {name!r}, which is not an image under {str(images)!r}.")
            try:
                box = [float(v) for v in row[1:5]]
            except ValueError as err:
                raise ValueError(f"Expected numbers x1, y1, x2, y2 in {where}, but got {row[1:5]}.") from err
            if not all(np.isfinite(box)) or box[2] < box[0] or box[3] < box[1]:
                raise ValueError(f"Expected a box with x2 >= x1 and y2 >= y1 in {where}, but got {box}.")
            rows.setdefault(name, []).append((box, row[5].strip()))
    labels_text = [label for boxes in rows.values() for _, label in boxes]
    numeric = all(t.lstrip("-").isdigit() for t in labels_text)
    if numeric:
        code = {t: int(t) for t in labels_text}
        if any(v < 0 for v in code.values()):
            raise ValueError(f"Expected class indices >= 0 in {str(box_file)!r}, but got {min(code.values())}.")
    else:
        names = sorted(set(labels_text))
        scan.classes = ["__background__", *names]
        code = {t: k + 1 for k, t in enumerate(names)}
    scan.max_label = max(code.values(), default=-1)
    for path in files:
        reason = _check_image(str(path))
        if reason is not None:
            scan.skipped.append((str(path), reason))
            continue
        mine = rows.get(path.relative_to(images).as_posix(), [])
        boxes = torch.tensor([b for b, _ in mine], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([code[t] for _, t in mine], dtype=torch.int64)
        scan.samples.append((str(path), boxes, labels))


def _rgb(path: str) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as err:  # noqa: BLE001 - the file changed after the scan; name it
        raise OSError(f"Cannot read image {path!r}: {type(err).__name__}: {err}") from err


class SegmentationFolder(Dataset):
    """``(image (3, S, S) float32, mask (S, S) int64)`` pairs of a checked segmentation folder.

    The image and its mask are resized (short side to ``resize_size``) and center-cropped to ``image_size``
    together; the image is normalised with ``mean``/``std``. ``samples`` holds ``(image path, mask path)``, so
    :func:`hardmine.score` records the image paths as ids.
    """

    def __init__(
        self,
        scan: DenseScan,
        image_size: int = 224,
        *,
        resize_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.root = str(scan.root)
        self.samples = list(scan.samples)
        self.image_size = image_size
        self.resize_size = resize_size if resize_size is not None else max(image_size, round(image_size * 256 / 224))
        self.mean, self.std = list(mean), list(std)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        from PIL import Image
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        path, mask_path = self.samples[index]
        image = _rgb(path)
        mask = Image.fromarray(_read_mask(Path(mask_path)).astype(np.int32), mode="I")
        image = F.center_crop(F.resize(image, self.resize_size, antialias=True), self.image_size)
        mask = F.center_crop(F.resize(mask, self.resize_size, InterpolationMode.NEAREST), self.image_size)
        tensor = F.normalize(F.to_tensor(image), self.mean, self.std)
        return tensor, torch.as_tensor(np.asarray(mask).astype(np.int64))


class DetectionFolder(Dataset):
    """``(image (3, H, W) float32 in [0, 1], {"boxes": (N, 4), "labels": (N,)})`` of a checked detection folder.

    ``samples`` holds ``(image path, boxes, labels)``, so :func:`hardmine.score_detection` records the image paths
    as ids; batch it with ``collate_fn=lambda b: tuple(zip(*b))``.
    """

    def __init__(self, scan: DenseScan) -> None:
        from torchvision.transforms import functional as F

        self.root = str(scan.root)
        self.samples = list(scan.samples)
        self.classes = scan.classes
        self._to_tensor: Callable[[Any], Tensor] = F.to_tensor

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        path, boxes, labels = self.samples[index]
        return self._to_tensor(_rgb(path)), {"boxes": boxes.clone(), "labels": labels.clone()}


def dense_architectures(task: str) -> list[str]:
    """Torchvision's architectures for ``task``, ``"segmentation"`` or ``"detection"``.

    Segmentation: ``fcn_resnet50``, ``deeplabv3_resnet50``, ``lraspp_mobilenet_v3_large``, ...; detection:
    ``fasterrcnn_mobilenet_v3_large_fpn``, ``retinanet_resnet50_fpn``, ``ssdlite320_mobilenet_v3_large``, ...
    """
    import torchvision

    module = torchvision.models.segmentation if task == "segmentation" else torchvision.models.detection
    return sorted(torchvision.models.list_models(module=module))


def _has_aux(weights: str | os.PathLike[str]) -> bool:
    """Whether a segmentation checkpoint holds an auxiliary head (``aux_classifier.*`` keys); False when unreadable."""
    try:
        obj = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - load_weights reports what is wrong with the file
        return False
    keys = [str(k) for k in obj] if isinstance(obj, dict) else []
    for inner in (obj.get(k) for k in ("state_dict", "model_state_dict", "model", "net", "weights", "model_state")):
        if isinstance(inner, dict):
            keys += [str(k) for k in inner]
    return any(k.startswith("aux_classifier.") or ".aux_classifier." in k for k in keys)


def build_dense_model(task: str, arch: str, num_classes: int, weights: str | os.PathLike[str]) -> nn.Module:
    """A torchvision segmentation or detection model with ``num_classes`` outputs and the user's ``weights``.

    Nothing is downloaded (``weights=None, weights_backbone=None``). A segmentation checkpoint with an auxiliary
    head (``aux_classifier.*``, from training with ``aux_loss=True``) gets a model with one.

    Raises:
        ValueError: for an architecture that is not one of :func:`dense_architectures`, or a checkpoint that does
            not fit (see :func:`hardmine.app.images.load_weights`).
    """
    import torchvision

    if arch not in dense_architectures(task):
        raise ValueError(f"Unknown {task} architecture {arch!r}; expected one of {dense_architectures(task)}.")
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    if task == "segmentation" and _has_aux(weights):
        kwargs["aux_loss"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = torchvision.models.get_model(arch, **kwargs)
    return load_weights(model, weights, arch=arch, num_classes=num_classes)
