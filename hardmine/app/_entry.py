"""The process entry of the ``hardmine`` command (console script and ``python -m hardmine``): argparse-level only.

Ctrl-C exits 130 with one line on stderr at every moment from the start of :func:`run`, including while Python is
still importing torch (before it, in the first few hundredths of a second while Python itself starts and imports the
``hardmine`` package, Python answers with its own traceback):

- A Ctrl-C whose KeyboardInterrupt Python cannot raise where it lands (a weakref callback run by the import system's
  module locks, a ``__del__``, a garbage-collector callback: Python would print "Exception ignored in ..." and go on)
  is raised again a moment later by SIGALRM (``sys.unraisablehook``), once the callback has returned; where there is
  no SIGALRM (Windows) or the program uses it, the command stops at the next check below.
- A Ctrl-C that lands during an import is raised when the outermost import statement under way returns (a second
  Ctrl-C: at once): inside torch's import, Python code that C++ calls (``torch._C._c10d_init()``) would otherwise
  end the process by ``std::terminate`` (SIGABRT, "terminate called after throwing ... KeyboardInterrupt").
- A Ctrl-C swallowed by a library's bare ``except:`` or turned into its own error is remembered
  (:func:`interrupted`): the command stops before it reads stdin, answers an error that followed it as the
  interruption, and exits 130 once it returns, whatever code it returned.
- After a Ctrl-C the process ends with ``os._exit(130)`` once stdout and stderr are flushed: CPython remembers a
  KeyboardInterrupt that interrupted code run during an import (``PyRun_*``) even when hardmine caught it, and would
  otherwise end the process by SIGINT (exit status -2 to the parent) instead of 130.

A SIGINT ignored when the process started (a job started with ``nohup`` or ``&`` from a script) stays ignored.
"""

from __future__ import annotations

import _thread
import builtins
import os
import signal
import sys
from types import FrameType
from typing import Any

__all__ = ["interrupted", "run"]

_state: dict[str, bool] = {
    "installed": False,
    "alarm": False,
    "seen": False,
    "finishing": False,
    "in_hook": False,
    "deferred": False,
}
_imports: dict[str, Any] = {"depth": 0, "main": None, "original": None}
_AGAIN_S = 0.002  # a KeyboardInterrupt that Python could only report is raised again this much later


def _again_later() -> None:
    """Raise the KeyboardInterrupt again in ``_AGAIN_S`` by SIGALRM (where there is none: once the command returns)."""
    if _state["alarm"]:
        signal.setitimer(signal.ITIMER_REAL, _AGAIN_S)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGINT (and the SIGALRM that delivers it again): remember the Ctrl-C and raise KeyboardInterrupt."""
    if _state["finishing"]:
        return
    if signum == signal.SIGINT and _state["deferred"]:  # a second Ctrl-C during an import: at once
        _state["deferred"] = False
        raise KeyboardInterrupt
    _state["seen"] = True
    if _state["in_hook"]:  # raised in the hook, it would be reported and lost as well
        _again_later()
        return
    if _imports["depth"]:  # raised once the import statement under way has returned (see _import)
        _state["deferred"] = True
        return
    raise KeyboardInterrupt


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``builtins.__import__``, counting the import statements under way on the main thread.

    A KeyboardInterrupt raised inside an import can land in Python code that a compiled module's initialisation
    calls (torch's ``torch._C._c10d_init()`` does), where C++ ends the process by ``std::terminate`` (SIGABRT)
    instead of propagating it; so a Ctrl-C during an import is raised when the outermost import statement returns.
    """
    original = _imports["original"]
    if _thread.get_ident() != _imports["main"]:
        return original(name, globals, locals, fromlist, level)
    _imports["depth"] += 1
    try:
        return original(name, globals, locals, fromlist, level)
    finally:
        _imports["depth"] -= 1
        if not _imports["depth"] and _state["deferred"] and not _state["finishing"]:
            _state["deferred"] = False
            raise KeyboardInterrupt  # it replaces whatever the import raised, as a Ctrl-C would


def _unraisable(unraisable: Any, previous: Any) -> None:
    """Deliver again a KeyboardInterrupt that Python could only report; every other exception goes to ``previous``."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        previous(unraisable)
        return
    _state["in_hook"] = True
    _again_later()  # by then the callback has returned: the interrupt lands in the code that the callback interrupted
    _state["in_hook"] = False


def _install() -> None:
    """Install the handlers and the hook, except where SIGINT was ignored at start-up or off the main thread."""
    if _state["installed"] or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    import threading

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return
    previous = sys.unraisablehook
    _imports.update(main=_thread.get_ident(), original=builtins.__import__)
    builtins.__import__ = _import
    signal.signal(signal.SIGINT, _on_signal)
    sys.unraisablehook = lambda unraisable: _unraisable(unraisable, previous)
    _state["installed"] = True
    if hasattr(signal, "setitimer") and signal.getsignal(signal.SIGALRM) == signal.SIG_DFL:
        signal.signal(signal.SIGALRM, _on_signal)
        _state["alarm"] = True


def interrupted() -> bool:
    """Whether a Ctrl-C reached this process (the command stops on it before it blocks on input)."""
    return _state["seen"]


def _exit_interrupted(line: bool) -> None:
    """Flush stdout and stderr (with the one line when ``line``) and end the process with 130."""
    _state["finishing"] = True
    for stream, text in ((sys.stdout, ""), (sys.stderr, "hardmine: interrupted\n" if line else "")):
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(130)


def run() -> None:
    """Run ``hardmine`` with ``sys.argv`` and exit with its code (130 after Ctrl-C)."""
    _install()
    try:
        from hardmine.app.cli import main

        code = main()  # it prints its own line and returns 130 after Ctrl-C
        _state["finishing"] = True  # no KeyboardInterrupt from here on: a late Ctrl-C is answered below
    except KeyboardInterrupt:  # the instants before main's own `try`
        _state["finishing"] = True
        _exit_interrupted(line=True)
        return
    if code == 130:
        _exit_interrupted(line=False)
    if _state["seen"]:  # a Ctrl-C that a library swallowed while the command went on
        _exit_interrupted(line=True)
    sys.exit(code)
