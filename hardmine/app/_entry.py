"""The process entry of the ``hardmine`` command (console script and ``python -m hardmine``): argparse-level only.

Ctrl-C exits 130 with one line on stderr at every moment, including while Python is still importing torch. After a
Ctrl-C the process ends with ``os._exit(130)`` once stdout and stderr are flushed: CPython remembers a
KeyboardInterrupt that interrupted code run during an import (``PyRun_*``) even when hardmine caught it, and would
otherwise end the process by SIGINT (exit status -2 to the parent) instead of 130.
"""

from __future__ import annotations

import os
import sys

__all__ = ["run"]


def _exit_interrupted(line: bool) -> None:
    """Flush stdout and stderr (with the one line when ``line``) and end the process with 130."""
    for stream, text in ((sys.stdout, ""), (sys.stderr, "hardmine: interrupted\n" if line else "")):
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(130)


def run() -> None:
    """Run ``hardmine`` with ``sys.argv`` and exit with its code (130 after Ctrl-C)."""
    try:
        from hardmine.app.cli import main

        code = main()  # it prints its own line and returns 130 after Ctrl-C
    except KeyboardInterrupt:  # the instants before main's own `try`
        _exit_interrupted(line=True)
        return
    if code == 130:
        _exit_interrupted(line=False)
    sys.exit(code)
