"""Image folders for the command line: an ImageFolder tree checked file by file, eval transforms, models and weights.

The tree is torchvision's ImageFolder layout, ``root/<class>/<image>`` (images may sit deeper inside a class
folder): class ``k`` is the ``k``-th class folder in sorted order, and images are taken in sorted path order, exactly
as ``torchvision.datasets.ImageFolder`` orders them, so a model trained on ``ImageFolder(root)`` gets its own class
indices back. Hidden folders (``.ipynb_checkpoints``) are not classes, and hidden files (macOS ``._x.jpg``) and
files in hidden folders are not read.

Every image file is opened and decoded once up front (:func:`scan_image_folder`). Corrupt or truncated files are
skipped and listed (``strict=True`` refuses them instead), so a scoring pass never stops half-way on a bad file and
no file is dropped without saying so. Grayscale, RGBA and palette images are converted to RGB.

The models and their weights (:func:`build_model`, :func:`load_weights`) are :mod:`hardmine.app.models`, importable
from here too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from hardmine.app.models import STATE_DICT_KEYS, build_model, classification_architectures, load_weights
from hardmine.core import validate

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "STATE_DICT_KEYS",
    "CheckedImageFolder",
    "build_model",
    "check_images",
    "classification_architectures",
    "eval_transform",
    "load_weights",
    "scan_image_folder",
]

#: File extensions read as images (those of ``torchvision.datasets.ImageFolder``), compared case-insensitively.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def eval_transform(
    image_size: int = 224,
    *,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable[[Any], Tensor]:
    """The standard evaluation transform: resize the short side, center-crop, to tensor, normalize.

    Args:
        image_size: the square crop fed to the model, in pixels.
        resize_size: the short side before cropping; defaults to ``round(image_size * 256 / 224)`` (256 for 224).
        mean: per-channel mean for normalisation (ImageNet's by default).
        std: per-channel standard deviation.

    Returns:
        A callable mapping an RGB PIL image to a float32 tensor ``(3, image_size, image_size)``.

    Example:
        >>> from PIL import Image
        >>> eval_transform(32)(Image.new("RGB", (50, 40))).shape
        torch.Size([3, 32, 32])
    """
    from torchvision import transforms

    image_size = validate.integer("image_size", image_size, min=1)
    if resize_size is None:
        resize_size = max(image_size, round(image_size * 256 / 224))
    resize_size = validate.integer("resize_size", resize_size, min=image_size)
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ValueError(
            f"Expected `mean` and `std` to hold 3 numbers each (std > 0), but got {list(mean)} and {list(std)}."
        )
    return transforms.Compose(
        [
            transforms.Resize(resize_size, antialias=True),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(list(mean), list(std)),
        ]
    )


@dataclass
class FolderScan:
    """What :func:`scan_image_folder` found.

    Attributes:
        root: the folder scanned.
        classes: class folder names, sorted; class ``k`` is ``classes[k]``.
        samples: ``(path, class index)`` of every readable image, in ImageFolder order.
        positions: for each of ``samples``, its index in ``torchvision.datasets.ImageFolder(root)`` (the position
            among all image files, hidden ones and unreadable ones included): skipped files leave gaps.
        skipped: ``(path, reason)`` of every image file or folder that could not be read.
        ignored: files without an image extension, hidden files (``._x.jpg``) and files in hidden folders (not read),
            and symlinked folders not followed (a loop, a folder already walked, or outside ``root``).
        empty_classes: class folders without any image file.
        found: image files found (hidden ones not counted).
    """

    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    found: int = 0

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = list(range(len(self.samples)))
        if len(self.positions) != len(self.samples):
            raise ValueError(
                f"Expected one position per sample ({len(self.samples)}), but got {len(self.positions)} positions."
            )
        self.found = max(self.found, len(self.samples))


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(
    top: Path, root_real: str, *, follow_outside: bool, seen: set[str], skipped: list[tuple[str, str]]
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """``(dirpath, sorted file names)`` of every folder under ``top``, in ``sorted(os.walk(top))`` order.

    A symlinked folder is followed only when its real path was not walked yet (so a loop ends) and, unless
    ``follow_outside``, lies inside ``root_real``; the folders not followed are returned as the second item. A
    folder that cannot be listed goes to ``skipped`` with the reason.
    """
    found: list[tuple[str, list[str]]] = []
    not_followed: list[str] = []
    stack = [str(top)]
    while stack:
        dirpath = stack.pop()
        real = os.path.realpath(dirpath)
        if os.path.islink(dirpath):
            if real in seen:
                not_followed.append(f"{dirpath} (symlinked folder already walked, or a loop: {real})")
                continue
            if not follow_outside and not _is_within(real, root_real):
                not_followed.append(f"{dirpath} (symlinked folder outside the image folder: {real})")
                continue
        seen.add(real)
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as err:
            skipped.append((dirpath, f"unreadable folder: {type(err).__name__}: {err.strerror or err}"))
            continue
        files: list[str] = []
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(os.path.join(dirpath, e.name))
            else:
                files.append(e.name)
        found.append((dirpath, sorted(files)))
    found.sort(key=lambda item: item[0])
    return found, not_followed


def _check_image(path: str) -> str | None:
    """``None`` when ``path`` decodes as an image, else the reason in a few words."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:  # verify() leaves the image unusable; decode every pixel from a fresh open
                im.load()
    except Exception as err:  # noqa: BLE001 - any decoding failure means the file cannot be scored; say why
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def scan_image_folder(
    root: str | os.PathLike[str],
    *,
    strict: bool = False,
    workers: int = 0,
    check: bool = True,
    follow_links_outside: bool = False,
) -> FolderScan:
    """List the classes and images of an ImageFolder tree and decode every image once.

    Args:
        root: the folder holding one sub-folder per class.
        strict: raise on the first corrupt image instead of skipping it.
        workers: threads that decode images in parallel (0 or 1: one thread); the result does not depend on it.
        check: decode the images now; ``False`` only lists them (fast: the class list is known before any image is
            read), and :func:`check_images` does the rest later.
        follow_links_outside: follow symlinked folders that lead outside ``root`` (by default they are listed in
            ``ignored`` and not walked). A symlinked folder is walked at most once either way, so a loop ends.

    Returns:
        A :class:`FolderScan`.

    Raises:
        FileNotFoundError: when ``root`` does not exist.
        ValueError: when ``root`` is not a folder, has no class folders, holds no image at all, or (``strict``)
            holds a corrupt image or an unreadable folder, naming it.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as d:
        ...     for cls in ("cat", "dog"):
        ...         os.mkdir(os.path.join(d, cls))
        ...         Image.new("L", (8, 8)).save(os.path.join(d, cls, "a.png"))
        ...     open(os.path.join(d, "dog", "b.png"), "w").close()  # an empty, corrupt file
        ...     scan = scan_image_folder(d)
        ...     print(scan.classes, len(scan.samples), [os.path.basename(p) for p, _ in scan.skipped])
        ['cat', 'dog'] 2 ['b.png']
    """
    folder = Path(root)
    if not folder.exists():
        raise FileNotFoundError(f"The image folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise ValueError(f"Expected an image folder (one sub-folder per class), but {str(folder)!r} is a file.")
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    classes = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    if not classes:
        loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
        if loose:
            found = f"it holds {len(loose)} image file(s) directly and no sub-folder"
        elif entries:
            found = f"it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} and no sub-folder"
        else:
            found = "it is empty"
        raise ValueError(
            f"{str(folder)!r} has no class folders ({found}). Expected an ImageFolder tree with one folder per "
            f"class: {folder.name or folder}/<class>/<image>.png, e.g. {folder.name or folder}/cat/001.png."
        )
    files: list[tuple[str, int]] = []
    positions: list[int] = []
    ignored: list[str] = []
    empty: list[str] = []
    skipped: list[tuple[str, str]] = []
    root_real = os.path.realpath(folder)
    seen: set[str] = {root_real}
    position = 0  # the index torchvision's ImageFolder gives: every file with an image extension counts
    for k, name in enumerate(classes):
        count = 0
        walked, not_followed = _walk(
            folder / name, root_real, follow_outside=follow_links_outside, seen=seen, skipped=skipped
        )
        ignored.extend(not_followed)
        for dirpath, fnames in walked:
            hidden_dir = any(part.startswith(".") for part in Path(dirpath).relative_to(folder / name).parts)
            for fname in fnames:
                path = os.path.join(dirpath, fname)
                if not fname.lower().endswith(IMAGE_EXTENSIONS):
                    ignored.append(path)
                    continue
                if fname.startswith(".") or hidden_dir:
                    ignored.append(path)
                else:
                    files.append((path, k))
                    positions.append(position)
                    count += 1
                position += 1
        if count == 0:
            empty.append(name)
    if not files and not skipped:
        raise ValueError(
            f"{str(folder)!r} holds no image files: its class folders {classes[:10]} contain no file ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}."
        )
    if not files:
        raise ValueError(
            f"No image of {str(folder)!r} could be listed; the first problem, {skipped[0][0]!r}: {skipped[0][1]}."
        )
    if skipped and strict:
        path, reason = skipped[0]
        raise ValueError(
            f"Cannot read folder {path!r}: {reason} (without --strict / strict=True it is skipped and listed)."
        )
    scan = FolderScan(
        root=folder,
        classes=classes,
        samples=files,
        skipped=skipped,
        ignored=ignored,
        empty_classes=empty,
        positions=positions,
        found=len(files),
    )
    return check_images(scan, strict=strict, workers=workers) if check else scan


def check_images(scan: FolderScan, *, strict: bool = False, workers: int = 0) -> FolderScan:
    """Decode every image of ``scan.samples`` once; unreadable ones move to ``skipped`` (or raise with ``strict``).

    Raises:
        ValueError: (``strict``) naming the first unreadable file, or when no image at all can be read.
    """
    files = scan.samples
    paths = [p for p, _ in files]
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(_check_image, paths))
    else:
        reasons = [_check_image(p) for p in paths]
    samples: list[tuple[str, int]] = []
    positions: list[int] = []
    skipped: list[tuple[str, str]] = list(scan.skipped)
    if strict and skipped:
        raise ValueError(
            f"Cannot read {skipped[0][0]!r}: {skipped[0][1]} (without --strict / strict=True it is skipped and listed)."
        )
    for (path, k), position, reason in zip(files, scan.positions, reasons, strict=True):
        if reason is None:
            samples.append((path, k))
            positions.append(position)
        elif strict:
            raise ValueError(
                f"Cannot read image {path!r}: {reason} (without --strict / strict=True corrupt files "
                "are skipped and listed)."
            )
        else:
            skipped.append((path, reason))
    if not samples:
        raise ValueError(
            f"None of the {len(files)} image files in {str(scan.root)!r} could be read; the first, "
            f"{skipped[0][0]!r}: {skipped[0][1]}."
        )
    return FolderScan(
        root=scan.root,
        classes=scan.classes,
        samples=samples,
        skipped=skipped,
        ignored=scan.ignored,
        empty_classes=scan.empty_classes,
        positions=positions,
        found=scan.found,
    )


class CheckedImageFolder(Dataset):
    """A map-style dataset over the readable images of an ImageFolder tree: ``(image tensor, class index)``.

    Built from a :class:`FolderScan`; it has the ``samples``, ``targets``, ``classes`` and ``class_to_idx`` of
    ``torchvision.datasets.ImageFolder`` (so :func:`hardmine.score` finds the file paths as ids) and ``skipped``,
    the corrupt files left out, and ``positions``: sample ``i`` is ``ImageFolder(root)[positions[i]]`` (the
    ``hardmine score`` table's ``index`` column holds these, with gaps where files were skipped). Images are
    converted to RGB before ``transform``.

    Args:
        scan: the result of :func:`scan_image_folder`.
        transform: maps an RGB PIL image to a tensor, e.g. :func:`eval_transform`.
    """

    def __init__(self, scan: FolderScan, transform: Callable[[Any], Any] | None = None) -> None:
        self.root = str(scan.root)
        self.classes = list(scan.classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = list(scan.samples)
        self.targets = [k for _, k in self.samples]
        self.skipped = list(scan.skipped)
        self.positions = list(scan.positions)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        path, target = self.samples[index]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except Exception as err:  # noqa: BLE001 - the file changed after the scan; name it
            raise OSError(f"Cannot read image {path!r} (sample {index}): {type(err).__name__}: {err}") from err
        return (self.transform(image) if self.transform is not None else image), target
