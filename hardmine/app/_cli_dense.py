"""``hardmine score --task segmentation|detection``: score a dense folder and write its table (and per-box table).

The folder layouts are those of :mod:`hardmine.app.dense_folders`. The tables are :func:`hardmine.score`'s
(segmentation) and :func:`hardmine.score_detection`'s (detection), split by :func:`hardmine.split`, written with the
same write path as the classification tables (atomic, a ``.hardmine.json`` sidecar, ``OUT.skipped.txt``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hardmine.app._cli_common import _check_writable, _print_json, _progress, _UsageError, _warn, _worker_message

__all__ = ["score_dense"]


def _collate(batch: list[Any]) -> tuple[Any, ...]:
    """Detection batches as torchvision's references make them: ``(images, targets)`` (picklable for workers)."""
    return tuple(zip(*batch, strict=True))


def _box_path(args: argparse.Namespace, to_stdout: bool) -> str | None:
    if args.task != "detection":
        return None
    return args.per_box or (None if to_stdout else f"{args.out}.boxes.csv")


def _check_thresholds(args: argparse.Namespace) -> None:
    for option, value in (("--iou-threshold", args.iou_threshold), ("--score-threshold", args.score_threshold)):
        if not 0.0 <= value <= 1.0:
            raise _UsageError(f"{option} must be in [0, 1], got {value}")


def score_dense(args: argparse.Namespace, device: str, inputs: list[str], ckpt_dir: str | None) -> int:
    """Run ``hardmine score`` for ``--task segmentation`` or ``--task detection``; returns the exit code."""
    import os

    from hardmine.analysis.io import to_csv
    from hardmine.analysis.splitting import split
    from hardmine.app.dense_folders import build_dense_model, scan_dense_folder
    from hardmine.app.html_report import write_skipped
    from hardmine.core._files import is_stdout

    _check_thresholds(args)
    to_stdout = is_stdout(args.out)
    box_out = _box_path(args, to_stdout)
    if box_out is not None:
        _check_writable(box_out, "the per-box table", inputs)
        if box_out == args.out or (is_stdout(box_out) and (to_stdout or args.json)):
            raise _UsageError("--per-box names the same file as --out (or stdout with --json); write it elsewhere")
    scan = scan_dense_folder(
        os.path.abspath(args.data_dir), args.task, strict=args.strict, ignore_index=args.ignore_index
    )
    for path, reason in scan.skipped:
        _warn(f"skipped image {path!r} ({reason})")
    if scan.ignored:
        _warn(
            f"ignored {len(scan.ignored)} file(s) that are hidden or have no image extension, e.g. {scan.ignored[0]!r}"
        )
    needed = max(scan.max_label + 1, 2)
    num_classes = needed if args.num_classes is None else args.num_classes
    if num_classes < needed:
        what = "mask value" if args.task == "segmentation" else "box label"
        raise _UsageError(
            f"--num-classes {num_classes} is too few: the largest {what} in {args.data_dir!r} is {scan.max_label}"
        )
    model = build_dense_model(args.task, args.arch, num_classes, args.weights)
    try:
        table, boxes = _score(args, scan, model, device, ckpt_dir)
    except (OSError, RuntimeError) as err:
        raise _worker_message(err) from err
    except KeyboardInterrupt:
        hint = "run the same command again to continue" if ckpt_dir else "add --resume to make a long run resumable"
        if args.task == "detection":
            hint = "run the same command again"
        print(f"hardmine: interrupted; {hint}", file=sys.stderr)
        return 130
    table = split(table, args.threshold, by=args.by, hard_fraction=args.hard_fraction)
    images = os.path.abspath(os.path.join(args.data_dir, "images"))
    table.attrs["hardmine"] = {**table.attrs.get("hardmine", {}), "image_root": images}
    only = None if args.only == "all" else args.only
    to_csv(table, args.out, only=only, inputs=inputs)
    if boxes is not None and box_out is not None:
        _write_boxes(boxes, box_out, inputs)
    sidecar = None if to_stdout else write_skipped(args.out, scan.skipped, inputs=inputs)
    _tell(args, table, boxes, box_out, scan, sidecar, only)
    return 0


def _write_boxes(boxes: Any, path: str, inputs: list[str]) -> None:
    """The per-box table as plain CSV (one row per box, so no ``index`` is unique: not a hardmine table), atomically."""
    from hardmine.core._files import atomic_path, is_stdout

    if is_stdout(path):
        boxes.to_csv(sys.stdout, index=False)
        return
    with atomic_path(path, inputs=inputs, what="the per-box table") as tmp:
        boxes.to_csv(tmp, index=False)


