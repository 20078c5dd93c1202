"""An ImageFolder tree of scikit-learn's bundled digits as PNG files, with a few broken files, for the CLI tests.

``make_digits_tree(root)`` writes ``root/<digit>/<n>.png`` for the digits 0, 1, 2 (12 each, upscaled from 8x8 to
16x16), saved in several modes (RGB, grayscale ``L``, ``RGBA``, palette ``P``), plus corrupt files: a truncated PNG,
an empty ``.png`` and a text file named ``.jpg``; and one non-image file (``notes.txt``) that is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ("0", "1", "2")
PER_CLASS = 12


@dataclass
class DigitsTree:
    root: Path
    good: list[str] = field(default_factory=list)  # readable images, in ImageFolder order
    corrupt: list[str] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)  # path -> PIL mode it was saved in


def make_digits_tree(root: Path, *, corrupt: bool = True, per_class: int = PER_CLASS) -> DigitsTree:
    from sklearn.datasets import load_digits

    digits = load_digits()
    tree = DigitsTree(root=root)
    modes = ("RGB", "L", "RGBA", "P")
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        images = digits.images[digits.target == int(c)][:per_class]
        for n, img in enumerate(images):
            gray = (np.kron(img, np.ones((2, 2))) * 15).astype(np.uint8)  # 8x8 -> 16x16, values 0..240
            mode = modes[n % len(modes)]
            pil = Image.fromarray(gray, mode="L")
            if mode == "RGB":
                pil = Image.merge("RGB", (pil, pil.point(lambda v: 255 - v), pil))
            elif mode != "L":
                pil = pil.convert(mode)
            path = root / c / f"{n:02d}.png"
            pil.save(path)
            tree.modes[str(path)] = mode
    if corrupt:
        good_png = (root / "1" / "00.png").read_bytes()
        broken = {
            root / "0" / "05b_truncated.png": good_png[: len(good_png) // 2],
            root / "1" / "03b_empty.png": b"",
            root / "2" / "07b_not_an_image.jpg": b"this is not a JPEG\n",
        }
        for path, data in broken.items():
            path.write_bytes(data)
        tree.corrupt = sorted(str(p) for p in broken)
        (root / "2" / "notes.txt").write_text("not an image, ignored\n")
    tree.good = sorted(str(p) for p in tree.modes)  # ImageFolder order: by class folder, then path
    return tree


def save_weights(arch: str, num_classes: int, path: Path, *, seed: int = 0, wrap: str | None = "model") -> dict:
    """Build ``arch`` with seeded random weights, save its state_dict (under ``wrap`` if given), return the state."""
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    state = model.state_dict()
    torch.save({wrap: state, "epoch": 3} if wrap else state, path)
    return state


def score_argv(
    root: Path,
    out: Path | str,
    *extra: str,
    arch: str = "resnet18",
    size: int = 32,
    weights: Path | None = None,
) -> list[str]:
    """``hardmine score`` arguments for the tree under ``root / "data"`` and the checkpoint ``root / "ckpt.pt"``.

    ``argv[3]`` is the architecture; ``weights`` replaces the checkpoint; ``extra`` follows the common options
    (no progress bar).
    """
    return [
        "score",
        str(root / "data"),
        "--arch",
        arch,
        "--weights",
        str(weights if weights is not None else root / "ckpt.pt"),
        "--out",
        str(out),
        "--image-size",
        str(size),
        "--no-progress",
        *extra,
    ]
