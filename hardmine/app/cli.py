"""The ``hardmine`` command line: a thin argparse layer over the public functions.

Exit codes: 0 success, 2 usage errors (argparse), 1 data or model errors, reported in one line on stderr
(``--debug`` shows the traceback), 130 after Ctrl-C (one line on stderr, also during the start-up imports).

This module imports nothing heavy at its top: the parser is argparse only, so ``--help``, ``--version`` and
``completion`` answer without importing torch; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from hardmine.app.html_report import Report

__all__ = ["build_parser", "main"]

# hardmine.core.columns.MEASURES and GROUPS, written out so that building the parser imports no torch
# (tests/test_cli.py checks that they agree).
_MEASURES = ("confidence", "label_prob", "margin", "entropy", "loss")
_GROUPS = ("hard_positive", "easy_positive", "hard_negative", "easy_negative")

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, PermissionError, ImportError, OSError, RuntimeError)


def _cmd_demo(args: argparse.Namespace) -> int:
    from hardmine.app.demo import run_demo

    result = run_demo(
        args.out,
        epochs=args.epochs,
        seed=args.seed,
        noise=args.noise,
        threshold=args.threshold,
        positive=args.positive,
        progress=_progress(args),
        log=None if args.quiet else _demo_log,
    )
    if not args.quiet:
        print(result.report())
    return 0


def _demo_log(line: str) -> None:
    """The demo's training epochs, one line each on stderr (no carriage returns: readable in a log too)."""
    print(f"hardmine demo: {line}", file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> bool:
    """Draw the progress bar only on a terminal: in a log or a pipe it would fill the file with carriage returns."""
    return not (args.no_progress or args.quiet) and sys.stderr.isatty()


def _print_json(data: dict[str, Any]) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame's rows as plain JSON values (NaN as null)."""
    import json

    return list(json.loads(frame.to_json(orient="records")))


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse ``type=`` that accepts whole numbers ``>= minimum`` and says ``what`` it expected otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive whole number")
_non_negative_int = _int_at_least(0, "a whole number >= 0")


def _warn(message: str) -> None:
    print(f"hardmine: warning: {message}", file=sys.stderr)


def _check_writable(path: str, what: str, inputs: Sequence[str | None] = ()) -> None:
    """Fail before any work when ``path`` cannot be written or is one of the run's ``inputs`` (never overwrite one)."""
    import os

    from hardmine.core._files import is_stdout, resolve_output

    if is_stdout(path):
        return
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder; name a file in it, e.g. {os.path.join(path, 'hard.csv')!r}.")
    resolve_output(path, inputs=inputs, what=what)


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


_THRESHOLD_RANGES: dict[str, tuple[float, float]] = {
    "label_prob": (0.0, 1.0),
    "confidence": (0.0, 1.0),
    "margin": (-1.0, 1.0),
    "entropy": (0.0, float("inf")),
    "loss": (0.0, float("inf")),
}


class _UsageError(Exception):
    """A usage mistake found after parsing (it depends on the data): exit code 2, like argparse's own."""


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise _UsageError(f"--device {name!r} is not a torch device (try cpu, cuda, cuda:1, mps)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu).")
    return name


def _worker_message(err: BaseException) -> BaseException:
    """DataLoader worker errors read 'Caught OSError in DataLoader worker process 0.'; keep the real last line."""
    text = str(err)
    if text.startswith("Caught "):
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            last = lines[-1]
            name = f"{type(err).__name__}: "
            return type(err)(last[len(name) :] if last.startswith(name) else last)
    return err


def _cmd_score(args: argparse.Namespace) -> int:
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
        classification_architectures,
        eval_transform,
        load_weights,
        scan_image_folder,
    )
    from hardmine.scoring.engine import score

    if args.arch not in classification_architectures():
        import difflib

        close = difflib.get_close_matches(args.arch, classification_architectures(), n=3)
        raise _UsageError(
            f"--arch {args.arch!r} is not a torchvision classification architecture"
            f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} (e.g. resnet18, resnet50, "
            "mobilenet_v3_small, efficientnet_b0, vit_b_16)"
        )
    if args.hard_fraction is not None and not 0.0 <= args.hard_fraction <= 1.0:
        raise _UsageError(f"--hard-fraction must be in [0, 1], got {args.hard_fraction}")
    lo, hi = _THRESHOLD_RANGES[args.by]
    if args.threshold is not None and not lo <= args.threshold <= hi:
        raise _UsageError(f"--threshold {args.threshold} is outside the range of {args.by}, [{lo}, {hi}]")
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


def _no_root(source: str | None) -> str:
    """With no recorded image root, only images beside the table (its folder and below) are embedded."""
    import os

    return os.path.dirname(os.path.abspath(source)) if source else os.getcwd()


