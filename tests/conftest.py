"""Shared test helpers: small seeded models and datasets (well under 200 samples), and an image-folder fixture.

Import the helpers directly (``from conftest import make_model, make_dataset, CountingDataset, DictDataset``).
The parametrization lists ``DEVICES`` (CUDA skipped when absent) and ``DTYPES`` live in ``tests/reference.py``
(``from reference import DEVICES, DTYPES``) next to the loop-based references.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from reference import DEVICES, DTYPES  # noqa: F401  (re-exported)
from torch import Tensor, nn
from torch.utils.data import Dataset, IterableDataset, TensorDataset

NUM_FEATURES = 6

# The test tensors are tiny: one intra-op thread is faster than several competing for 2 shared cores.
torch.set_num_threads(1)


class Squeeze(nn.Module):
    """``(B, 1) -> (B,)``: a binary model that returns one logit per sample as a flat vector."""

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0]


def make_model(out_features: int, *, seed: int = 0, flat: bool = False, num_features: int = NUM_FEATURES) -> nn.Module:
    """A small MLP with BatchNorm and Dropout (so that train/eval mode matters), seeded.

    ``out_features=1`` gives ``(B, 1)`` logits, or ``(B,)`` with ``flat=True``. Its BatchNorm running statistics are
    moved off their defaults by a few training-mode forward passes, so that "unchanged" is a real check.
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = [
        nn.Linear(num_features, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(16, out_features),
    ]
    if flat:
        layers.append(Squeeze())
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, num_features) * 2 + 0.5)
    return model


def make_dataset(num_samples: int, num_classes: int, *, seed: int = 0, float_labels: bool = False) -> TensorDataset:
    """``(x, y)`` pairs: x float32 ``(NUM_FEATURES,)``, y int64 class in ``[0, num_classes)`` (or float 0./1.)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, NUM_FEATURES, generator=g)
    y = torch.randint(0, num_classes, (num_samples,), generator=g)
    return TensorDataset(x, y.float() if float_labels else y)


class CountingDataset(Dataset):
    """A map-style dataset that counts how often each index is read (for "every sample exactly once")."""

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self.calls = [0] * len(base)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.calls)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        self.calls[index] += 1
        return self.base[index]


class Stream(IterableDataset):
    """An iterable-style dataset: what the map-style checks must refuse."""

    def __iter__(self):
        yield from ((torch.zeros(2), 0) for _ in range(4))


class NoLength(Dataset):
    """A map-style dataset without ``__len__``."""

    def __getitem__(self, index):
        return torch.zeros(2), 0


class DictDataset(Dataset):
    """Samples as dicts ``{input_key: x, target_key: y}``."""

    def __init__(self, base: Dataset, input_key: str = "image", target_key: str = "label") -> None:
        self.base, self.input_key, self.target_key = base, input_key, target_key

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        x, y = self.base[index]
        return {self.input_key: x, self.target_key: y}


@pytest.fixture
def image_folder(tmp_path):
    """A tiny ImageFolder on disk: 2 classes x 3 RGB 8x8 PNGs; returns ``(root, dataset)``, images as tensors."""
    from PIL import Image
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    g = torch.Generator().manual_seed(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = torch.randint(0, 256, (8, 8, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / cls / f"{cls}_{i}.png")
    return tmp_path, ImageFolder(str(tmp_path), transform=transforms.ToTensor())


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (the benchmarks are scripts, not a package) for a smoke run.

    ``benchmarks/`` goes on ``sys.path`` first, as it is when a script runs as ``python benchmarks/<name>.py``, so the
    scripts' ``from _common import save_results`` works here too.
    """
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CountingScore:
    """Stands in for the miner's ``score``: records each call's loader and keyword arguments, then scores."""

    def __init__(self, real):
        self.real, self.loaders, self.calls = real, [], []

    def __call__(self, model, loader, **kw):
        self.loaders.append(loader)
        self.calls.append(kw)
        return self.real(model, loader, **kw)


@pytest.fixture
def count_scores(monkeypatch):
    """The miner's scoring passes, counted (``.loaders``, ``.calls``), while they still run."""
    import hardmine.feedback.miner

    counter = CountingScore(hardmine.feedback.miner.score)
    monkeypatch.setattr(hardmine.feedback.miner, "score", counter)
    return counter


def run_ok(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``cmd`` (text output captured) and assert it exits 0, showing the tails of its output when it does not."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result
