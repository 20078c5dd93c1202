"""``hardmine score``: score an image folder (class folders, or a segmentation or detection layout) and write the table.

Imports nothing heavy at its top: the command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys

from hardmine.app._cli_common import (
    _GROUPS,
    _MEASURES,
    _check_writable,
    _debug_parent,
    _device,
    _non_negative_int,
    _output_parent,
    _positive_int,
    _print_json,
    _progress,
    _UsageError,
    _warn,
    _worker_message,
)


def _resolve_positive(values: list[str] | None, classes: list[str]) -> list[int] | None:
    """Class names (folder names) or indices, repeated or comma-separated, as sorted class indices."""
    if not values:
        return None
    out: set[int] = set()
    for item in (v.strip() for value in values for v in value.split(",")):
        if item in classes:
            out.add(classes.index(item))
        elif item.lstrip("-").isdigit() and 0 <= int(item) < len(classes):
            out.add(int(item))
        else:
            raise _UsageError(
                f"--positive {item!r} is neither a class folder name nor a class index in "
                f"[0, {len(classes)}); the classes are {classes[:20]}"
            )
    return sorted(out)


#: The columns ``--by`` may name for each ``--task`` (hardmine.core.columns knows their directions and ranges).
_BY_FOR_TASK: dict[str, tuple[str, ...]] = {
    "classification": _MEASURES,
    "segmentation": ("label_prob", "loss", "pixel_accuracy", "hard_pixel_fraction", "miou"),
    "detection": ("mistakenness", "det_recall", "det_precision", "missed", "false_pos", "mean_iou"),
}
#: ``--by`` choices: the classification measures, then the dense tasks' columns.
_BY_CHOICES: tuple[str, ...] = tuple(dict.fromkeys(c for cols in _BY_FOR_TASK.values() for c in cols))


def _check_arch(task: str, arch: str) -> None:
    import difflib

    from hardmine.app.dense_folders import dense_architectures
    from hardmine.app.images import classification_architectures

    names = classification_architectures() if task == "classification" else dense_architectures(task)
    if arch in names:
        return
    close = difflib.get_close_matches(arch, names, n=3)
    examples = {
        "classification": "resnet18, resnet50, mobilenet_v3_small, efficientnet_b0, vit_b_16",
        "segmentation": "fcn_resnet50, deeplabv3_resnet50, lraspp_mobilenet_v3_large",
        "detection": "fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_resnet50_fpn, retinanet_resnet50_fpn",
    }[task]
    raise _UsageError(
        f"--arch {arch!r} is not a torchvision {task} architecture"
        f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} (e.g. {examples})"
    )


def _check_split_options(args: argparse.Namespace) -> None:
    """``--by`` (default: the task's column), ``--threshold`` and ``--hard-fraction`` within their ranges."""
    from hardmine.analysis.splitting import DEFAULT_BY
    from hardmine.core.columns import value_range

    if args.by is None:
        args.by = DEFAULT_BY[args.task]
    if args.by not in _BY_FOR_TASK[args.task]:
        raise _UsageError(
            f"--by {args.by} is not a column of {args.task} tables; choose one of {', '.join(_BY_FOR_TASK[args.task])}"
        )
    if args.hard_fraction is not None and not 0.0 <= args.hard_fraction <= 1.0:
        raise _UsageError(f"--hard-fraction must be in [0, 1], got {args.hard_fraction}")
    bounds = value_range(args.by)
    if args.threshold is not None and bounds is not None and not bounds[0] <= args.threshold <= bounds[1]:
        raise _UsageError(f"--threshold {args.threshold} is outside the range of {args.by}, [{bounds[0]}, {bounds[1]}]")


def _cmd_score(args: argparse.Namespace) -> int:
    import os

    _check_arch(args.task, args.arch)
    if args.task != "classification":
        for given, option in (
            (args.positive, "--positive"),
            (args.per_class, "--per-class"),
            (args.keep_probs, "--keep-probs"),
        ):
            if given:
                raise _UsageError(f"{option} is for classification; {args.task} tables have no classes to choose")
        if args.task == "detection" and args.resume:
            raise _UsageError("--resume is not available for --task detection (its pass keeps no checkpoint)")
        if args.task == "detection" and args.amp is not None:
            raise _UsageError("--amp is not available for --task detection (detectors run in full precision)")
    _check_split_options(args)
    if args.json and args.out == "-":
        raise _UsageError("--json and --out - both write to stdout; write the table to a file with --out PATH")
    device = _device(args.device)
    from hardmine.analysis.io import sidecar_path
    from hardmine.app.html_report import skipped_path
    from hardmine.core._files import is_stdout

    to_stdout = is_stdout(args.out)
    inputs = [args.weights]
    _check_writable(args.out, "the output", inputs)
    if not to_stdout:
        _check_writable(str(sidecar_path(args.out)), "the table's sidecar", inputs)
        _check_writable(str(skipped_path(args.out)), "the skipped-files list", inputs)
    ckpt_dir = None
    if args.resume:
        if to_stdout and not args.checkpoint_dir:
            raise _UsageError("--resume with --out - needs --checkpoint-dir DIR (there is no OUT.ckpt beside stdout)")
        ckpt_dir = args.checkpoint_dir or f"{args.out}.ckpt"
        parent = os.path.dirname(os.path.abspath(ckpt_dir))
        while not os.path.isdir(parent) and os.path.dirname(parent) != parent:  # it is created on the first save
            parent = os.path.dirname(parent)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"Cannot keep the checkpoint in {ckpt_dir!r}: no permission to write in {parent!r}.")
    if args.task != "classification":
        from hardmine.app._cli_dense import score_dense

        return score_dense(args, device, inputs, ckpt_dir)
    return _score_classes(args, device, inputs, ckpt_dir)