def _read_report(path: str) -> Report:
    """The table at ``path`` (CSV, compressed CSV or ``.parquet``; ``-``: a CSV or Parquet file on stdin)."""
    import tempfile
    from pathlib import Path

    from hardmine.analysis.io import read_csv, read_parquet
    from hardmine.app.html_report import Report, load_report, read_skipped

    def checked(table: pd.DataFrame, source: str, skipped: list[tuple[str, str]]) -> Report:
        missing = [c for c in ("label", "pred", "difficulty") if c not in table.columns]
        if missing:
            raise ValueError(
                f"{source!r} has no {', '.join(missing)} column(s): the report needs a split table "
                "(hardmine score writes one; in Python: hm.to_parquet(hm.split(scores, ...), path))."
            )
        return Report(table=table, source=source, skipped=skipped)

    if path == "-":
        data = sys.stdin.buffer.read()
        if not data.strip():
            raise ValueError("the table on stdin ('-') is empty: pipe a CSV or Parquet table into 'hardmine report -'")
        with tempfile.TemporaryDirectory(prefix="hardmine-stdin-") as tmp:
            name = Path(tmp) / ("stdin.parquet" if data[:4] == b"PAR1" else "stdin.csv")
            name.write_bytes(data)
            table = read_parquet(name) if name.suffix == ".parquet" else read_csv(name)
        return checked(table, "<stdin>", [])
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return checked(read_parquet(path), str(path), read_skipped(path))
    return load_report(path)


def _cmd_report(args: argparse.Namespace) -> int:
    from hardmine.analysis.io import sidecar_path
    from hardmine.app.html_report import hardest, report_text, skipped_path, write_html
    from hardmine.core._files import is_stdout

    if args.json and args.html is not None and is_stdout(args.html):
        raise _UsageError("--json and --html - both write to stdout; write the page to a file with --html PATH")
    if args.html is not None and args.table != "-":
        _check_writable(
            args.html, "the HTML report", [args.table, str(sidecar_path(args.table)), str(skipped_path(args.table))]
        )
    elif args.html is not None:
        _check_writable(args.html, "the HTML report")
    report = _read_report(args.table)
    if args.by not in report.table.columns:
        raise ValueError(f"--by {args.by!r}: {args.table!r} has no such column (it has {list(report.table.columns)}).")
    text_out = sys.stderr if args.json or (args.html is not None and is_stdout(args.html)) else sys.stdout
    if not args.quiet:
        text = report_text(report.table, top=args.top, by=args.by, skipped=report.skipped, source=report.source)
        print(text, file=text_out)
    if args.json:
        from hardmine.analysis.metrics import summary

        _print_json(
            {
                "source": report.source,
                "rows": len(report.table),
                "summary": summary(report.table).to_dict(),
                "by": args.by,
                "hardest": _records(hardest(report.table, args.top, by=args.by)),
                "skipped": [{"path": path, "reason": reason} for path, reason in report.skipped],
            }
        )
    if args.html is not None:
        image_root = args.image_root or report.table.attrs.get("hardmine", {}).get("image_root")
        write_html(
            report,
            args.html,
            top=args.top,
            by=args.by,
            image_root=None if args.allow_any_image else (image_root or _no_root(report.source)),
            inputs=[args.table],
        )
        if not is_stdout(args.html) and not args.quiet:
            print(f"\nwrote {args.html}", file=text_out)
    return 0


def _debug_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    return parent


def _output_parent() -> argparse.ArgumentParser:
    """``-q/--quiet`` and ``--json``, shared by ``score`` and ``report``."""
    parent = argparse.ArgumentParser(add_help=False)
    out = parent.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print a machine-readable summary (JSON, hm.summary(table).to_dict() under 'summary') on stdout; the "
        "human text goes to stderr",
    )
    out.add_argument(
        "-q", "--quiet", action="store_true", help="no summary text and no progress bar (warnings and errors stay)"
    )
    return parent


