"""What the ``hardmine`` sub-commands share: usage errors, output helpers, argparse types and parent parsers.

Imports nothing heavy at its top (argparse only), so that ``--help`` answers without importing torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hardmine.core.columns import GROUPS, MEASURES

if TYPE_CHECKING:
    import pandas as pd

# The column registry imports neither torch, numpy nor pandas: the parser reads the measures and groups from it.
_MEASURES = MEASURES
_GROUPS = GROUPS

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, PermissionError, ImportError, OSError, RuntimeError)


class _UsageError(Exception):
    """A usage mistake found after parsing (it depends on the data): exit code 2, like argparse's own."""


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
