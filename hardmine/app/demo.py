"""The embedded demo: the whole score → split → export flow on scikit-learn's bundled digits, no download.

A small CNN is trained from scratch on 8x8 digit images in which a few training labels were flipped on purpose (as
real datasets have mislabelled samples). hardmine then scores every training sample, splits them into
positive/negative and easy/hard, writes the tables and a summary, and checks how many of the flipped labels landed
among the hard samples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hardmine.analysis.io import to_csv
from hardmine.analysis.metrics import Summary, summary
from hardmine.analysis.splitting import split
from hardmine.core import validate
from hardmine.core._files import atomic_path
from hardmine.scoring.engine import score

__all__ = ["DemoResult", "digits_cnn", "load_digits_tensors", "run_demo"]


def _write_text(path: Path, text: str) -> None:
    """Through hardmine's write path: atomic, the umask's mode, symlinks written through."""
    with atomic_path(path, what="the demo summary") as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_digits_tensors(*, seed: int = 0, test_fraction: float = 0.2) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's bundled 8x8 digits as ``(train, test)`` TensorDatasets; nothing is downloaded.

    Images are ``(N, 1, 8, 8)`` float32 in ``[0, 1]``, labels ``(N,)`` int64; the split is stratified and fixed by
    ``seed``.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("The demo needs scikit-learn's bundled digits: pip install 'hardmine[demo]'") from err
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return TensorDataset(x[idx_train], y[idx_train]), TensorDataset(x[idx_test], y[idx_test])


def digits_cnn(num_classes: int = 10) -> nn.Module:
    """A small CNN for ``(B, 1, 8, 8)`` digit images, built from scratch."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, num_classes),
    )


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: the split table, its summary, the files written and a few findings."""

    table: Any
    summary: Summary
    files: dict[str, Path]
    facts: dict[str, Any] = field(default_factory=dict)

    def report(self) -> str:
        """A short readable report of the run."""
        f = self.facts
        lines = [
            f"hardmine demo: {f['train_samples']} training digits, {f['flipped']} labels flipped on purpose, "
            f"a small CNN trained for {f['epochs']} epochs ({f['train_seconds']:.1f} s); test accuracy "
            f"{f['test_accuracy']:.3f}.",
            f"Scored {f['train_samples']} samples in {f['score_seconds']:.2f} s; hard = label_prob below "
            f"{f['threshold']}; positive class = digit {f['positive']}.",
            "",
            str(self.summary),
            "",
            f"The {f['hard']} hard samples hold {f['flipped_found']} of the {f['flipped']} flipped labels "
            f"(precision {f['flipped_precision']:.2f}, recall {f['flipped_recall']:.2f}).",
            f"Ranking by label_prob finds flipped labels with AUROC {f['auroc_label_prob']:.3f}; by the classic "
            f"max-softmax confidence, {f['auroc_confidence']:.3f}.",
            "",
            "Files:",
            *(f"  {name:8s} {path}" for name, path in self.files.items()),
        ]
        return "\n".join(lines)


def _auroc(score_of_flipped: np.ndarray, flipped: np.ndarray) -> float:
    """AUROC of ``score`` for finding ``flipped`` (higher score = more suspicious), ties counted half."""
    pos = score_of_flipped[flipped]
    neg = score_of_flipped[~flipped]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    allv = np.concatenate([pos, neg])[order]
    # average ranks for ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    cum = np.cumsum(counts)
    avg = cum - (counts - 1) / 2.0
    ranks[order] = avg[inv]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def run_demo(
    out_dir: str | Path = "hardmine-demo",
    *,
    epochs: int = 15,
    seed: int = 0,
    noise: float = 0.05,
    threshold: float = 0.5,
    positive: int = 9,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Train on digits with a few flipped labels, score, split, write ``scores.csv``, ``hard.csv`` and a summary.

    Args:
        out_dir: the output folder (created if missing).
        epochs: training epochs of the small CNN.
        seed: fixes the data split, the flipped labels, the model's initialisation and the batch order.
        noise: the fraction of training labels flipped to another class.
        threshold: hard when ``label_prob`` is below it.
        positive: the digit treated as the positive class.
        progress: show the scoring progress bar.
        log: called with one line per training epoch (``"epoch 3/15: mean loss 0.412"``) and one when scoring starts;
            ``None`` is silent. The ``hardmine demo`` command prints them on stderr.

    Returns:
        A :class:`DemoResult`; ``print(result.report())`` gives the readable report.
    """
    noise = validate.fraction("noise", noise, open_high=True)
    threshold = validate.fraction("threshold", threshold)
    positive = validate.integer("positive", positive, min=0, max=9)
    epochs = validate.integer("epochs", epochs, min=1)
    seed = validate.integer("seed", seed)
    progress = validate.boolean("progress", progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train, test = load_digits_tensors(seed=seed)
    x, y_true = train.tensors
    y = y_true.clone()
    n = len(y)
    flip = torch.randperm(n, generator=gen)[: int(round(noise * n))]
    y[flip] = (y[flip] + torch.randint(1, 10, (len(flip),), generator=gen)) % 10
    train_set = TensorDataset(x, y)
    loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=gen)

    model = digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total = torch.zeros(())
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * len(yb)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: mean loss {float(total) / n:.3f}")
    train_seconds = time.perf_counter() - t0
    if log is not None:
        log(f"scoring the {n} training samples")

    t0 = time.perf_counter()
    scores = score(model, loader, progress=progress)
    score_seconds = time.perf_counter() - t0
    test_scores = score(model, DataLoader(test, batch_size=256), progress=False)
    table = split(scores, threshold=threshold, positive=positive)
    table["flipped"] = np.isin(np.arange(n), flip.numpy())
    s = summary(table)

    files = {
        "scores": to_csv(table, out / "scores.csv"),
        "hard": to_csv(table, out / "hard.csv", only="hard"),
    }
    flipped = table["flipped"].to_numpy()
    hard = (table["difficulty"] == "hard").to_numpy()
    found = int((flipped & hard).sum())
    facts: dict[str, Any] = {
        "train_samples": n,
        "epochs": epochs,
        "flipped": int(flipped.sum()),
        "hard": int(hard.sum()),
        "flipped_found": found,
        "flipped_precision": found / max(int(hard.sum()), 1),
        "flipped_recall": found / max(int(flipped.sum()), 1),
        "auroc_label_prob": _auroc(-table["label_prob"].to_numpy(np.float64), flipped),
        "auroc_confidence": _auroc(-table["confidence"].to_numpy(np.float64), flipped),
        "test_accuracy": float((test_scores["pred"] == test_scores["label"]).mean()),
        "train_seconds": train_seconds,
        "score_seconds": score_seconds,
        "threshold": threshold,
        "positive": positive,
        "seed": seed,
    }
    summary_path = out / "summary.txt"
    result = DemoResult(table=table, summary=s, files={**files, "summary": summary_path}, facts=facts)
    _write_text(summary_path, result.report() + "\n")
    _write_text(out / "summary.json", json.dumps({"facts": facts, "summary": s.to_dict()}, indent=2, default=str))
    result.files["json"] = out / "summary.json"
    return result