def _score_classes(args: argparse.Namespace, device: str, inputs: list[str], ckpt_dir: str | None) -> int:
    """``hardmine score`` of an ImageFolder tree (``--task classification``)."""
    import os

    from torch.utils.data import DataLoader

    from hardmine.analysis.io import to_csv
    from hardmine.analysis.metrics import summary
    from hardmine.analysis.splitting import split
    from hardmine.app.html_report import write_skipped
    from hardmine.app.images import (
        CheckedImageFolder,
        build_model,
        check_images,
        eval_transform,
        load_weights,
        scan_image_folder,
    )
    from hardmine.core._files import is_stdout
    from hardmine.scoring.engine import score

    to_stdout = is_stdout(args.out)
    # The class folders first (fast), so that a wrong --positive or checkpoint fails before any image is decoded.
    scan = scan_image_folder(
        os.path.abspath(args.data_dir), check=False, follow_links_outside=args.follow_links, strict=args.strict
    )
    if not to_stdout:
        real_out = os.path.realpath(args.out)
        if os.path.isfile(real_out) and any(
            os.path.exists(p) and os.path.samefile(p, real_out)
            for p, _ in scan.samples
            if p.endswith(os.path.basename(real_out))
        ):
            raise ValueError(
                f"Refusing to write the output to {args.out!r}: it is one of the images being scored. Name another "
                "output file."
            )
    classes = scan.classes
    positive = _resolve_positive(args.positive, classes)
    num_classes = len(classes) if args.num_classes is None else args.num_classes
    if num_classes < len(classes):
        raise _UsageError(
            f"--num-classes {num_classes} is fewer than the {len(classes)} class folders in "
            f"{args.data_dir!r}: the model needs an output for every folder"
        )
    model = build_model(args.arch, num_classes)
    load_weights(model, args.weights, arch=args.arch, num_classes=num_classes)

    scan = check_images(scan, strict=args.strict, workers=args.workers)
    for path, reason in scan.skipped:
        _warn(
            f"skipped unreadable {'folder' if reason.startswith('unreadable folder') else 'image'} {path!r} ({reason})"
        )
    links = [i for i in scan.ignored if i.endswith(")") and "(symlinked folder" in i]
    files = [i for i in scan.ignored if i not in set(links)]
    for item in links:
        hint = "; --follow-links follows links that leave DATA_DIR" if "outside the image folder" in item else ""
        _warn(f"did not follow {item}{hint}")
    if files:
        _warn(f"ignored {len(files)} file(s) that are hidden or have no image extension, e.g. {files[0]!r}")
    for name in scan.empty_classes:
        _warn(f"class folder {name!r} holds no image; it still counts as a class")
    transform = eval_transform(args.image_size, resize_size=args.resize_size, mean=args.mean, std=args.std)
    dataset = CheckedImageFolder(scan, transform)
    loader = DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.workers, pin_memory=device.startswith("cuda")
    )
    amp: bool | str = False if args.amp is None else (True if args.amp == "auto" else args.amp)
    if ckpt_dir is not None:
        from hardmine.scoring.checkpoint import saved_position

        done = saved_position(ckpt_dir)
        if done:
            print(
                f"hardmine: resuming: the checkpoint in {ckpt_dir} holds {done} of {len(dataset)} images",
                file=sys.stderr,
            )
    try:
        scores = score(
            model,
            loader,
            device=device,
            amp=amp,
            progress=_progress(args),
            keep_probs=args.keep_probs,
            checkpoint_dir=ckpt_dir,
            checkpoint_every=args.checkpoint_every,
        )
    except (OSError, RuntimeError) as err:
        raise _worker_message(err) from err
    except KeyboardInterrupt:
        hint = "run the same command again to continue" if ckpt_dir else "add --resume to make a long run resumable"
        print(f"hardmine: interrupted; {hint}", file=sys.stderr)
        return 130
    # `index` is the sample's index in ImageFolder(DATA_DIR): skipped files leave gaps, so that
    # Subset(ImageFolder(DATA_DIR), table["index"]) selects exactly these images.
    import numpy as np

    positions = np.asarray(dataset.positions, dtype=np.int64)
    scores["index"] = positions[scores["index"].to_numpy()]
    names = [str(c) for c in classes]
    scores.insert(scores.columns.get_loc("pred") + 1, "label_name", [names[k] for k in scores["label"]])
    scores.insert(
        scores.columns.get_loc("label_name") + 1,
        "pred_name",
        [names[k] if 0 <= k < len(names) else str(k) for k in scores["pred"]],
    )
    table = split(
        scores,
        "per_class" if args.per_class else args.threshold,
        by=args.by,
        hard_fraction=args.hard_fraction,
        positive=positive,
    )
    table.attrs["hardmine"] = {**table.attrs.get("hardmine", {}), "image_root": os.path.abspath(args.data_dir)}
    only = None if args.only == "all" else args.only
    to_csv(table, args.out, only=only, inputs=inputs)
    sidecar = None if to_stdout else write_skipped(args.out, scan.skipped, inputs=inputs)
    info = sys.stderr if to_stdout or args.json else sys.stdout
    verbose = not args.quiet
    report = summary(table)
    if verbose:
        print(report, file=info)
    count = len(table)
    if only is None:
        rows = f"all {len(table)} rows"
    else:
        from hardmine.analysis.io import select

        count = len(select(table, only))
        rows = f"the {count} {only} rows"
        if count == 0:
            _warn(f"no sample is {only}: {args.out} holds only the header row")
    if args.json:
        _print_json(
            {
                "out": args.out,
                "rows_written": count,
                "only": args.only,
                "classes": names,
                "images": {"found": scan.found, "scored": len(table), "skipped": scan.found - len(table)},
                "skipped": [{"path": path, "reason": reason} for path, reason in scan.skipped],
                "skipped_list": None if sidecar is None else str(sidecar),
                "summary": report.to_dict(),
            }
        )
    if not verbose:
        return 0
    shown = ", ".join(f"{i}={c}" for i, c in enumerate(names[:10])) + (" ..." if len(names) > 10 else "")
    print(f"\nwrote {'stdout' if to_stdout else args.out} ({rows}); classes: {shown}", file=info)
    if sidecar is not None:
        print(f"skipped {len(scan.skipped)} unreadable file(s) or folder(s), listed in {sidecar}", file=info)
    folders = sum(1 for _, reason in scan.skipped if reason.startswith("unreadable folder"))
    counts = f"images: {scan.found} found, {len(table)} scored, {scan.found - len(table)} skipped (unreadable)"
    if folders:
        counts += f"; {folders} unreadable folder(s) not walked"
    if scan.ignored:
        counts += f"; {len(scan.ignored)} other file(s) or linked folder(s) ignored"
    print(counts, file=info)
    return 0