def _score(args: argparse.Namespace, scan: Any, model: Any, device: str, ckpt_dir: str | None) -> tuple[Any, Any]:
    """The per-image table, and the per-box table for detection (``None`` for segmentation)."""
    from torch.utils.data import DataLoader

    from hardmine.app.dense_folders import DetectionFolder, SegmentationFolder

    pin = device.startswith("cuda")
    if args.task == "segmentation":
        from hardmine.scoring.dense import SegmentationTask
        from hardmine.scoring.engine import score

        dataset = SegmentationFolder(scan, args.image_size, resize_size=args.resize_size, mean=args.mean, std=args.std)
        loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, pin_memory=pin)
        amp: bool | str = False if args.amp is None else (True if args.amp == "auto" else args.amp)
        table = score(
            model,
            loader,
            device=device,
            amp=amp,
            progress=_progress(args),
            task=SegmentationTask(ignore_index=args.ignore_index),
            checkpoint_dir=ckpt_dir,
            checkpoint_every=args.checkpoint_every,
        )
        return table, None
    from hardmine.scoring.detection import score_detection

    det = DataLoader(DetectionFolder(scan), batch_size=args.batch_size, num_workers=args.workers, collate_fn=_collate)
    return score_detection(
        model,
        det,
        device=device,
        progress=_progress(args),
        iou_threshold=args.iou_threshold,
        score_threshold=args.score_threshold,
        classes=scan.classes,
        return_boxes=True,
    )


def _tell(
    args: argparse.Namespace,
    table: Any,
    boxes: Any,
    box_out: str | None,
    scan: Any,
    sidecar: Any,
    only: str | None,
) -> None:
    """The run's summary: text on stdout (stderr with ``--json`` or ``--out -``), or JSON on stdout."""
    from hardmine.analysis.io import select
    from hardmine.core._files import is_stdout

    count = len(table) if only is None else len(select(table, only))
    hard = int((table["difficulty"] == "hard").sum())
    by = args.by
    summary: dict[str, Any] = {"rows": len(table), "hard": hard, "by": by, f"mean_{by}": float(table[by].mean())}
    if args.task == "segmentation":
        summary["mean_miou"] = float(table["miou"].mean())
    else:
        summary.update(
            gt_boxes=int(table["gt_boxes"].sum()),
            missed=int(table["missed"].sum()),
            false_pos=int(table["false_pos"].sum()),
        )
    if args.json:
        _print_json(
            {
                "out": args.out,
                "rows_written": count,
                "only": args.only,
                "task": args.task,
                "images": {"found": scan.found, "scored": len(table), "skipped": scan.found - len(table)},
                "skipped": [{"path": path, "reason": reason} for path, reason in scan.skipped],
                "skipped_list": None if sidecar is None else str(sidecar),
                "boxes_out": box_out,
                "summary": summary,
            }
        )
    if args.quiet:
        return
    info = sys.stderr if is_stdout(args.out) or args.json else sys.stdout
    settings = table.attrs.get("hardmine", {})
    rule = (
        f"the hardest {args.hard_fraction:g}"
        if args.hard_fraction is not None
        else f"threshold {settings.get('threshold')}"
    )
    lines = [f"{args.task}: {hard} of {len(table)} images hard by {by} ({rule}); mean {by} {summary[f'mean_{by}']:.4g}"]
    if args.task == "segmentation":
        lines.append(f"mean miou per image {summary['mean_miou']:.4g}")
    else:
        lines.append(
            f"ground-truth boxes {summary['gt_boxes']}, missed {summary['missed']}, "
            f"false positives {summary['false_pos']}"
        )
    rows = f"all {len(table)} rows" if only is None else f"the {count} {only} rows"
    lines.append(f"wrote {'stdout' if is_stdout(args.out) else args.out} ({rows})")
    if boxes is not None and box_out is not None:
        lines.append(f"wrote the per-box table ({len(boxes)} misses and false positives) to {box_out}")
    if sidecar is not None:
        lines.append(f"skipped {len(scan.skipped)} unusable image(s), listed in {sidecar}")
    lines.append(f"images: {scan.found} found, {len(table)} scored, {scan.found - len(table)} skipped")
    print("\n".join(lines), file=info)