def _add_score_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        parents=[_debug_parent(), _output_parent()],
        help="score every image of an ImageFolder tree with your checkpoint and write the split table",
        description="Score every image of an ImageFolder tree (DATA_DIR/<class>/<image>) with a torchvision "
        "architecture and your own weights, split the samples into easy/hard and positive/negative, and write the "
        "table (one row per image, with its file path in the `id` column) to --out. Unreadable images are skipped "
        "with a warning and listed in OUT.skipped.txt (--strict refuses them).",
        epilog="example: hardmine score data/train --arch resnet18 --weights ckpt.pt --positive cat --out hard.csv",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="ImageFolder tree: one sub-folder per class")
    p.add_argument("--arch", required=True, help="torchvision classification architecture, e.g. resnet18")
    p.add_argument(
        "--num-classes",
        type=_positive_int,
        default=None,
        metavar="K",
        help="outputs of the model (default: the number of class folders); larger when the checkpoint "
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
    g.add_argument(
        "--image-size",
        type=_positive_int,
        default=224,
        help="center crop fed to the model, in pixels (default: %(default)s)",
    )
    g.add_argument(
        "--resize-size",
        type=_positive_int,
        default=None,
        help="short side before the crop (default: image size * 256/224)",
    )
    g.add_argument(
        "--mean",
        type=float,
        nargs=3,
        default=[0.485, 0.456, 0.406],
        metavar=("R", "G", "B"),
        help="normalisation mean (default: ImageNet's, %(default)s)",
    )
    g.add_argument(
        "--std",
        type=float,
        nargs=3,
        default=[0.229, 0.224, 0.225],
        metavar=("R", "G", "B"),
        help="normalisation standard deviation (default: ImageNet's, %(default)s)",
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
        default="label_prob",
        choices=list(_MEASURES),
        help="the score that decides hard/easy (default: %(default)s)",
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


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        parents=[_debug_parent(), _output_parent()],
        help="summarise a table from 'hardmine score': groups, confusion, precision/recall/F1, hardest samples",
        description="Print counts per group, the confusion matrix, precision/recall/F1 of the positive class, a "
        "per-class table and the hardest samples with their paths; --html also writes a self-contained page with "
        "thumbnails of the hardest images. A file with only the hard rows gives counts of those rows only.",
        epilog="examples: hardmine report hard.csv -n 30 --html hard.html; "
        "hardmine score ... -o - | hardmine report - --json",
    )
    p.add_argument(
        "table",
        metavar="TABLE",
        help="a split table written by 'hardmine score' or hm.to_csv (.csv, .csv.gz, ...) or hm.to_parquet "
        "(.parquet); '-' reads a CSV or Parquet table from stdin",
    )
    p.add_argument(
        "-n",
        "--top",
        type=_non_negative_int,
        default=20,
        help="how many of the hardest samples to show (default: %(default)s)",
    )
    p.add_argument(
        "--by", default="label_prob", help="the score column that ranks the hardest samples (default: %(default)s)"
    )
    p.add_argument(
        "--html", default=None, metavar="HTML", help="also write an HTML page with a thumbnail gallery ('-': stdout)"
    )
    p.add_argument(
        "--image-root",
        default=None,
        metavar="DIR",
        help="embed only images under DIR (default: the folder 'hardmine score' scored, recorded in the table; "
        "for other tables the table's own folder)",
    )
    p.add_argument(
        "--allow-any-image",
        action="store_true",
        help="embed any image file the ids name, wherever it is (only for tables you trust)",
    )
    p.set_defaults(func=_cmd_report, parser=p)


def _cmd_completion(args: argparse.Namespace) -> int:
    from hardmine.app._completion import completion_script

    sys.stdout.write(completion_script(build_parser(), args.shell))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hardmine`` command."""
    from hardmine import __version__

    parser = argparse.ArgumentParser(
        prog="hardmine",
        description="Find the hard examples in a training set and feed them back into training.",
        epilog="Run 'hardmine demo' for the whole flow on scikit-learn's bundled digits (no download).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"hardmine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train a small CNN on bundled digits, score, split and export the hard samples",
        description="Train a small CNN on scikit-learn's bundled digits (a few labels flipped on purpose), score "
        "every training sample, split easy/hard and positive/negative, and write scores.csv, hard.csv and a "
        "summary into OUT.",
    )
    demo.add_argument("-o", "--out", default="hardmine-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--noise", type=float, default=0.05, help="fraction of labels flipped (default: %(default)s)")
    demo.add_argument(
        "--threshold", type=float, default=0.5, help="hard when label_prob is below this (default: %(default)s)"
    )
    demo.add_argument("--positive", type=int, default=9, help="the positive digit (default: %(default)s)")
    demo.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar (it is drawn only when stderr is a terminal)"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no summary text and no progress bar")
    demo.set_defaults(func=_cmd_demo)
    _add_score_parser(sub)
    _add_report_parser(sub)
    completion = sub.add_parser(
        "completion",
        help="print a bash or zsh completion script",
        description="Print a completion script for the hardmine command. bash: add "
        "'source <(hardmine completion bash)' to ~/.bashrc. zsh: add 'source <(hardmine completion zsh)' to ~/.zshrc "
        "(after compinit).",
    )
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    completion.set_defaults(func=_cmd_completion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hardmine`` command; returns the exit code (130 after Ctrl-C, with one line on stderr)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("hardmine: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except _UsageError as err:
        getattr(args, "parser", parser).error(str(err))  # prints the usage and exits with 2
        return 2
    except _USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"hardmine: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