def _add_score_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        parents=[_debug_parent(), _output_parent()],
        help="score every image of an ImageFolder tree (or a segmentation or detection folder) with your "
        "checkpoint and write the split table",
        description="Score every image of an ImageFolder tree (DATA_DIR/<class>/<image>) with a torchvision "
        "architecture and your own weights, split the samples into easy/hard and positive/negative, and write the "
        "table (one row per image, with its file path in the `id` column) to --out. Unreadable images are skipped "
        "with a warning and listed in OUT.skipped.txt (--strict refuses them). --task segmentation reads "
        "DATA_DIR/images/<name> with DATA_DIR/masks/<name>.png (a class index per pixel, 255 ignored); --task "
        "detection reads DATA_DIR/images/<name> with DATA_DIR/boxes.csv (file,x1,y1,x2,y2,label) and also writes "
        "the per-box table of misses and false positives (OUT.boxes.csv).",
        epilog="examples: hardmine score data/train --arch resnet18 --weights ckpt.pt --positive cat --out hard.csv; "
        "hardmine score data/seg --task segmentation --arch lraspp_mobilenet_v3_large --weights seg.pt -o seg.csv",
    )
    p.add_argument(
        "data_dir",
        metavar="DATA_DIR",
        help="ImageFolder tree: one sub-folder per class (segmentation, detection: a folder holding images/)",
    )
    p.add_argument(
        "--task",
        default="classification",
        choices=["classification", "segmentation", "detection"],
        help="what the model does and how DATA_DIR is laid out (default: %(default)s)",
    )
    p.add_argument(
        "--arch",
        required=True,
        help="torchvision architecture of the task, e.g. resnet18; fcn_resnet50, lraspp_mobilenet_v3_large "
        "(segmentation); fasterrcnn_mobilenet_v3_large_fpn, retinanet_resnet50_fpn (detection)",
    )
    p.add_argument(
        "--num-classes",
        type=_positive_int,
        default=None,
        metavar="K",
        help="outputs of the model (default: the number of class folders; segmentation: the largest mask value "
        "+ 1; detection: the largest label + 1, the background 0 included); larger when the checkpoint "
        "was trained on more classes than DATA_DIR holds (the folders are classes 0..)",
    )
    p.add_argument(
        "--weights",
        required=True,
        metavar="CKPT",
        help="your checkpoint: a state_dict, or a dict holding one under 'state_dict', 'model', "
        "'model_state_dict', 'net' or 'weights' (read with torch.load(weights_only=True))",
    )
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="CSV",
        help="the table to write (its folder must exist; '-' for stdout; .gz/.bz2/.xz compress)",
    )
    g = p.add_argument_group("images")
    for option, pixels, what in (
        ("--image-size", 224, "center crop fed to the model, in pixels (default: %(default)s)"),
        ("--resize-size", None, "short side before the crop (default: image size * 256/224)"),
    ):
        g.add_argument(option, type=_positive_int, default=pixels, help=what)
    for option, default, what in (
        ("--mean", [0.485, 0.456, 0.406], "mean"),
        ("--std", [0.229, 0.224, 0.225], "standard deviation"),
    ):
        g.add_argument(
            option,
            type=float,
            nargs=3,
            default=default,
            metavar=("R", "G", "B"),
            help=f"normalisation {what} (default: ImageNet's, %(default)s)",
        )
    g.add_argument(
        "--strict", action="store_true", help="fail on the first unreadable image or folder instead of skipping it"
    )
    g.add_argument(
        "--follow-links",
        action="store_true",
        help="also walk symlinked folders that lead outside DATA_DIR (each linked folder is walked once either way)",
    )
    r = p.add_argument_group("running")
    r.add_argument("--batch-size", type=_positive_int, default=64, help="images per batch (default: %(default)s)")
    r.add_argument(
        "-j", "--workers", type=_non_negative_int, default=0, help="DataLoader worker processes (default: %(default)s)"
    )
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: auto, cuda when available)")
    r.add_argument(
        "--amp",
        nargs="?",
        const="auto",
        default=None,
        choices=["auto", "bf16", "fp16"],
        help="mixed precision; without a value: fp16 on CUDA, bf16 on CPU (default: off)",
    )
    r.add_argument("--keep-probs", action="store_true", help="also write every class probability (prob_<k>)")
    r.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar (it is drawn only when stderr is a terminal)"
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="save partial results every --checkpoint-every batches and resume from them when run "
        "again with the same arguments",
    )
    r.add_argument(
        "--checkpoint-dir", default=None, metavar="DIR", help="where --resume keeps its state (default: OUT.ckpt)"
    )
    r.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=50,
        metavar="N",
        help="batches between checkpoint saves (default: %(default)s)",
    )
    d = p.add_argument_group("segmentation and detection")
    d.add_argument(
        "--ignore-index",
        type=int,
        default=255,
        metavar="V",
        help="segmentation: mask value of pixels to ignore (default: %(default)s; -100 is always ignored)",
    )
    d.add_argument(
        "--iou-threshold",
        type=float,
        default=0.5,
        metavar="T",
        help="detection: IoU at which a prediction matches a box of its class (default: %(default)s)",
    )
    d.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        metavar="T",
        help="detection: predictions scored at least this are matched and counted (default: %(default)s)",
    )
    d.add_argument(
        "--per-box",
        default=None,
        metavar="CSV",
        help="detection: where to write the per-box table of misses and false positives (default: OUT.boxes.csv; "
        "none with --out - unless given)",
    )
    s = p.add_argument_group("split (as hm.split)")
    s.add_argument(
        "--positive",
        action="append",
        metavar="CLASS",
        help="class(es) of interest, by folder name or index; repeat or comma-separate (default for two "
        "classes: the second folder; with more classes and no --positive: easy/hard only, reported per class)",
    )
    s.add_argument(
        "--by",
        default=None,
        choices=list(_BY_CHOICES),
        metavar="COLUMN",
        help="the score that decides hard/easy: confidence, label_prob, margin, entropy, loss; segmentation: "
        "label_prob, loss, pixel_accuracy, hard_pixel_fraction, miou; detection: mistakenness, det_recall, "
        "det_precision, missed, false_pos, mean_iou (default: label_prob; mistakenness for detection)",
    )
    how = s.add_mutually_exclusive_group()
    how.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="hard when the score is below it (above it for loss and entropy); default 0.5 for "
        "label_prob and confidence, 0 for margin",
    )
    how.add_argument(
        "--hard-fraction", type=float, default=None, metavar="Q", help="call the hardest fraction Q of the samples hard"
    )
    how.add_argument("--per-class", action="store_true", help="each class's threshold is the mean score of its samples")
    s.add_argument(
        "--only",
        default="all",
        choices=["all", "hard", "easy", "positive", "negative", *_GROUPS],
        metavar="ROWS",
        help="which rows to write: all, hard, easy, positive, negative or a group name "
        "(hard_positive, easy_positive, hard_negative, easy_negative) (default: %(default)s)",
    )
    p.set_defaults(func=_cmd_score, parser=p)
