"""Dense scoring against the bare forward loop: a segmentation model and a detection model.

For the same model and data in one run, two timings, interleaved (bare, score, bare, score, ...) after one warm-up
pass of each, median of ``--repeats``:

- ``bare``: ``with torch.inference_mode(): for batch in loader: model(images)`` in dataset order, the model in eval
  mode (the floor: the forward pass and the data loading).
- ``score``: ``hm.score(model, loader, progress=False)`` for segmentation (per-image loss, label probability, pixel
  accuracy, hard-pixel fraction, mIoU and per-class intersections/unions, the table) and
  ``hm.score_detection(model, loader, progress=False)`` for detection (greedy matching of every image, the table).

Cases:

- ``lraspp``: torchvision ``lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)`` on random
  3x``--size``x``--size`` images and masks (255 on a border, as VOC marks object edges).
- ``fcn``: torchvision ``fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=False)``, the same
  data: a heavier forward pass per pixel, as most segmentation models have.
- ``fasterrcnn``: torchvision ``fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None,
  num_classes=3, min_size=--size, max_size=--size)`` on random images with 0-3 boxes each, batches collated with
  ``tuple(zip(*b))``. An untrained detector keeps up to 100 low-score detections per image; all of them go through the
  matcher (``score_threshold=0``), the most work the matching can have.

Memory: the scoring pass keeps only per-image results; ``result_bytes_per_image`` is the size of the segmentation
results (``score_tensors``) per image at ``--size`` and at half that size: equal when no per-pixel tensor
outlives its batch.

Ratios are throughput ratios (``score / bare``: 1.0 is free), wall clock and process CPU time (the honest one on a
shared CPU with ``--threads 1``). Run ``python benchmarks/bench_dense.py`` (CPU), ``--device cuda`` on a GPU, or
``--quick`` for a smoke run. Results go to ``benchmarks/results/bench_dense.{json,md}`` (or ``--out DIR``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
from hardmine.scoring.engine import score_tensors

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when the tests import this script
from _common import describe, machine, save_results  # noqa: E402

CASES = ("lraspp", "fcn", "fasterrcnn")


def collate(batch: list[Any]) -> tuple[Any, ...]:
    return tuple(zip(*batch, strict=True))


def seg_case(n: int, size: int, seed: int = 0, arch: str = "lraspp") -> tuple[nn.Module, TensorDataset]:
    """The segmentation model (eval mode) and ``n`` random images with masks in ``[0, 21)``, 255 on a 2-pixel border."""
    from torchvision.models.segmentation import fcn_resnet50, lraspp_mobilenet_v3_large

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    build = fcn_resnet50 if arch == "fcn" else lraspp_mobilenet_v3_large
    kwargs = {"aux_loss": False} if arch == "fcn" else {}
    model = build(weights=None, weights_backbone=None, num_classes=21, **kwargs).eval()
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.randint(0, 21, (n, size, size), generator=g)
    y[:, :2] = 255
    return model, TensorDataset(x, y)


def det_case(n: int, size: int, seed: int = 0) -> tuple[nn.Module, list[tuple[torch.Tensor, dict[str, torch.Tensor]]]]:
    """The Faster R-CNN model (eval mode) and ``n`` random images with 0-3 boxes of classes 1-2."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=size, max_size=size
    ).eval()
    data = []
    for i in range(n):
        k = i % 4
        xy = torch.rand(k, 2, generator=g) * size * 0.6
        wh = torch.rand(k, 2, generator=g) * size * 0.3 + 4
        boxes = torch.cat([xy, xy + wh], dim=1)
        labels = torch.randint(1, 3, (k,), generator=g)
        data.append((torch.rand(3, size, size, generator=g), {"boxes": boxes, "labels": labels}))
    return model, data


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def run_case(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    n, size = args.n, args.size
    if name in ("lraspp", "fcn"):
        model, ds = seg_case(n, size, arch=name)
        model.to(device)
        loader = DataLoader(ds, batch_size=args.batch_size)

        def bare() -> None:
            with torch.inference_mode():
                for x, _ in loader:
                    model(x.to(device))["out"]

        def scored() -> None:
            hm.score(model, loader, progress=False, device=device)

    elif name == "fasterrcnn":
        model, data = det_case(n, size)
        model.to(device)
        loader = DataLoader(data, batch_size=args.batch_size, collate_fn=collate)

        def bare() -> None:
            with torch.inference_mode():
                for images, _ in loader:
                    model([im.to(device) for im in images])

        def scored() -> None:
            hm.score_detection(model, loader, progress=False, device=device, score_threshold=0.0)

    else:
        raise ValueError(f"Expected argument `case` to be one of {CASES}, but got {name!r}.")
    bare()
    scored()
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "score": []}
    for _ in range(args.repeats):
        times["bare"].append(_timed(bare))
        times["score"].append(_timed(scored))
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    row: dict[str, Any] = {
        "case": name,
        "n": n,
        "size": size,
        "batch_size": args.batch_size,
        "bare_per_s": n / wall["bare"],
        "score_per_s": n / wall["score"],
        "score_vs_bare": wall["bare"] / wall["score"],
        "score_vs_bare_cpu": cpu["bare"] / cpu["score"] if cpu["score"] > 0 else float("nan"),
    }
    if name == "lraspp":
        row["result_bytes_per_image"] = result_bytes_per_image(model, size, device)
        row["result_bytes_per_image_half_size"] = result_bytes_per_image(model, size // 2, device)
    return row


def result_bytes_per_image(model: nn.Module, size: int, device: torch.device, n: int = 4) -> float:
    """Bytes of the segmentation pass's results per image (every result tensor, ``(N, ...)``)."""
    _, ds = seg_case(n, size)
    res = score_tensors(model, DataLoader(ds, batch_size=2), progress=False, device=device)
    return sum(v.numel() * v.element_size() for k, v in res.items() if k != "probs_shape") / n


def markdown(rows: list[dict[str, Any]], where: str) -> str:
    lines = [
        "| case | images | size | batch | bare img/s | score img/s | score/bare (wall) | score/bare (CPU) | "
        "result bytes/image (size, size/2) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem = (
            f"{r['result_bytes_per_image']:.0f}, {r['result_bytes_per_image_half_size']:.0f}"
            if "result_bytes_per_image" in r
            else "-"
        )
        lines.append(
            f"| {r['case']} | {r['n']} | {r['size']} | {r['batch_size']} | {r['bare_per_s']:.1f} | "
            f"{r['score_per_s']:.1f} | {r['score_vs_bare']:.3f} | {r['score_vs_bare_cpu']:.3f} | {mem} |"
        )
    return "\n".join(lines) + f"\n\nMachine: {where}\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    parser.add_argument("--n", type=int, default=64, help="images (default 64)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (a few seconds)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.size, args.batch_size, args.repeats = 4, 64, 2, 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = CASES if args.case == "all" else (args.case,)
    rows = [run_case(c, args, device) for c in cases]
    where = describe(machine(device))
    stem = "bench_dense" + ("_quick" if args.quick else "") + ("" if device.type == "cpu" else f"_{device.type}")
    save_results(args.out, stem, rows, markdown(rows, where), device=device)
    print(markdown(rows, where))
    return rows


if __name__ == "__main__":
    main()
