"""The cost of the image-folder command line's extras: the up-front file check and resumable scoring.

On an ImageFolder tree of scikit-learn's digits (PNG files written to a temporary folder, upscaled to 32x32; nothing
is downloaded) with a torchvision resnet18 at ``--image-size`` pixels, measure:

1. the folder scan (:func:`hardmine.app.images.scan_image_folder`: every file opened, verified and decoded once);
2. a scoring pass with :func:`hardmine.score` without a checkpoint, and with ``checkpoint_dir`` saving every 1 and
   every 10 batches (the overhead of resumability);
3. a resumed pass after an interruption half-way (it scores only the second half).

Run ``python benchmarks/bench_resume.py`` (about a minute on 2 cores) or ``--quick`` (seconds, a smoke run).
Results go to ``benchmarks/results/bench_resume[_quick].json`` and ``.md``. Timings on a shared machine are noisy:
each row is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import save_results
from PIL import Image
from torch.utils.data import DataLoader

from hardmine.app.images import CheckedImageFolder, build_model, eval_transform, scan_image_folder
from hardmine.scoring.checkpoint import ScoringCheckpoint, model_hash
from hardmine.scoring.engine import score


def write_tree(root: Path, n: int) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(n):
        img = (np.kron(digits.images[i % len(digits.images)], np.ones((4, 4))) * 15).astype(np.uint8)
        folder = root / str(int(digits.target[i % len(digits.target)]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(folder / f"{i:06d}.png")


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark; returns its rows (one per step)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: 64 images, one repeat")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = 64, 1
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_resume_"))
    try:
        write_tree(tmp / "data", args.images)
        scan = scan_image_folder(tmp / "data")
        model = build_model("resnet18", len(scan.classes))
        loader = DataLoader(CheckedImageFolder(scan, eval_transform(args.image_size)), batch_size=args.batch_size)
        n, batches = len(scan.samples), -(-len(scan.samples) // args.batch_size)
        rows = []

        def row(name: str, seconds: float, note: str = "") -> None:
            rows.append(
                {"step": name, "seconds": round(seconds, 4), "images_per_s": round(n / seconds, 1), "note": note}
            )
            print(f"{name:<38} {seconds:8.3f} s  {n / seconds:9.1f} images/s  {note}")

        score(model, loader, progress=False)  # warm-up: first-call allocations and lazy imports
        row("scan folder (verify + decode each file)", timed(lambda: scan_image_folder(tmp / "data"), args.repeats))
        base = timed(lambda: score(model, loader, progress=False), args.repeats)
        row("score, no checkpoint", base)
        for every in (1, 10):
            ckpt = tmp / f"ckpt{every}"
            t = timed(
                lambda c=ckpt, e=every: score(model, loader, progress=False, checkpoint_dir=c, checkpoint_every=e),
                args.repeats,
            )
            row(f"score, checkpoint every {every} batch(es)", t, f"{t / base - 1:+.1%} vs no checkpoint")

        def fixed(name: str, seconds: float, note: str) -> None:
            rows.append({"step": name, "seconds": round(seconds, 4), "images_per_s": None, "note": note})
            print(f"{name:<38} {seconds:8.4f} s  {note}")

        fixed(
            "fingerprint: hash of the model weights",
            timed(lambda: model_hash(model), max(args.repeats, 5)),
            f"resnet18, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters",
        )
        saves = 20
        keys = ("label", "pred", "confidence", "label_prob", "margin", "entropy", "loss", "valid", "finite")
        bufs = {k: torch.zeros(saves * args.batch_size) for k in keys}
        saver = ScoringCheckpoint(tmp / "ckpt_save", {"bench": True})
        position = iter(range(args.batch_size, (saves + 1) * args.batch_size, args.batch_size))
        fixed(
            "one checkpoint save (rows + meta.json)",
            timed(lambda: saver.save(bufs, position=next(position), batches=1, num_classes=10), saves),
            f"{args.batch_size} new rows, two fsyncs; median of {saves}",
        )
        half = batches // 2

        class Stop(Exception):
            pass

        def interrupted() -> None:
            calls = {"n": 0}

            def hook(module, inputs):
                calls["n"] += 1
                if calls["n"] > half:
                    raise Stop

            handle = model.register_forward_pre_hook(hook)
            try:
                score(model, loader, progress=False, checkpoint_dir=tmp / "ckpt_resume", checkpoint_every=1)
            except Stop:
                pass
            finally:
                handle.remove()

        def resumed() -> None:
            interrupted()
            t0 = time.perf_counter()
            score(model, loader, progress=False, checkpoint_dir=tmp / "ckpt_resume", checkpoint_every=1)
            resumed.seconds.append(time.perf_counter() - t0)  # type: ignore[attr-defined]

        resumed.seconds = []  # type: ignore[attr-defined]
        for _ in range(args.repeats):
            resumed()
        t = statistics.median(resumed.seconds)  # type: ignore[attr-defined]
        row("resume after half the batches", t, f"{half} of {batches} batches were saved; images/s counts all {n}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    stem = "bench_resume_quick" if args.quick else "bench_resume"
    lines = [
        f"{n} digit PNGs, resnet18 at {args.image_size}x{args.image_size}, batch {args.batch_size}, median of "
        f"{args.repeats}.",
        "",
        "| step | seconds | images/s | note |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {r['step']} | {r['seconds']:.3f} | {'' if r['images_per_s'] is None else r['images_per_s']} | {r['note']} |"
        for r in rows
    ]
    settings = {"images": n, "image_size": args.image_size, "batch_size": args.batch_size, "arch": "resnet18"}
    paths = save_results(Path(args.out), stem, rows, "\n".join(lines) + "\n", repeats=args.repeats, **settings)
    print(paths[1].read_text())
    return rows


if __name__ == "__main__":
    main()
