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
from typing import TYPE_CHECKING

from hardmine.app._cli_common import _GROUPS as _GROUPS  # tests read cli._MEASURES and cli._GROUPS
from hardmine.app._cli_common import _MEASURES as _MEASURES
from hardmine.app._cli_common import (
    _USER_ERRORS,
    _check_writable,
    _debug_parent,
    _non_negative_int,
    _output_parent,
    _print_json,
    _progress,
    _records,
    _UsageError,
)
from hardmine.app._cli_score import _add_score_parser

if TYPE_CHECKING:
    import pandas as pd

    from hardmine.app.html_report import Report

__all__ = ["build_parser", "main"]


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
        from hardmine.app._entry import interrupted

        if interrupted():  # a Ctrl-C swallowed during the imports: stop before waiting on stdin
            raise KeyboardInterrupt
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
        if _came_of_ctrl_c(err):  # a library turned the KeyboardInterrupt into its own error
            raise KeyboardInterrupt from None
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"hardmine: error: {message}", file=sys.stderr)
        return 1


def _came_of_ctrl_c(err: BaseException) -> bool:
    """Whether ``err`` came of a Ctrl-C: a KeyboardInterrupt in its chain, or one the process entry saw."""
    from hardmine.app._entry import interrupted

    chain: BaseException | None = err
    seen: set[int] = set()
    while chain is not None and id(chain) not in seen:
        if isinstance(chain, KeyboardInterrupt):
            return True
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    return interrupted()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
