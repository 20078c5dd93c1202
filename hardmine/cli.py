"""The ``hardmine`` command line: a thin argparse layer over the public functions.

Exit codes: 0 success, 2 usage errors (argparse), 1 data or model errors, reported in one line on stderr
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, PermissionError, ImportError, OSError, RuntimeError)


def _cmd_demo(args: argparse.Namespace) -> int:
    from hardmine.demo import run_demo

    result = run_demo(
        args.out, epochs=args.epochs, seed=args.seed, noise=args.noise, threshold=args.threshold,
        positive=args.positive, progress=not args.no_progress,
    )
    print(result.report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hardmine`` command."""
    from hardmine import __version__

    parser = argparse.ArgumentParser(
        prog="hardmine",
        description="Find the hard examples in a training set and feed them back into training.",
        epilog="Run 'hardmine demo' for the whole flow on scikit-learn's bundled digits (no download).",
    )
    parser.add_argument("--version", action="version", version=f"hardmine {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train a small CNN on bundled digits, score, split and export the hard samples",
        description="Train a small CNN on scikit-learn's bundled digits (a few labels flipped on purpose), score "
        "every training sample, split easy/hard and positive/negative, and write scores.csv, hard.csv and a "
        "summary into OUT.",
    )
    demo.add_argument("--out", default="hardmine-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--noise", type=float, default=0.05, help="fraction of labels flipped (default: %(default)s)")
    demo.add_argument("--threshold", type=float, default=0.5,
                      help="hard when label_prob is below this (default: %(default)s)")
    demo.add_argument("--positive", type=int, default=9, help="the positive digit (default: %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hardmine`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except _USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"hardmine: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
